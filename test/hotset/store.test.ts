import { describe, expect, it } from "vitest";
import { HotSetError, HotTable } from "../../src/hotset/index.js";
import { MIXED, TRADES, batchOf, sortedOracle, storedRows, tag, trades, tsOf } from "./fixtures.js";

const small = { chunkRows: 4, firstChunkRows: 2, nextChunkRows: 2 };

describe("hot table - apply", () => {
  it("apply - in-order ticks append and keep rowInRecord = index in the batch", () => {
    const t = new HotTable(TRADES);
    t.apply(1, trades(["A", 10, 1.5, 100], ["B", 11, 2.5, 200], ["A", 12, 1.6, 300]));
    t.apply(2, trades(["A", 13, 1.7, 400]));
    expect(t.appliedLsn).toBe(2);
    expect(t.rowCount).toBe(4);
    expect(t.symbolCount).toBe(2);
    expect(storedRows(t)).toEqual([
      { sym: "A", ts: 10, lsn: 1, row: 0, values: [1.5, 100] },
      { sym: "A", ts: 12, lsn: 1, row: 2, values: [1.6, 300] },
      { sym: "A", ts: 13, lsn: 2, row: 0, values: [1.7, 400] },
      { sym: "B", ts: 11, lsn: 1, row: 1, values: [2.5, 200] },
    ]);
    t.verify();
  });

  it("apply - symbol ids follow first appearance in the WAL", () => {
    const t = new HotTable(TRADES);
    t.apply(1, trades(["Z", 1, 1], ["A", 2, 1]));
    t.apply(2, trades(["M", 3, 1], ["Z", 4, 1]));
    expect(t.symbols()).toEqual(["Z", "A", "M"]);
    expect(t.lookup("M")).toBe(2);
    expect(t.symbolAt(1)).toBe("A");
    expect([...t].map((e) => [e.symbolId, e.symbol, e.series.length])).toEqual([
      [0, "Z", 2],
      [1, "A", 1],
      [2, "M", 1],
    ]);
  });

  it("apply - a redelivered or older LSN is a no-op", () => {
    const t = new HotTable(TRADES);
    const b = trades(["A", 10, 1], ["A", 11, 2]);
    t.apply(5, b);
    const digest = t.digest();
    t.apply(5, b);
    t.apply(3, trades(["A", 9, 9]));
    expect(t.rowCount).toBe(2);
    expect(t.appliedLsn).toBe(5);
    expect(t.digest()).toBe(digest);
    expect(t.symbols()).toEqual(["A"]);
  });

  it("apply - LSN gaps (other shards' records) are fine", () => {
    const t = new HotTable(TRADES);
    t.apply(3, trades(["A", 1, 1]));
    t.apply(17, trades(["A", 2, 1]));
    expect(t.appliedLsn).toBe(17);
    expect(t.rowCount).toBe(2);
  });

  it("apply - an empty batch advances appliedLsn only", () => {
    const t = new HotTable(TRADES);
    t.apply(1, trades());
    expect(t.appliedLsn).toBe(1);
    expect(t.rowCount).toBe(0);
  });

  it("apply - late ticks land at their time position", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 10, 1], ["A", 20, 2], ["A", 30, 3]));
    t.apply(2, trades(["A", 15, 4], ["A", 5, 5], ["A", 35, 6], ["A", 25, 7]));
    expect(tsOf(t, "A")).toEqual([5, 10, 15, 20, 25, 30, 35]);
    expect(t.seriesOf("A")!.valueAt(0, 0)).toBe(5);
    t.verify();
  });

  it("apply - a late tick far behind lands in an earlier chunk", () => {
    const t = new HotTable(TRADES, { ...small, rippleChunks: 1 });
    const rows: [string, number, number][] = [];
    for (let i = 0; i < 40; i++) rows.push(["A", i * 10, i]);
    t.apply(1, trades(...rows));
    const s = t.seriesOf("A")!;
    expect(s.chunkCount).toBeGreaterThan(5);
    t.apply(2, trades(["A", 55, -1], ["A", 0, -2], ["A", 395, -3], ["A", 201, -4]));
    expect(tsOf(t, "A")).toEqual(
      [...rows.map((r) => r[1]), 55, 0, 395, 201].sort((a, b) => a - b),
    );
    // the late 0 goes after the existing 0 (WAL order among equal timestamps)
    expect(s.lsnAt(0)).toBe(1);
    expect(s.lsnAt(1)).toBe(2);
    expect(s.valueAt(0, 1)).toBe(-2);
    t.verify();
  });

  it("apply - equal timestamps keep WAL order within and across records", () => {
    const t = new HotTable(TRADES, small);
    t.apply(1, trades(["A", 10, 1], ["A", 10, 2], ["A", 20, 3]));
    t.apply(2, trades(["A", 10, 4], ["A", 20, 5], ["A", 10, 6]));
    t.apply(3, trades(["A", 10, 7]));
    const s = t.seriesOf("A")!;
    const got = Array.from({ length: s.length }, (_, i) => [s.tsAt(i), s.lsnAt(i), s.rowInRecordAt(i), s.valueAt(0, i)]);
    expect(got).toEqual([
      [10, 1, 0, 1],
      [10, 1, 1, 2],
      [10, 2, 0, 4],
      [10, 2, 2, 6],
      [10, 3, 0, 7],
      [20, 1, 2, 3],
      [20, 2, 1, 5],
    ]);
    t.verify();
  });

  it("apply - chunk boundaries: full chunks, then a new chunk, lookups across them", () => {
    const t = new HotTable(TRADES, { chunkRows: 4, firstChunkRows: 4, nextChunkRows: 4 });
    for (let i = 0; i < 9; i++) t.apply(i + 1, trades(["A", 100 + i * 10, i]));
    const s = t.seriesOf("A")!;
    expect(s.chunkCount).toBe(3);
    expect(s.length).toBe(9);
    expect(s.lowerBound(130)).toBe(3);
    expect(s.lowerBound(140)).toBe(4);
    expect(s.upperBound(140)).toBe(5);
    expect(s.lowerBound(99)).toBe(0);
    expect(s.upperBound(180)).toBe(9);
    expect(s.lowerBound(181)).toBe(9);
    expect(s.firstTsMicros).toBe(100);
    expect(s.lastTsMicros).toBe(180);
    const slices = s.slices(2, 9);
    expect(slices.map((sl) => sl.rows)).toEqual([2, 4, 1]);
    expect(slices.flatMap((sl) => Array.from(sl.tsMicros))).toEqual([120, 130, 140, 150, 160, 170, 180]);
    // a late tick into the full first chunk spills into the next ones
    t.apply(10, trades(["A", 105, -1]));
    expect(tsOf(t, "A")).toEqual([100, 105, 110, 120, 130, 140, 150, 160, 170, 180]);
    t.verify();
  });

  it("apply - the first chunk grows geometrically, later chunks are capped at chunkRows", () => {
    const t = new HotTable(TRADES, { chunkRows: 64, firstChunkRows: 4, nextChunkRows: 16 });
    t.apply(1, trades(["A", 1, 1]));
    expect(t.bytes).toBe(4 * 36);
    t.apply(2, trades(...Array.from({ length: 8 }, (_, i) => ["A", 2 + i, 1] as [string, number, number])));
    expect(t.seriesOf("A")!.chunkCount).toBe(1);
    expect(t.seriesOf("A")!.bytes).toBe(16 * 36);
    t.apply(3, trades(...Array.from({ length: 60 }, (_, i) => ["A", 20 + i, 1] as [string, number, number])));
    const s = t.seriesOf("A")!;
    expect(s.length).toBe(69);
    expect(s.chunkCount).toBe(2);
    expect(s.bytes).toBe((64 + 16) * 36);
    t.verify();
  });

  it("apply - many rows cost at most 1.3x their raw column bytes", () => {
    const t = new HotTable(TRADES);
    const n = 200_000;
    const symbols = 50;
    for (let b = 0; b < n / 1000; b++) {
      t.apply(
        b + 1,
        trades(...Array.from({ length: 1000 }, (_, i) => [`S${(b * 1000 + i) % symbols}`, b * 1000 + i, 1] as [string, number, number])),
      );
    }
    expect(t.rowCount).toBe(n);
    expect(t.bytes / n).toBeLessThanOrEqual(1.3 * 36);
  });

  it("apply - every value type round-trips through the chunk layout", () => {
    const t = new HotTable(MIXED, small);
    const rows = Array.from({ length: 11 }, (_, i) => ({
      sym: i % 2 === 0 ? "A" : "B",
      ts: 1000 - i * 7,
      values: [i % 2, -i * 1000, i + 0.25, i / 3, 2 ** 40 + i],
    }));
    t.apply(1, batchOf(MIXED, rows));
    expect(storedRows(t)).toEqual(sortedOracle(MIXED, tag([{ lsn: 1, rows }])));
    t.verify();
  });
});

