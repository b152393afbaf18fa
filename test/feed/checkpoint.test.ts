// Feed checkpoints (src/feed/checkpoint.ts): for every feed kind, a runner cut
// after k records, checkpointed to bytes and restored, folds the remaining
// records into exactly the output of the uninterrupted runner (bit for bit:
// the fixture has late ticks and equal timestamps, and the rolling feed's
// window passes continue from the saved cursors). Negative control: the same
// cut with the state dropped (a runner started at the cut's offset with
// nothing folded) differs for every stateful kind, so the comparison sees a
// lost state. Checkpoints of another feed, other tables, another format, bytes
// that do not decode, and a stream that lacks the state's output are refused
// by name.
import { serialize } from "node:v8";
import { describe, expect, it } from "vitest";
import { FeedCheckpointError, FeedRunner, decodeCheckpoint, encodeCheckpoint, planFeed, restoreRunner } from "../../src/feed/index.js";
import type { FeedBatch, FeedOffset, FeedPlan } from "../../src/feed/index.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { TENANT, workload } from "../query/fixture.js";

const w = workload(31, { records: 40, symbols: 6, rowsPerRecord: 25 });
const plan = (query: Record<string, unknown>, specs: readonly TableSpec[] = w.specs): FeedPlan =>
  planFeed(TENANT, { query, lateness: "10s" }, (t) => specs.find((s) => s.name === t), () => ["trades", "quotes"]);

const KINDS: Record<string, Record<string, unknown>> = {
  raw: { op: "range", table: "trades" },
  lastBy: { op: "lastBy", table: "trades" },
  bars: { op: "bars", table: "trades", bucket: "1s", aggregates: [{ fn: "first", column: "price" }, { fn: "max", column: "price" }, { fn: "vwap", column: "price", weight: "size" }] },
  rollingTime: { op: "rolling", table: "trades", window: "3s", aggregates: [{ fn: "vwap", column: "price", weight: "size" }, { fn: "stddev", column: "price" }, { fn: "min", column: "price" }, { fn: "sum", column: "size" }, { fn: "ema", column: "price", alpha: 0.2 }] },
  rollingRows: { op: "rolling", table: "trades", rows: 7, aggregates: [{ fn: "avg", column: "price" }, { fn: "max", column: "size" }] },
  asof: { op: "asof", table: "trades", right: { table: "quotes", columns: ["bid"] }, tolerance: "2s" },
};

const text = (b: FeedBatch): string => JSON.stringify({ k: b.kind, o: b.offset.lsn, s: b.table.symbols, c: b.table.columns.map((c) => [Array.from(c.data as ArrayLike<number>), c.valid === undefined ? null : Array.from(c.valid)]) });

/** Outputs of folding `records` into `r`, as text. */
const fold = (r: FeedRunner, records: typeof w.records): string[] =>
  records.flatMap((rec) => {
    const b = r.push(rec);
    return b === undefined ? [] : [text(b)];
  });

describe("feed checkpoints", () => {
  for (const [kind, query] of Object.entries(KINDS)) {
    it(`checkpoint ${kind} - restored at any cut, the runner folds on into exactly the uninterrupted output`, () => {
      const p = plan(query);
      const whole = new FeedRunner(p);
      const all = w.records.map((rec) => whole.push(rec));
      const wholeSnap = whole.snapshot();
      for (const k of [1, 9, 20, 33, w.records.length - 1]) {
        const a = new FeedRunner(p);
        let last: FeedOffset | undefined;
        for (const rec of w.records.slice(0, k)) last = a.push(rec)?.offset ?? last;
        const bytes = encodeCheckpoint(a, w.records[k - 1]!.lsn, last);
        // The runner cut goes on changing: the checkpoint is a copy.
        fold(a, w.records.slice(k));
        const c = decodeCheckpoint(p, bytes);
        expect(c.foldedLsn).toBe(w.records[k - 1]!.lsn);
        const b = restoreRunner(p, c, last);
        const expected = all.slice(k).flatMap((x) => (x === undefined ? [] : [text(x)]));
        expect(fold(b, w.records.slice(k))).toEqual(expected);
        expect(JSON.stringify(b.snapshot() && text(b.snapshot()!))).toBe(JSON.stringify(wholeSnap && text(wholeSnap)));
        expect(b.operator.tooLate).toBe(whole.operator.tooLate);
      }
    });
  }

  it("negative control - the same cut with the state dropped gives other output for every stateful kind", () => {
    for (const [kind, query] of Object.entries(KINDS)) {
      if (kind === "raw") continue;
      const p = plan(query);
      const whole = new FeedRunner(p);
      const all = w.records.map((rec) => whole.push(rec));
      const k = 20;
      const lost = new FeedRunner(p);
      lost.skipTo(whole.offset() && { feed: p.fingerprint, lsn: Object.fromEntries(Object.keys(whole.offset().lsn).map((s) => [s, w.records[k - 1]!.lsn])) });
      // The outputs after the cut, then the final state (last-by's board, the bars held).
      const expected = [...all.slice(k).flatMap((x) => (x === undefined ? [] : [text(x)])), String(whole.snapshot() && text(whole.snapshot()!))];
      const got = [...fold(lost, w.records.slice(k)), String(lost.snapshot() && text(lost.snapshot()!))];
      expect(got, kind).not.toEqual(expected);
    }
  });

  it("refused checkpoints - another feed, other tables, another format, undecodable bytes, a stream short of the state's output", () => {
    const p = plan(KINDS.rollingTime!);
    const r = new FeedRunner(p);
    let last: FeedOffset | undefined;
    for (const rec of w.records.slice(0, 10)) last = r.push(rec)?.offset ?? last;
    const bytes = encodeCheckpoint(r, w.records[9]!.lsn, last);
    const refused = (f: () => unknown, words: RegExp): void => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(FeedCheckpointError);
        expect((e as Error).message).toMatch(words);
        return;
      }
      throw new Error(`not refused: ${String(words)}`);
    };
    refused(() => decodeCheckpoint(plan(KINDS.rollingRows!), bytes), /is of feed [0-9a-f]+, not of this feed/);
    const wider = w.specs.map((s) => (s.name === "trades" ? { ...s, columns: [...s.columns, { name: "venue", type: "int32" as const, allowNonFinite: false }] } : s));
    const p2 = { ...plan(KINDS.rollingTime!, wider), fingerprint: p.fingerprint };
    refused(() => decodeCheckpoint(p2, bytes), /taken with the tables .* they are now/);
    refused(() => decodeCheckpoint(p, serialize({ format: 99 })), /of format 99, this node reads format 1/);
    refused(() => decodeCheckpoint(p, Uint8Array.from([1, 2, 3])), /does not decode/);
    const c = decodeCheckpoint(p, bytes);
    refused(() => restoreRunner(p, c, undefined), /output reaches .* but the feed's stream ends empty/);
    const behind: FeedOffset = { feed: p.fingerprint, lsn: Object.fromEntries(Object.entries(last!.lsn).map(([k, v]) => [k, v - 1])) };
    refused(() => restoreRunner(p, c, behind), /but the feed's stream ends at LSN \d+ of that shard/);
    // A stream at or past the state's output: used.
    expect(restoreRunner(p, c, last).offset().lsn).toEqual(r.offset().lsn);
  });
});
