// Feeds - one subscription without IO (FeedSession): where reading starts for
// each `from`, the durable gate (a batch waits for its shard's P, order kept),
// the bounded buffer (an exact feed stops; last-by conflates into one snapshot
// the consumer can replace its state with).
import { describe, expect, it } from "vitest";
import { FeedRunner, FeedSession, encodeOffset, parseFrom, planFeed, uniformOffset } from "../../src/feed/index.js";
import type { FeedPlan } from "../../src/feed/index.js";
import { TENANT, workload } from "../query/fixture.js";

const w = workload(3, { records: 12, symbols: 4, rowsPerRecord: 10 });
const plan = (query: Record<string, unknown>): FeedPlan => planFeed(TENANT, { query }, (t) => w.specs.find((s) => s.name === t), () => ["trades", "quotes"]);
const trades = w.records.filter((r) => r.table === "trades");
const lastLsn = trades[5]!.lsn;

describe("feeds - a subscription (FeedSession)", () => {
  it("from - raw reads from where it sends; stateful kinds fold the WAL from its start", () => {
    const raw = plan({ op: "range", table: "trades" });
    const bars = plan({ op: "bars", table: "trades", bucket: "1s" });
    const o = { lastLsn, durable: false, maxBuffer: 100, conflate: false };
    expect(new FeedSession(raw, { ...o, from: "now" }).readFrom).toBe(lastLsn + 1);
    expect(new FeedSession(raw, { ...o, from: uniformOffset(raw.fingerprint, [raw.left], 7) }).readFrom).toBe(8);
    expect(new FeedSession(bars, { ...o, from: "now" }).readFrom).toBe(1);
    // "now" on a stateful kind: folds everything, sends only what comes after lastLsn.
    const s = new FeedSession(bars, { ...o, from: "now" });
    for (const r of w.records) s.push(r);
    const sent = s.drain();
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((b) => Object.values(b.offset.lsn).every((v) => v > lastLsn))).toBe(true);
    // "snapshot": the state once caught up to lastLsn, then updates.
    const snap = new FeedSession(bars, { ...o, from: "snapshot" });
    for (const r of w.records) snap.push(r);
    const got = snap.drain();
    expect(got[0]!.kind).toBe("snapshot");
    expect(got.slice(1).every((b) => b.kind === "update")).toBe(true);
  });

  it("durable - a batch is released only once its shard's P covers its record, in record order", () => {
    const p = plan({ op: "range", table: "trades" });
    const s = new FeedSession(p, { from: "snapshot", lastLsn, durable: true, maxBuffer: 100, conflate: false });
    for (const r of trades) s.push(r);
    expect(s.drain()).toEqual([]);
    const first = trades[0]!;
    s.setPersisted("trades", first.bucket, first.lsn);
    const out = s.drain();
    expect(out.length).toBe(1);
    expect(Math.max(...Object.values(out[0]!.offset.lsn))).toBe(first.lsn);
    for (let b = 0; b < p.left.shards; b++) s.setPersisted("trades", b, 1e9);
    expect(s.drain().length).toBe(trades.length - 1);
    // P stalled (ClickHouse down): nothing is sent, and the waiting batches are bounded too.
    const stalled = new FeedSession(p, { from: "snapshot", lastLsn, durable: true, maxBuffer: 2, conflate: false });
    for (const r of trades) stalled.push(r);
    expect(stalled.drain()).toEqual([]);
    expect([stalled.overflowed, stalled.overflowReason]).toEqual([true, "durable"]);
    // Negative control: without the gate every batch goes at once.
    const open = new FeedSession(p, { from: "snapshot", lastLsn, durable: false, maxBuffer: 100, conflate: false });
    for (const r of trades) open.push(r);
    expect(open.drain().length).toBe(trades.length);
  });

  it("buffer - an exact feed stops at the bound; a last-by feed with conflate replaces its backlog with the state", () => {
    const raw = new FeedSession(plan({ op: "range", table: "trades" }), { from: "snapshot", lastLsn: 0, durable: false, maxBuffer: 3, conflate: true });
    for (const r of trades) raw.push(r);
    expect([raw.overflowed, raw.overflowReason]).toEqual([true, "consumer"]);
    // The bound, and the batch of the record that overflowed it (kept for a parked state; nothing is sent past an overflow); no record after it is folded.
    expect(raw.drain().length).toBe(4);
    expect(raw.folded).toBe(trades[3]!.lsn);
    const lp = plan({ op: "lastBy", table: "trades" });
    const last = new FeedSession(lp, { from: "snapshot", lastLsn: 0, durable: false, maxBuffer: 3, conflate: true });
    for (const r of trades) last.push(r);
    expect(last.overflowed).toBe(false);
    const got = last.drain();
    expect(got.length).toBeLessThanOrEqual(3);
    const whole = new FeedRunner(lp);
    for (const r of trades) whole.push(r);
    // Replaying what was queued over an empty state gives the true state.
    const state = new Map<string, number>();
    for (const b of got) {
      const ts = b.table.columns[1]!.data;
      b.table.symbols.forEach((_, k) => k < b.table.rows && state.set(b.table.symbols[b.table.columns[0]!.data[k]!]!, ts[k]!));
    }
    const snap = whole.snapshot()!.table;
    expect(Object.fromEntries(state)).toEqual(Object.fromEntries(Array.from({ length: snap.rows }, (_, k) => [snap.symbols[snap.columns[0]!.data[k]!]!, snap.columns[1]!.data[k]!])));
  });

  it("from a time - the output is the one from the offset just before the first record holding a tick at or after the time", () => {
    const o = { lastLsn, durable: false, maxBuffer: 1000, conflate: false };
    const at = trades[4]!;
    const time = Math.max(...at.batch.ts);
    // The first trades record reaching the time (late ticks make it no later than `at`).
    const first = trades.find((r) => r.batch.ts.some((t) => t >= time))!;
    expect(first.lsn).toBeLessThanOrEqual(at.lsn);
    for (const query of [{ op: "range", table: "trades" }, { op: "rolling", table: "trades", window: "2s", aggregates: [{ fn: "vwap", column: "price", weight: "size" }] }, { op: "lastBy", table: "trades" }]) {
      const p = plan(query);
      const byTime = new FeedSession(p, { ...o, from: parseFrom(JSON.stringify({ time }), p.fingerprint, [p.left]) });
      const byOffset = new FeedSession(p, { ...o, from: uniformOffset(p.fingerprint, [p.left], first.lsn - 1) });
      expect(byTime.readFrom).toBe(1); // the time is found by reading
      for (const r of trades) {
        byTime.push(r);
        if (r.lsn >= byOffset.readFrom) byOffset.push(r);
      }
      const got = byTime.drain();
      expect(got.length, query.op).toBeGreaterThan(0);
      expect(got, query.op).toEqual(byOffset.drain());
      expect(Math.min(...Object.values(got[0]!.offset.lsn))).toBe(first.lsn);
    }
    // Negative control: a time no tick reaches sends nothing.
    const p = plan({ op: "range", table: "trades" });
    const never = new FeedSession(p, { ...o, from: { timeMicros: Number.MAX_SAFE_INTEGER } });
    for (const r of trades) never.push(r);
    expect(never.drain()).toEqual([]);
  });

  it("from - the field is read by name: a bad time or JSON is refused with the forms it takes", () => {
    const p = plan({ op: "range", table: "trades" });
    const from = (text: string) => parseFrom(text, p.fingerprint, [p.left]);
    expect(from("")).toBe("now");
    expect(from('{"time":1700000000000000}')).toEqual({ timeMicros: 1_700_000_000_000_000 });
    const token = encodeOffset(uniformOffset(p.fingerprint, [p.left], 7));
    expect(from(JSON.stringify({ offset: token }))).toEqual(from(token));
    expect(() => from('{"time":-1}')).toThrow(/from.time: -1 is not a time; pass microseconds since the epoch as a non-negative integer/);
    expect(() => from('{"time":"2026-01-01"}')).toThrow(/from.time: "2026-01-01" is not a time/);
    expect(() => from('{"tim":1}')).toThrow(/is neither \{"time": µs\} nor \{"offset": token\}/);
    expect(() => from("{time:1}")).toThrow(/is not valid JSON/);
  });
});
