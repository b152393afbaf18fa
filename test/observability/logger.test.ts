// Structured logs: JSON records with level, node and message; the trace and
// span ids of the active span; readable lines on a terminal; levels filter.
import { context, trace } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { createLogger, enableContext, levelOf, lineLog, prettyLine } from "../../src/node/obs/index.js";

function capture(isTTY = false): { out: { write(s: string): boolean; isTTY: boolean }; lines: string[] } {
  const lines: string[] = [];
  return { lines, out: { isTTY, write: (s: string) => (lines.push(s), true) } };
}

describe("logs - structured records", () => {
  it("logs - JSON records carry level, time, node and the message; levels filter", () => {
    const c = capture();
    const log = createLogger({ nodeId: "n1", out: c.out, level: "info" });
    lineLog(log)("node n1: up (nats nats://x, http :1)");
    lineLog(log)("shard t/trades/0: REFUSED watermark");
    log.debug("hidden");
    const recs = c.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs).toHaveLength(2);
    expect(recs[0]).toMatchObject({ level: 30, node: "n1", msg: "node n1: up (nats nats://x, http :1)" });
    expect(typeof recs[0]!.time).toBe("number");
    expect(recs[1]).toMatchObject({ level: 40 });
    expect(recs[0]!.trace_id).toBeUndefined();
  });

  it("logs - a line written inside a span carries its trace and span ids", () => {
    enableContext();
    const c = capture();
    const log = createLogger({ out: c.out, format: "json" });
    const sc = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1 };
    context.with(trace.setSpanContext(context.active(), sc), () => log.info("inside"));
    expect(JSON.parse(c.lines[0]!)).toMatchObject({ msg: "inside", trace_id: sc.traceId, span_id: sc.spanId });
  });

  it("logs - on a terminal each record is one readable line", () => {
    const c = capture(true);
    createLogger({ nodeId: "n1", out: c.out }).warn({ shard: "t/x/0" }, "sink degraded");
    expect(c.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}sink degraded {2}node=n1 shard=t\/x\/0\n$/);
    expect(prettyLine("not json")).toBe("not json");
  });

  it("logs - levels of plain lines, and a bad PX_LOG_LEVEL is named", () => {
    expect(levelOf("shard a/b/0: FAILED: boom")).toBe("error");
    expect(levelOf("sink a/b/0: degraded")).toBe("warn");
    expect(levelOf("node x: up")).toBe("info");
    expect(() => createLogger({ level: "loud", out: capture().out })).toThrow(/PX_LOG_LEVEL "loud" is not a log level; use one of trace, debug/);
  });
});