describe("hot table - rejected input", () => {
  it("apply - a malformed batch throws HotSetError and leaves the table unchanged", () => {
    const t = new HotTable(TRADES);
    t.apply(1, trades(["A", 1, 1]));
    const digest = t.digest();
    const good = trades(["A", 2, 1], ["B", 3, 1]);
    const cases = [
      { ...good, values: [good.values[0]!] },
      { ...good, values: [new Float32Array(2), good.values[1]!] },
      { ...good, ts: new Float64Array([2, Number.NaN]) },
      { ...good, ts: new Float64Array([2, Number.POSITIVE_INFINITY]) },
      { ...good, symbolIndex: new Uint32Array([0, 2]) },
      { ...good, rows: 3 },
    ];
    for (const bad of cases) expect(() => t.apply(2, bad)).toThrow(HotSetError);
    expect(() => t.apply(0, good)).toThrow(/positive integer/);
    expect(() => t.apply(2.5, good)).toThrow(HotSetError);
    expect(t.digest()).toBe(digest);
    expect(t.appliedLsn).toBe(1);
    expect(t.symbols()).toEqual(["A"]);
  });

  it("apply - the error names the table, the record and the column", () => {
    const t = new HotTable(TRADES);
    const good = trades(["A", 2, 1]);
    expect(() => t.apply(7, { ...good, values: [new Int32Array(1), good.values[1]!] })).toThrow(
      "table trades: WAL record 7: column price must be float64 with 1 rows, got Int32Array(1)",
    );
  });

  it("options - invalid chunk options are rejected", () => {
    expect(() => new HotTable(TRADES, { chunkRows: 0 })).toThrow(HotSetError);
    expect(() => new HotTable(TRADES, { chunkRows: 8, firstChunkRows: 16 })).toThrow(HotSetError);
  });
});
