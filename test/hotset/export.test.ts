import { describe, expect, it } from "vitest";
import { HotSetError, HotTable, compareSymbols } from "../../src/hotset/index.js";
import type { HotTableColumns } from "../../src/hotset/index.js";
import { MIXED, TRADES, batchOf, sortedOracle, storedRows, tag, trades } from "./fixtures.js";
// The demo's seeded PRNG: a failure names a case that reproduces.
import { rng } from "../../src/demo/randomwalk.js";

const small = { chunkRows: 4, firstChunkRows: 2, nextChunkRows: 2 };

function sample(): HotTable {
  const t = new HotTable(TRADES, small);
  t.apply(1, trades(["B", 10, 1], ["A", 11, 2], ["B", 12, 3], ["C", 5, 4]));
  t.apply(2, trades(["A", 9, 5], ["B", 12, 6], ["B", 30, 7], ["A", 40, 8]));
  t.apply(4, trades(["A", 20, 9], ["C", 1, 10], ["B", 11, 11]));
  return t;
}

describe("hot table - export", () => {
  it("range - zero-copy slices of [t0, t1) across chunks", () => {
    const t = new HotTable(TRADES, { chunkRows: 4, firstChunkRows: 4, nextChunkRows: 4 });
    t.apply(1, trades(...Array.from({ length: 10 }, (_, i) => ["A", i * 10, i] as [string, number, number])));
    const id = t.lookup("A")!;
    const slices = t.range(id, 25, 75);
    expect(slices.map((s) => s.rows)).toEqual([1, 4]);
    expect(slices.flatMap((s) => Array.from(s.tsMicros))).toEqual([30, 40, 50, 60, 70]);
    expect(slices.flatMap((s) => Array.from(s.values[0]!))).toEqual([3, 4, 5, 6, 7]);
    expect(slices.flatMap((s) => Array.from(s.lsn))).toEqual([1, 1, 1, 1, 1]);
    expect(slices.flatMap((s) => Array.from(s.rowInRecord))).toEqual([3, 4, 5, 6, 7]);
    // views, not copies: they share the chunk buffers
    const series = t.series(id)!;
    expect(slices[1]!.tsMicros.buffer).toBe(series.slices(4, 5)[0]!.tsMicros.buffer);
    expect(t.range(id, 100, 200)).toEqual([]);
    expect(t.range(id, 70, 70)).toEqual([]);
    expect(t.range(99, 0, 100)).toEqual([]);
  });

  it("toTickBatch - rows in (symbol, ts, lsn, row) order with their lsn and row", () => {
    const t = sample();
    const { batch, lsn, rowInRecord } = t.toTickBatch();
    expect(batch.symbols).toEqual(["A", "B", "C"]);
    expect(batch.rows).toBe(11);
    expect(Array.from(batch.ts)).toEqual([9, 11, 20, 40, 10, 11, 12, 12, 30, 1, 5]);
    expect(Array.from(lsn)).toEqual([2, 1, 4, 2, 1, 4, 1, 2, 2, 4, 1]);
    expect(Array.from(rowInRecord)).toEqual([0, 1, 0, 3, 0, 2, 2, 1, 2, 1, 3]);
    expect(Array.from(batch.symbolIndex)).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2]);
  });

  it("compareSymbols - orders by code point, like UTF-8 bytes", () => {
    const syms = ["b", "a", "B", "\u{1F600}", "\uFFFF", "ab", "a"];
    expect([...syms].sort(compareSymbols)).toEqual(["B", "a", "a", "ab", "b", "\uFFFF", "\u{1F600}"]);
    const utf8 = [...syms].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...syms].sort(compareSymbols)).toEqual(utf8);
  });

  it("digest - equal for equal rows whatever the chunking and symbol ids", () => {
    const a = new HotTable(TRADES, { chunkRows: 2, firstChunkRows: 1, nextChunkRows: 1 });
    a.apply(2, trades(["X", 5, 1], ["X", 1, 2], ["X", 3, 3]));
    a.apply(3, trades(["Y", 6, 4], ["X", 2, 5]));
    const b = new HotTable(TRADES, { chunkRows: 64 });
    b.apply(1, trades(["Y", 0, 9])); // gives Y the id 0 in b, then leaves RAM
    b.evict(1, 1);
    b.apply(2, trades(["X", 5, 1], ["X", 1, 2], ["X", 3, 3]));
    b.apply(3, trades(["Y", 6, 4], ["X", 2, 5]));
    expect(a.symbols()).not.toEqual(b.symbols());
    expect(a.seriesOf("X")!.chunkCount).not.toBe(b.seriesOf("X")!.chunkCount);
    expect(b.digest()).toBe(a.digest());
    expect(a.digest()).toMatch(/^[0-9a-f]{64}$/);
    // the same ticks with another rowInRecord are another store
    const c = new HotTable(TRADES);
    c.apply(2, trades(["X", 1, 2], ["X", 5, 1], ["X", 3, 3]));
    c.apply(3, trades(["Y", 6, 4], ["X", 2, 5]));
    expect(c.digest()).not.toBe(a.digest());
  });

  it("digest - changes when any value changes", () => {
    const a = sample();
    const b = new HotTable(TRADES, small);
    b.apply(1, trades(["B", 10, 1], ["A", 11, 2], ["B", 12, 3], ["C", 5, 4]));
    b.apply(2, trades(["A", 9, 5], ["B", 12, 6], ["B", 30, 7], ["A", 40, 8]));
    b.apply(4, trades(["A", 20, 9], ["C", 1, 10], ["B", 11, 11.000001]));
    expect(a.digest()).not.toBe(b.digest());
  });

  it("exportColumns - restore round-trip gives the same rows, digest, seam and watermarks", () => {
    const t = sample();
    t.evict(1, 11);
    const exported = t.exportColumns();
    expect(exported.symbols).toEqual(["B", "A", "C"]);
    expect(exported.series.map((s) => s.tsMicros.length)).toEqual([4, 4, 1]);
    const r = HotTable.fromColumns(TRADES, exported, small);
    expect(r.digest()).toBe(t.digest());
    expect(r.exportColumns()).toEqual(exported);
    expect([r.appliedLsn, r.persistedLsn, r.horizonMicros, r.rowCount]).toEqual([4, 1, 11, 9]);
    expect(r.seam(r.lookup("C")!)).toEqual(t.seam(t.lookup("C")!));
    r.verify();
    // both continue identically, including late ticks and the same symbol ids
    for (const x of [t, r]) {
      x.apply(5, trades(["D", 1, 1], ["A", 10, 1], ["B", 100, 2]));
      x.apply(4, trades(["Z", 1, 1])); // redelivery after restore: still a no-op
    }
    expect(r.digest()).toBe(t.digest());
    expect(r.symbols()).toEqual(t.symbols());
  });

  it("exportColumns - a restored big table is re-chunked and accepts late ticks", () => {
    const t = new HotTable(TRADES);
    t.apply(1, trades(...Array.from({ length: 10_000 }, (_, i) => ["A", i, i] as [string, number, number])));
    const r = HotTable.fromColumns(TRADES, t.exportColumns());
    expect(r.seriesOf("A")!.chunkCount).toBe(3);
    r.apply(2, trades(["A", 5000.5, -1]));
    t.apply(2, trades(["A", 5000.5, -1]));
    expect(r.digest()).toBe(t.digest());
    r.verify();
  });

  it("exportColumns - every value type survives the round trip", () => {
    const rows = Array.from({ length: 9 }, (_, i) => ({ sym: `S${i % 3}`, ts: 50 - i, values: [i % 2, i, i * 1.5, i / 7, 2 ** 45 * i] }));
    const t = new HotTable(MIXED, small);
    t.apply(1, batchOf(MIXED, rows));
    const r = HotTable.fromColumns(MIXED, t.exportColumns());
    expect(storedRows(r)).toEqual(sortedOracle(MIXED, tag([{ lsn: 1, rows }])));
  });

  it("fromColumns - a snapshot of another table or a corrupt one is rejected", () => {
    const e = sample().exportColumns();
    expect(() => HotTable.fromColumns(MIXED, e)).toThrow(HotSetError);
    expect(() => HotTable.fromColumns({ ...TRADES, name: "quotes" }, e)).toThrow(/snapshot is of table trades/);
    const first = e.series[0]!;
    const unsorted: HotTableColumns = {
      ...e,
      series: [{ ...first, tsMicros: first.tsMicros.slice().reverse() }, ...e.series.slice(1)],
    };
    expect(() => HotTable.fromColumns(TRADES, unsorted)).toThrow(/out of \(ts, lsn, row\) order/);
    expect(() => HotTable.fromColumns(TRADES, { ...e, symbols: [...e.symbols, "X"] })).toThrow(HotSetError);
    expect(() => HotTable.fromColumns(TRADES, { ...e, symbols: ["B", "B", "C"] })).toThrow(/appears twice/);
    const short: HotTableColumns = { ...e, series: [{ ...first, lsn: first.lsn.subarray(1) }, ...e.series.slice(1)] };
    expect(() => HotTable.fromColumns(TRADES, short)).toThrow(/lengths differ/);
    expect(() => HotTable.fromColumns(TRADES, { ...e, appliedLsn: 1 })).toThrow(/outside \(0, appliedLsn 1\]/);
    expect(() => HotTable.fromColumns(TRADES, { ...e, horizonMicros: -1 })).toThrow(/non-negative integer/);
  });

  it("fromColumns, adopted - a table over the arrays it was given (series end to end in shared buffers, as in a snapshot's chunk) behaves as a copied one under appends, late ticks (grow, ripple, split) and evictions, and never writes outside its own rows", () => {
    const rand = rng(12);
    const src = new HotTable(TRADES, small);
    for (let lsn = 1; lsn <= 40; lsn++) src.apply(lsn, trades(...Array.from({ length: 3 }, (_, k) => [["A", "B", "C"][k]!, lsn * 10 + k, lsn] as [string, number, number])));
    src.evict(5, 45);
    const e = src.exportColumns();
    // Every series' column in one buffer per column, each followed by a guard of 5 sentinel rows.
    const GUARD = 5;
    const total = e.series.reduce((n, x) => n + x.tsMicros.length + GUARD, 0);
    const ts = new Float64Array(total).fill(-7);
    const lsn = new Float64Array(total).fill(-7);
    const row = new Int32Array(total).fill(-7);
    const values = TRADES.columns.map(() => new Float64Array(total).fill(-7));
    let at = 0;
    const series = e.series.map((x) => {
      const n = x.tsMicros.length;
      ts.set(x.tsMicros, at);
      lsn.set(x.lsn, at);
      row.set(x.rowInRecord, at);
      values.forEach((v, j) => v.set(x.values[j]!, at));
      const out = { tsMicros: ts.subarray(at, at + n), lsn: lsn.subarray(at, at + n), rowInRecord: row.subarray(at, at + n), values: values.map((v) => v.subarray(at, at + n)), seam: x.seam };
      at += n + GUARD;
      return out;
    });
    const guards = (): number[] => {
      const out: number[] = [];
      let k = 0;
      for (const x of e.series) {
        k += x.tsMicros.length;
        for (let g = 0; g < GUARD; g++, k++) out.push(ts[k]!, lsn[k]!, row[k]!, ...values.map((v) => v[k]!));
      }
      return out;
    };
    const before = guards();
    const copied = HotTable.fromColumns(TRADES, e, small);
    const adopted = HotTable.fromColumns(TRADES, { ...e, series }, small, true);
    expect(adopted.bytes).toBeGreaterThan(0);
    for (let lsn2 = 41; lsn2 <= 120; lsn2++) {
      // Appends, and late ticks anywhere in a series (into full adopted chunks: they grow, ripple or split into owned ones).
      const sym = ["A", "B", "C", "D"][Math.floor(rand() * 4)]!;
      const tsNew = rand() < 0.5 ? 500 + lsn2 * 10 : 45 + Math.floor(rand() * 400);
      for (const t of [copied, adopted]) t.apply(lsn2, trades([sym, tsNew, lsn2], [sym, tsNew, lsn2 + 0.5]));
      if (lsn2 % 25 === 0) for (const t of [copied, adopted]) t.evict(lsn2 - 20, 45 + (lsn2 - 40) * 2);
    }
    expect(storedRows(adopted)).toEqual(storedRows(copied));
    expect(adopted.digest()).toBe(copied.digest());
    adopted.verify();
    expect(guards()).toEqual(before);
  });
});
