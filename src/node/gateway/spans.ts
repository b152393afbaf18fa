// Spans of the batches in the gateway (tracing on only): the ingest span of a
// batch, child of the publisher's traceparent, from arrival to answer; and its
// WAL append span, whose traceparent goes into every record's headers so the
// shard and the sink continue the same trace. Keyed by the source's batch id.
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { Span } from "@opentelemetry/api";
import { childSpan, traceparentOf, tracingOn } from "../obs/index.js";

export class BatchSpans {
  private readonly open = new Map<number, { readonly ingest: Span; wal?: Span }>();

  /** A batch arrived; `traceparent` is the publisher's header (absent: a new root, sampled by ratio). */
  begin(id: number, tenant: string, table: string, bytes: number, traceparent: string | undefined): void {
    if (!tracingOn()) return;
    const ingest = childSpan("px.gateway.ingest", traceparent, { kind: SpanKind.SERVER, attributes: { "px.tenant": tenant, "px.table": table, "px.bytes": bytes } });
    if (ingest.isRecording()) this.open.set(id, { ingest });
  }

  /** The WAL append starts: the traceparent to put on its records (undefined: not traced). */
  walStart(id: number, records: number): string | undefined {
    const s = this.open.get(id);
    if (s === undefined) return undefined;
    s.wal = childSpan("px.wal.append", traceparentOf(s.ingest), { kind: SpanKind.PRODUCER, attributes: { "px.records": records } });
    return traceparentOf(s.wal);
  }

  walEnd(id: number, lsns: readonly number[] | undefined, error?: string): void {
    const wal = this.open.get(id)?.wal;
    if (wal === undefined) return;
    if (lsns !== undefined) wal.setAttribute("px.lsns", lsns.join(","));
    if (error !== undefined) wal.setStatus({ code: SpanStatusCode.ERROR, message: error });
    wal.end();
  }

  /** The gateway answered the batch. */
  end(id: number, code: string | undefined): void {
    const s = this.open.get(id);
    if (s === undefined) return;
    this.open.delete(id);
    if (code !== undefined) s.ingest.setStatus({ code: SpanStatusCode.ERROR, message: code });
    s.ingest.end();
  }
}
