// bench:query's floor (bench/floor.ts) answers what the engine answers: the
// same rows and values for each query on a small generated day, so the
// N_vs_floor_ratio figures compare like with like.
import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { HotTable } from "../../src/hotset/index.js";
import { ProxistQueryEngine, staticSource } from "../../src/query/index.js";
import { genBatches, sessionMicros, symbolNames } from "../../bench/gen.js";
import { bySymbol, floorAsof, floorBars, floorLastBy, floorRange, floorRollingVwap } from "../../bench/floor.js";
import { outRows } from "../query/oracle.js";

const SYMBOLS = 20;
const TICKS = 20_000;
const trades = parseTableSpec({ name: "trades", shards: 1, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });
const quotes = parseTableSpec({ name: "quotes", shards: 1, columns: ["bid", "ask", "bid_size", "ask_size"].map((name) => ({ name, type: "float64" })) });

describe("bench - the floor of bench:query", () => {
  const { openMicros, closeMicros } = sessionMicros();
  const mid = Math.floor((openMicros + closeMicros) / 2);
  const data = { trades: [...genBatches("trades", { symbols: SYMBOLS, ticks: TICKS, batchRows: 1000, seed: 42 })], quotes: [...genBatches("quotes", { symbols: SYMBOLS, ticks: TICKS, batchRows: 1000, seed: 43 })] };
  const names = symbolNames(SYMBOLS);
  const tables = { trades: new HotTable(trades), quotes: new HotTable(quotes) };
  let lsn = 0;
  for (const kind of ["trades", "quotes"] as const) for (const b of data[kind]) tables[kind].apply(++lsn, b);
  const engine = new ProxistQueryEngine({ source: staticSource(new Map([["b", new Map([["trades", { spec: trades, shards: [{ bucket: 0, table: tables.trades }] }], ["quotes", { spec: quotes, shards: [{ bucket: 0, table: tables.quotes }] }]])]])) });
  const tf = bySymbol(data.trades, names);
  const qf = bySymbol(data.quotes, names);
  const rows = async (q: unknown) => outRows((await engine.execute("b", q)).table);
  const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

  it("floor - last-by, as-of and range equal the engine's rows", async () => {
    const q1 = floorLastBy(tf, mid);
    expect((await rows({ op: "lastBy", table: "trades", at: mid })).map((r) => [r[0], r[1], r[2]])).toEqual(Array.from(q1.sym, (s, i) => [names[s], q1.ts[i], q1.price[i]]));
    const span = (closeMicros - openMicros) / 20;
    const q2 = floorAsof(tf, qf, mid, mid + span);
    const asof = await rows({ op: "asof", table: "trades", t0: mid, t1: mid + span, right: { table: "quotes" }, columns: ["price", "size"], sort: "symbol" });
    expect(asof.length).toBe(q2.rows);
    // Engine columns: sym, ts, price, size, then the quote's ts, bid, ask, bid_size, ask_size.
    expect(asof.map((r) => [r[1], r[2], r[3], r[5], r[6], r[7], r[8]])).toEqual(Array.from({ length: q2.rows }, (_, i) => q2.cols.map((c) => c[i])));
    const ten = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const q5 = floorRange(tf, ten, mid, mid + 3_600_000_000);
    const range = await rows({ op: "range", table: "trades", symbols: ten.map((i) => names[i]), t0: mid, t1: mid + 3_600_000_000 });
    expect(range.map((r) => r[1])).toEqual(Array.from(q5.cols[1]!));
    expect(range.map((r) => r[0])).toEqual(Array.from(q5.cols[0]!, (s) => names[s]));
  });

  it("floor - rolling VWAP and 1-minute bars equal the engine's values", async () => {
    const all = names.map((_, i) => i);
    const q3 = floorRollingVwap(tf, all, openMicros, closeMicros, 300_000_000);
    const rolling = await rows({ op: "rolling", table: "trades", t0: openMicros, t1: closeMicros, window: "5m", columns: ["price"], aggregates: [{ fn: "vwap", column: "price", weight: "size" }], sort: "symbol" });
    const flat = q3.flatMap((a) => Array.from(a));
    expect(rolling.length).toBe(flat.length);
    const bad = rolling.findIndex((r, i) => !close(r[r.length - 1] as number, flat[i]!));
    expect(bad, `row ${bad}: ${JSON.stringify(rolling[bad])} vs ${flat[bad]}`).toBe(-1);
    const q4 = floorBars(tf, openMicros, closeMicros, 60_000_000);
    const bars = await rows({ op: "bars", table: "trades", t0: openMicros, t1: closeMicros, bucket: "1m" });
    expect(bars.length).toBe(q4.rows);
    const key = (sym: unknown, ts: unknown): string => `${String(sym)}@${String(ts)}`;
    const want = new Map(Array.from({ length: q4.rows }, (_, i) => [key(names[q4.cols[0]![i]!], q4.cols[1]![i]), q4.cols.slice(2).map((c) => c[i]!)]));
    for (const r of bars) {
      const w = want.get(key(r[0], r[1]));
      expect(w, key(r[0], r[1])).toBeDefined();
      // open, high, low, close, volume, count, vwap.
      expect(r.slice(2, 9).every((v, j) => close(v as number, w![j]!)), `${JSON.stringify(r)} vs ${JSON.stringify(w)}`).toBe(true);
    }
  });
});
