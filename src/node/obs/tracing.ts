// OpenTelemetry tracing of the node: a tracer provider with a ratio sampler
// (parent-based: a sampled publisher's trace is always continued), W3C
// traceparent propagation, spans exported over OTLP/HTTP or to a test's
// exporter. Off (the default, PX_TRACE_SAMPLE unset or 0): nothing is
// registered and the hot paths skip tracing after one boolean check.
import { ROOT_CONTEXT, context, propagation, trace } from "@opentelemetry/api";
import type { Context, Span, SpanOptions, Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, SimpleSpanProcessor, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace-base";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { enableContext } from "./context.js";

export const TRACEPARENT = "traceparent";

export interface TracingOptions {
  /** Fraction of root traces sampled, 0..1 (PX_TRACE_SAMPLE); 0 = off. */
  readonly sampleRatio: number;
  /** OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces (PX_OTLP_URL). */
  readonly otlpUrl?: string;
  /** Tests: spans go here, one at a time as they end. */
  readonly exporter?: SpanExporter;
}

let active = false;

/** Whether tracing is on in this process: the hot paths' one check. */
export const tracingOn = (): boolean => active;

export function tracingOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): TracingOptions {
  const raw = env.PX_TRACE_SAMPLE;
  const ratio = raw === undefined || raw === "" ? 0 : Number(raw);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new Error(`PX_TRACE_SAMPLE must be a fraction from 0 (off) to 1 (every trace), got "${raw}"`);
  return { sampleRatio: ratio, ...(env.PX_OTLP_URL ? { otlpUrl: env.PX_OTLP_URL } : {}) };
}

/** Starts tracing for this process (once); returns its shutdown (flushes what is buffered), or undefined when off. */
export function startTracing(o: TracingOptions): (() => Promise<void>) | undefined {
  if (o.sampleRatio <= 0 || active) return undefined;
  enableContext();
  const exporter = o.exporter ?? new OTLPTraceExporter(o.otlpUrl === undefined ? {} : { url: o.otlpUrl });
  const provider = new BasicTracerProvider({
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.sampleRatio) }),
    spanProcessors: [o.exporter === undefined ? new BatchSpanProcessor(exporter) : new SimpleSpanProcessor(exporter)],
  });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  active = true;
  return async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    active = false;
  };
}

export const tracer = (): Tracer => trace.getTracer("proxist");

/** The context a W3C traceparent names (ROOT when absent). */
export function contextOf(traceparent: string | undefined): Context {
  if (traceparent === undefined || traceparent === "") return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { [TRACEPARENT]: traceparent });
}

/** The traceparent of `span` (undefined when it is not sampled: nothing downstream records it). */
export function traceparentOf(span: Span): string | undefined {
  if (!span.isRecording()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  return carrier[TRACEPARENT];
}

/** A span that is a child of `parent` (a context or a traceparent). */
export function childSpan(name: string, parent: Context | string | undefined, options: SpanOptions = {}): Span {
  const ctx = typeof parent === "string" || parent === undefined ? contextOf(parent) : parent;
  return tracer().startSpan(name, options, ctx);
}
