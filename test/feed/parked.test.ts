// Feeds - parked states (src/feed/parked.ts): a stateful subscription that
// overflowed, parked with the batches it did not send and resumed from the
// offset of the last one it sent, sends exactly what an uninterrupted
// subscription sends after that offset, and folds only the records after the
// last it folded; a resume from any other offset, of another tenant or over
// changed specs gets nothing; a parked state holds the WAL until taken or expired.
import { describe, expect, it } from "vitest";
import { FeedSession, ParkedFeeds, encodeOffset, planFeed } from "../../src/feed/index.js";
import type { FeedBatch, FeedPlan, FeedRecord } from "../../src/feed/index.js";
import { TENANT, workload } from "../query/fixture.js";

const w = workload(5, { records: 40, symbols: 6, rowsPerRecord: 12 });
const plan = (query: Record<string, unknown>): FeedPlan => planFeed(TENANT, { query }, (t) => w.specs.find((s) => s.name === t), () => ["trades", "quotes"]);
const trades = w.records.filter((r) => r.table === "trades");
const opts = { from: "snapshot" as const, lastLsn: 0, durable: false, conflate: false };

/** What a consumer sees of batches: each one's offset and rows, as JSON (floats as they are). */
const seen = (bs: readonly FeedBatch[]): string[] => bs.map((b) => JSON.stringify([encodeOffset(b.offset), b.kind, b.table.columns.map((c) => Array.from(c.data)), b.table.symbols]));

/** A ParkedFeeds with a hand-run clock; `holds` lists the LSNs held now. */
function parkedFeeds(max?: number) {
  const timers: (() => void)[] = [];
  const held = new Set<{ tables: readonly string[]; needs: number }>();
  const p = new ParkedFeeds({
    ...(max === undefined ? {} : { max }),
    hold: (_tenant, tables, needs) => {
      const h = { tables, needs };
      held.add(h);
      return () => void held.delete(h);
    },
    setTimer: (fn) => {
      timers.push(fn);
      return () => void timers.splice(timers.indexOf(fn), 1);
    },
  });
  return { p, expire: () => [...timers].forEach((f) => f()), holds: () => [...held].map((h) => h.needs) };
}

/**
 * Runs a subscription over `records` as the transport does: pushes each record, "sends" up to `sendEach` batches
 * after every record, and parks it when it overflows; returns what it sent and the parked state's resume offset.
 */
function runUntilOverflow(pl: FeedPlan, records: readonly FeedRecord[], parked: ParkedFeeds, sendEach: number, maxBuffer: number, dropUnsent = false) {
  const s = new FeedSession(pl, { ...opts, maxBuffer });
  const sent: FeedBatch[] = [];
  for (const [i, r] of records.entries()) {
    s.push(r);
    if (s.overflowed) break;
    const got = s.drain();
    // A consumer at half the pace: one batch sent every other record.
    const n = i % 2 === 0 ? sendEach : 0;
    sent.push(...got.slice(0, n));
    // What was drained but not sent goes back in front of the queue (the transport keeps it as `unsent`).
    const unsent = got.slice(n);
    if (unsent.length > 0) (s as unknown as { queue: FeedBatch[] }).queue.unshift(...unsent);
  }
  expect(s.overflowed).toBe(true);
  const at = sent.at(-1)!.offset;
  const state = s.parkable([])!;
  parked.park({ tenant: TENANT, fingerprint: pl.fingerprint, tables: [pl.left], at, recent: sent, ...state, pending: dropUnsent ? state.pending.slice(1) : state.pending });
  return { sent, at, folded: state.folded };
}

