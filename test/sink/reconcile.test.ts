// Reconciliation, batching and retry delays: the pure decisions of the sink.
import { describe, expect, it } from "vitest";
import { batchDelayMs, batchFull, freshRecords, partlyLanded, reconcile, retryDelayMs, takeBatch, DEFAULT_SINK_LIMITS } from "../../src/sink/index.js";
import { batch, record } from "./fixtures.js";

describe("sink reconcile", () => {
  const recs = [record(10, batch(5, 1)), record(11, batch(4, 2)), record(13, batch(6, 3)), record(14, batch(3, 4))];

  it("reconcile - absent records go whole, complete ones not at all, partly landed ones as their missing rows", () => {
    const counts = new Map([
      [11, 4],
      [13, 2],
      [14, 5],
    ]);
    expect(partlyLanded(recs, counts)).toEqual([13]);
    const r = reconcile(recs, { counts, rowSets: new Map([[13, [0, 1]]]) });
    expect(r.toSend.map((p) => [p.lsn, p.rows === undefined ? "all" : Array.from(p.rows)])).toEqual([
      [10, "all"],
      [13, [2, 3, 4, 5]],
    ]);
    expect(r.rowsToSend).toBe(9);
    expect(r.landedRows).toBe(4 + 2 + 3);
    expect(r.duplicateRows).toBe(2);
    expect(r.partialLsns).toEqual([13]);
  });

  it("reconcile - rows that landed out of prefix order are still found", () => {
    const r = reconcile([recs[2]!], { counts: new Map([[13, 3]]), rowSets: new Map([[13, [5, 0, 3]]]) });
    expect(Array.from(r.toSend[0]!.rows!)).toEqual([1, 2, 4]);
  });

  it("reconcile - a partly landed LSN without its row set is a programming error", () => {
    expect(() => reconcile([recs[0]!], { counts: new Map([[10, 2]]), rowSets: new Map() })).toThrow(/landed 2 of 5 rows/);
  });
});

describe("sink batching", () => {
  const limits = { ...DEFAULT_SINK_LIMITS, maxBatchRows: 10, maxBatchBytes: 1_000, maxBatchDelayMs: 100 };

  it("batch - redeliveries and persisted records are dropped, order kept", () => {
    const rs = [record(3, batch(1, 1)), record(5, batch(1, 1)), record(4, batch(1, 1)), record(9, batch(1, 1))];
    expect(freshRecords(rs, 3).map((r) => r.lsn)).toEqual([5, 9]);
  });

  it("batch - a flush takes whole records up to the row limit, at least one", () => {
    const rs = [record(1, batch(4, 1)), record(2, batch(4, 1)), record(3, batch(4, 1))];
    const [b, rest] = takeBatch(rs, limits);
    expect(b.map((r) => r.lsn)).toEqual([1, 2]);
    expect(rest.map((r) => r.lsn)).toEqual([3]);
    const [big] = takeBatch([record(7, batch(50, 1))], limits);
    expect(big.map((r) => r.lsn)).toEqual([7]);
  });

  it("batch - full by rows or bytes; due after the delay since the oldest record", () => {
    expect(batchFull(10, 0, limits)).toBe(true);
    expect(batchFull(9, 999, limits)).toBe(false);
    expect(batchFull(1, 1_000, limits)).toBe(true);
    expect(batchDelayMs(1_000, 1_000, limits)).toBe(100);
    expect(batchDelayMs(1_000, 1_060, limits)).toBe(40);
    expect(batchDelayMs(1_000, 5_000, limits)).toBe(0);
  });
});

describe("sink retry delays", () => {
  const policy = { baseMs: 100, factor: 2, maxMs: 2_000, seed: 42 };

  it("backoff - exponential, jittered within ±20%, capped", () => {
    for (let n = 1; n <= 10; n++) {
      const nominal = Math.min(100 * 2 ** (n - 1), 2_000);
      const d = retryDelayMs(policy, n);
      expect(d).toBeGreaterThanOrEqual(Math.floor(nominal * 0.8));
      expect(d).toBeLessThanOrEqual(Math.ceil(nominal * 1.2));
    }
  });

  it("backoff - deterministic for a seed, different across seeds", () => {
    const a = Array.from({ length: 6 }, (_, i) => retryDelayMs(policy, i + 1));
    expect(Array.from({ length: 6 }, (_, i) => retryDelayMs(policy, i + 1))).toEqual(a);
    expect(Array.from({ length: 6 }, (_, i) => retryDelayMs({ ...policy, seed: 43 }, i + 1))).not.toEqual(a);
  });
});
