import { describe, expect, it } from "vitest";
import { HotSetError, HotTable } from "../../src/hotset/index.js";
import { TRADES, storedRows, trades, tsOf } from "./fixtures.js";

const small = { chunkRows: 4, firstChunkRows: 4, nextChunkRows: 4 };

describe("hot table - evict", () => {
  it("evict - removes exactly the rows with ts < H and lsn <= P", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 10, 1], ["A", 20, 2], ["B", 15, 3]));
    t.apply(2, trades(["A", 30, 4], ["B", 25, 5]));
    t.apply(3, trades(["A", 12, 6], ["B", 40, 7])); // A@12 is late
    const r = t.evict(2, 26);
    // ts < 26 and lsn <= 2: A@10, A@20, B@15, B@25. A@12 (lsn 3) stays.
    expect(r.evictedRows).toBe(4);
    expect(storedRows(t).map((x) => [x.sym, x.ts, x.lsn])).toEqual([
      ["A", 12, 3],
      ["A", 30, 2],
      ["B", 40, 3],
    ]);
    expect(t.rowCount).toBe(3);
    expect(t.horizonMicros).toBe(26);
    expect(t.persistedLsn).toBe(2);
    t.verify();
  });

  it("evict - the eviction count (what an export in slices watches) moves only when rows are removed", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 10, 1], ["A", 20, 2], ["B", 15, 3]));
    t.apply(2, trades(["A", 30, 4], ["B", 25, 5]));
    const before = t.evictionCount;
    // P moves, nothing is below the horizon: every series is as it was.
    expect(t.evict(2, 5).evictedRows).toBe(0);
    expect(t.persistedLsn).toBe(2);
    expect(t.evictionCount).toBe(before);
    // Rows go: the count moves (an export running meanwhile starts over).
    expect(t.evict(2, 16).evictedRows).toBe(2);
    expect(t.evictionCount).toBe(before + 1);
    t.verify();
  });

  it("evict - the seam cache holds the last evicted row per symbol", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 10, 1, 100], ["A", 20, 2, 200], ["B", 15, 3, 300]));
    t.apply(2, trades(["A", 20, 2.5, 250], ["A", 30, 4, 400]));
    t.evict(2, 25);
    expect(t.seam(t.lookup("A")!)).toEqual({ tsMicros: 20, lsn: 2, rowInRecord: 0, values: [2.5, 250] });
    expect(t.seam(t.lookup("B")!)).toEqual({ tsMicros: 15, lsn: 1, rowInRecord: 2, values: [3, 300] });
    expect(tsOf(t, "A")).toEqual([30]);
    expect(tsOf(t, "B")).toEqual([]);
  });

  it("evict - the seam row is the greatest evicted row, even when a later eviction removes older late rows", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 10, 1], ["A", 20, 2], ["A", 30, 3]));
    t.apply(2, trades(["A", 15, 9])); // late, not yet persisted
    t.evict(1, 25);
    expect(tsOf(t, "A")).toEqual([15, 30]);
    expect(t.seam(0)).toMatchObject({ tsMicros: 20, lsn: 1 });
    t.evict(2, 25);
    expect(tsOf(t, "A")).toEqual([30]);
    expect(t.seam(0)).toMatchObject({ tsMicros: 20, lsn: 1 }); // 15 is older than 20
  });

  it("evict - unpersisted rows below the horizon are never evicted", () => {
    const t = new HotTable(TRADES, small);
    for (let lsn = 1; lsn <= 10; lsn++) t.apply(lsn, trades(["A", lsn * 10, lsn]));
    t.evict(4, 1_000);
    expect(tsOf(t, "A")).toEqual([50, 60, 70, 80, 90, 100]);
    expect(t.seam(0)).toMatchObject({ tsMicros: 40, lsn: 4 });
    t.verify();
  });

  it("evict - interleaved late unpersisted rows are compacted in order across chunks", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(...Array.from({ length: 12 }, (_, i) => ["A", i * 10, i] as [string, number, number])));
    t.apply(2, trades(["A", 5, -1], ["A", 45, -2], ["A", 85, -3], ["A", 500, -4]));
    t.evict(1, 100);
    expect(tsOf(t, "A")).toEqual([5, 45, 85, 100, 110, 500]);
    expect(t.seam(0)).toMatchObject({ tsMicros: 90, lsn: 1, rowInRecord: 9, values: [9, 1] });
    t.verify();
    // appends and late ticks still work after compaction
    t.apply(3, trades(["A", 50, 0], ["A", 600, 0]));
    expect(tsOf(t, "A")).toEqual([5, 45, 50, 85, 100, 110, 500, 600]);
    t.verify();
  });

  it("evict - whole chunks are dropped and their memory released", () => {
    const t = new HotTable(TRADES, { ...small, poolBytes: 0 });
    t.apply(1, trades(...Array.from({ length: 40 }, (_, i) => ["A", i, i] as [string, number, number])));
    const before = t.bytes;
    expect(t.seriesOf("A")!.chunkCount).toBe(10);
    t.evict(1, 30);
    expect(t.seriesOf("A")!.chunkCount).toBe(3);
    expect(t.bytes).toBe((before * 3) / 10);
    expect(tsOf(t, "A")).toEqual(Array.from({ length: 10 }, (_, i) => 30 + i));
    t.verify();
  });

  it("evict - evicting everything leaves an empty series that can grow again", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 1, 1], ["A", 2, 2]));
    expect(t.evict(1, 10).evictedRows).toBe(2);
    expect(t.seriesOf("A")!.length).toBe(0);
    expect(t.seriesOf("A")!.lastTsMicros).toBeUndefined();
    t.apply(2, trades(["A", 20, 3], ["A", 15, 4]));
    expect(tsOf(t, "A")).toEqual([15, 20]);
    t.verify();
  });

  it("evict - H and P only move forward", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 10, 1], ["A", 20, 2]));
    t.apply(2, trades(["A", 30, 3]));
    t.evict(2, 15);
    expect(t.evict(1, 5).evictedRows).toBe(0);
    expect(t.horizonMicros).toBe(15);
    expect(t.persistedLsn).toBe(2);
    expect(t.evict(1, 25).evictedRows).toBe(1); // uses P = 2
    expect(tsOf(t, "A")).toEqual([30]);
  });

  it("evict - a record already persisted and below the horizon only updates the seam cache", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 100, 1]));
    t.evict(5, 50); // the sink is ahead of this table
    t.apply(3, trades(["A", 40, 7], ["A", 60, 8], ["B", 10, 9]));
    expect(tsOf(t, "A")).toEqual([60, 100]);
    expect(t.seam(t.lookup("A")!)).toMatchObject({ tsMicros: 40, lsn: 3, values: [7, 1] });
    expect(t.seam(t.lookup("B")!)).toMatchObject({ tsMicros: 10, lsn: 3 });
    expect(t.rowCount).toBe(2);
    t.verify();
  });

  it("evict - bad arguments are rejected", () => {
    const t = new HotTable(TRADES);
    expect(() => t.evict(-1, 0)).toThrow(HotSetError);
    expect(() => t.evict(1, Number.NaN)).toThrow(HotSetError);
    expect(() => t.evict(1, 10.5)).toThrow(/integer microseconds/);
  });
  it("holdEvictions - while held, evict removes nothing and moves no watermark; the last release applies the furthest P and H asked for", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 10, 1], ["A", 20, 2], ["B", 15, 3]));
    t.apply(2, trades(["A", 30, 4], ["B", 25, 5]));
    const outer = t.holdEvictions();
    const inner = t.holdEvictions();
    expect(t.evict(1, 21).evictedRows).toBe(0);
    expect(t.evict(2, 16).evictedRows).toBe(0);
    // Arguments are still checked while held.
    expect(() => t.evict(-1, 0)).toThrow(HotSetError);
    expect([t.rowCount, t.persistedLsn, t.horizonMicros]).toEqual([5, 0, 0]);
    inner();
    inner(); // a release counts once
    expect(t.rowCount).toBe(5);
    outer();
    // P 2, H 21: A@10, A@20, B@15 go.
    expect([t.rowCount, t.persistedLsn, t.horizonMicros]).toEqual([2, 2, 21]);
    expect(storedRows(t).map((x) => [x.sym, x.ts])).toEqual([
      ["A", 30],
      ["B", 25],
    ]);
    // Nothing held: evict works at once again.
    expect(t.evict(2, 26).evictedRows).toBe(1);
    t.verify();
  });
});