describe("feeds - parked subscriptions", () => {
  for (const query of [
    { op: "rolling", table: "trades", window: "20ms", aggregates: [{ fn: "vwap", column: "price", weight: "size" }, { fn: "ema", column: "price", alpha: 0.3 }] },
    { op: "bars", table: "trades", bucket: "10ms" },
    { op: "lastBy", table: "trades" },
  ]) {
    for (const back of [0, 3]) it(`resume - ${query.op}: the parked state's resume (from the last offset sent${back > 0 ? `, or ${back} before it` : ""}) sends exactly what the uninterrupted subscription sent after it, folding only later records`, () => {
      const pl = plan(query);
      const whole = new FeedSession(pl, { ...opts, maxBuffer: 1e6 });
      for (const r of trades) whole.push(r);
      const all = whole.drain();
      const { p, holds } = parkedFeeds();
      // One batch sent every other record: the queue grows until the bound of 5 overflows.
      const run = runUntilOverflow(pl, trades, p, 1, 5);
      const { folded } = run;
      // The client did not read the last `back` messages sent: it resumes from the one before them.
      const sent = run.sent.slice(0, run.sent.length - back);
      const at = sent.at(-1)!.offset;
      expect(holds()).toEqual([folded + 1]);
      const state = p.take(TENANT, pl, at)!;
      expect(state).toBeDefined();
      expect(p.size).toBe(0);
      expect(holds()).toEqual([]);
      const resumed = new FeedSession(pl, { ...opts, from: at, maxBuffer: 5 }, state);
      expect(resumed.readFrom).toBe(folded + 1);
      // The backlog it starts with (more than its bound) does not count against the bound: the next record does not overflow it.
      const later = trades.filter((r) => r.lsn >= resumed.readFrom);
      expect(later.length).toBeLessThan(trades.length);
      resumed.push(later[0]!);
      expect(resumed.overflowed).toBe(false);
      const after = resumed.drain();
      for (const r of later.slice(1)) {
        resumed.push(r);
        after.push(...resumed.drain());
      }
      expect(resumed.overflowed).toBe(false);
      expect(seen([...sent, ...after])).toEqual(seen(all));
    });
  }

  it("negative control - a parked state without the batches that were not sent loses them at the resume", () => {
    const pl = plan({ op: "rolling", table: "trades", window: "20ms", aggregates: [{ fn: "vwap", column: "price", weight: "size" }] });
    const whole = new FeedSession(pl, { ...opts, maxBuffer: 1e6 });
    for (const r of trades) whole.push(r);
    const { p } = parkedFeeds();
    const { sent, at } = runUntilOverflow(pl, trades, p, 1, 5, true);
    const resumed = new FeedSession(pl, { ...opts, from: at, maxBuffer: 1e6 }, p.take(TENANT, pl, at)!);
    for (const r of trades) if (r.lsn >= resumed.readFrom) resumed.push(r);
    expect(seen([...sent, ...resumed.drain()])).not.toEqual(seen(whole.drain()));
  });

  it("take - only the exact offset, the same tenant and the same specs take a parked state; expiry and the bound release it", () => {
    const pl = plan({ op: "bars", table: "trades", bucket: "10ms" });
    const { p, expire, holds } = parkedFeeds(2);
    const { sent, at } = runUntilOverflow(pl, trades, p, 1, 5);
    const unknown = { ...at, lsn: Object.fromEntries(Object.entries(at.lsn).map(([k, v]) => [k, v + 1000])) };
    expect(p.take(TENANT, pl, unknown)).toBeUndefined();
    expect(p.take(TENANT, pl, { ...sent.at(-2)!.offset, part: { lsn: 999, rows: 1 } })).toBeUndefined();
    expect(p.take("other", pl, at)).toBeUndefined();
    expect(p.take(TENANT, { ...pl, left: { ...pl.left } }, at)).toBeUndefined();
    expect(p.take(TENANT, plan({ op: "bars", table: "trades", bucket: "20ms" }), { ...at, feed: plan({ op: "bars", table: "trades", bucket: "20ms" }).fingerprint })).toBeUndefined();
    expect(p.size).toBe(1);
    expire();
    expect([p.size, holds()]).toEqual([0, []]);
    expect(p.take(TENANT, pl, at)).toBeUndefined();
    // At most two: a third pushes out the oldest, whose hold ends.
    for (let i = 0; i < 3; i++) runUntilOverflow(pl, trades, p, 1, 5 + i);
    expect([p.size, holds().length]).toEqual([2, 2]);
  });
});
