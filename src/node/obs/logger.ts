// Structured logs: pino JSON lines (level, time, node, msg, and the trace and
// span ids of the active OpenTelemetry span), or one readable line per record
// when stdout is a terminal. The wiring still logs plain lines
// (`(line) => void`); `lineLog` turns each into a record with a level.
import pino from "pino";
import type { DestinationStream, Level, Logger } from "pino";
import { trace } from "@opentelemetry/api";

export interface LoggerOptions {
  readonly nodeId?: string;
  /** trace, debug, info (default), warn, error; PX_LOG_LEVEL. */
  readonly level?: string;
  /** "json" or "pretty"; default pretty on a terminal, JSON otherwise (PX_LOG_FORMAT). */
  readonly format?: "json" | "pretty";
  /** Where lines go (default stdout). */
  readonly out?: { write(s: string): unknown; readonly isTTY?: boolean };
}

const LEVELS: readonly Level[] = ["trace", "debug", "info", "warn", "error", "fatal"];
const NAMES: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** One readable line per JSON record: time, level, msg, then the other fields as key=value. */
export function prettyLine(json: string): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, pid: _pid, hostname: _host, ...rest } = r;
  const t = typeof time === "number" ? new Date(time).toISOString().slice(11, 23) : "";
  const extra = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  return `${t} ${(NAMES[level as number] ?? String(level)).padEnd(5)} ${String(msg ?? "")}${extra.length ? `  ${extra.join(" ")}` : ""}\n`;
}

export function createLogger(o: LoggerOptions = {}): Logger {
  const out = o.out ?? process.stdout;
  const format = o.format ?? (process.env.PX_LOG_FORMAT === "json" || process.env.PX_LOG_FORMAT === "pretty" ? process.env.PX_LOG_FORMAT : out.isTTY === true ? "pretty" : "json");
  const wanted = (o.level ?? process.env.PX_LOG_LEVEL ?? "info").toLowerCase();
  if (!(LEVELS as readonly string[]).includes(wanted)) throw new Error(`PX_LOG_LEVEL "${wanted}" is not a log level; use one of ${LEVELS.join(", ")}`);
  const dest: DestinationStream = format === "pretty" ? { write: (s: string) => void out.write(prettyLine(s)) } : { write: (s: string) => void out.write(s) };
  return pino(
    {
      level: wanted,
      base: o.nodeId === undefined ? { pid: process.pid } : { pid: process.pid, node: o.nodeId },
      // Trace ids of the span the line is written in: a log line leads to its trace and back.
      mixin() {
        const sc = trace.getActiveSpan()?.spanContext();
        return sc === undefined ? {} : { trace_id: sc.traceId, span_id: sc.spanId };
      },
    },
    dest,
  );
}

/** The level a plain wiring line deserves: refusals and failures are warnings. */
export function levelOf(line: string): Level {
  if (/\bFATAL\b|\bFAILED\b/.test(line)) return "error";
  if (/REFUSED|WARNING|\bfailed\b|\bcannot\b|\bdegraded\b|\bfenced\b/i.test(line)) return "warn";
  return "info";
}

/** The `(line) => void` the wiring takes, writing each line as a record at its level. */
export function lineLog(logger: Logger): (line: string) => void {
  return (line) => logger[levelOf(line)](line);
}
