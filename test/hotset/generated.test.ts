// The store against the benchmark generator's realistic workload (default chunk
// sizes, 1000-row batches, late ticks), and the generator's own guarantees.
import { describe, expect, it } from "vitest";
import { genBatches, quotesBatches, sessionMicros, tradesBatches } from "../../bench/gen.js";
import { HotTable } from "../../src/hotset/index.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { sortedOracle, storedRows } from "./fixtures.js";
import type { StoredRow } from "./fixtures.js";

const tables = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables;
const TRADES = tables.find((t) => t.name === "trades")!;
const QUOTES = tables.find((t) => t.name === "quotes")!;

describe("hot table - generated market data", () => {
  it("generated - 60k trades with 2% late ticks equal the sorted oracle", () => {
    const batches = tradesBatches({ symbols: 40, ticks: 60_000, batchRows: 1000, seed: 7, lateFraction: 0.02, maxLatenessMicros: 5_000_000 });
    const t = new HotTable(TRADES);
    const rows: StoredRow[] = [];
    batches.forEach((b, i) => {
      t.apply(i + 1, b);
      for (let r = 0; r < b.rows; r++) {
        rows.push({ sym: b.symbols[b.symbolIndex[r]!]!, ts: b.ts[r]!, lsn: i + 1, row: r, values: b.values.map((v) => v[r]!) });
      }
    });
    t.verify();
    expect(t.rowCount).toBe(60_000);
    expect(storedRows(t)).toEqual(sortedOracle(TRADES, rows));
    expect(HotTable.fromColumns(TRADES, t.exportColumns()).digest()).toBe(t.digest());
  });

  it("generated - quotes apply to the quotes table", () => {
    const t = new HotTable(QUOTES);
    quotesBatches({ symbols: 5, ticks: 2_000, batchRows: 500 }).forEach((b, i) => t.apply(i + 1, b));
    expect(t.rowCount).toBe(2_000);
    const s = t.seriesOf("SYM00000")!;
    const [bid, ask] = [s.valueAt(0, 0), s.valueAt(1, 0)];
    expect(ask).toBeGreaterThan(bid);
  });
});

describe("bench generator", () => {
  it("gen - the same options give the same batches", () => {
    const a = tradesBatches({ symbols: 10, ticks: 3_000, seed: 3, lateFraction: 0.1 });
    const b = tradesBatches({ symbols: 10, ticks: 3_000, seed: 3, lateFraction: 0.1 });
    expect(a).toEqual(b);
    expect(tradesBatches({ symbols: 10, ticks: 3_000, seed: 4 })).not.toEqual(a);
  });

  it("gen - integer microsecond timestamps inside the session, in order per symbol without late ticks", () => {
    const { openMicros, closeMicros } = sessionMicros("2024-03-01");
    expect(closeMicros - openMicros).toBe(6.5 * 3600 * 1e6);
    const last = new Map<string, number>();
    let rows = 0;
    for (const b of genBatches("trades", { symbols: 20, ticks: 5_000, batchRows: 300, day: "2024-03-01" })) {
      expect(b.rows).toBeLessThanOrEqual(300);
      expect(new Set(b.symbols).size).toBe(b.symbols.length);
      for (let r = 0; r < b.rows; r++) {
        const sym = b.symbols[b.symbolIndex[r]!]!;
        const ts = b.ts[r]!;
        expect(Number.isInteger(ts)).toBe(true);
        expect(ts >= openMicros && ts < closeMicros).toBe(true);
        expect(ts).toBeGreaterThanOrEqual(last.get(sym) ?? 0);
        last.set(sym, ts);
        expect(b.values[0]![r]!).toBeGreaterThan(0);
      }
      rows += b.rows;
    }
    expect(rows).toBe(5_000);
    expect(last.size).toBe(20);
  });
});
