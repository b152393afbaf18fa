// Operators on a small hand-made hot set (no cold store): each answer checked
// by hand, plus the Arrow output, schema() and the engine's errors.
import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { bucketOf } from "../../protocols/routing.js";
import { HotTable } from "../../src/hotset/index.js";
import { QueryError } from "../../protocols/errors.js";
import { ProxistQueryEngine, staticSource } from "../../src/query/index.js";
import type { HotShard } from "../../src/query/index.js";
import type { QueryEngine } from "../../src/api/index.js";
import { outRows } from "./oracle.js";

// Compile-time check: the engine is what the API server serves.
export const asApiEngine = (e: ProxistQueryEngine): QueryEngine => e;

const trades = parseTableSpec({ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] });
const quotes = parseTableSpec({ name: "quotes", shards: 2, columns: [{ name: "bid", type: "float64" }] });
const S = 1_000_000;

/** rows: [sym, ts (s), ...values] applied one WAL record per row. */
function shardsOf(spec: typeof trades, rows: [string, number, ...number[]][], lsn0: number): HotShard[] {
  const shards = [0, 1].map((bucket) => ({ bucket, table: new HotTable(spec) }));
  rows.forEach(([sym, t, ...v], i) => {
    shards[bucketOf(sym, 2)]!.table.apply(lsn0 + i, { rows: 1, symbols: [sym], symbolIndex: Uint32Array.of(0), ts: Float64Array.of(t * S), values: v.map((x) => Float64Array.of(x)) });
  });
  return shards;
}

const T: [string, number, number, number][] = [
  ["A", 1, 10, 100],
  ["B", 1, 20, 200],
  ["A", 2, 11, 100],
  ["A", 2, 12, 300], // equal timestamp: after the previous row (higher LSN)
  ["B", 4, 21, 100],
  ["A", 7, 13, 100],
];
const Q: [string, number, number][] = [
  ["A", 0, 9.5],
  ["A", 2, 10.5],
  ["B", 3, 19.5],
  ["A", 6, 12.5],
];

function engine(): ProxistQueryEngine {
  const source = staticSource(
    new Map([
      [
        "t",
        new Map([
          ["trades", { spec: trades, shards: shardsOf(trades, T, 1) }],
          ["quotes", { spec: quotes, shards: shardsOf(quotes, Q, 100) }],
        ]),
      ],
    ]),
  );
  return new ProxistQueryEngine({ source });
}

const rows = async (q: Record<string, unknown>) => outRows((await engine().execute("t", q)).table);

describe("query ops - hot set", () => {
  it("range - time order across symbols, columns, desc and limit", async () => {
    expect(await rows({ table: "trades", t0: 1 * S, t1: 4 * S, columns: ["price"] })).toEqual([
      ["A", 1 * S, 10],
      ["B", 1 * S, 20],
      ["A", 2 * S, 11],
      ["A", 2 * S, 12],
    ]);
    expect(await rows({ table: "trades", order: "desc", limit: 2, columns: [] })).toEqual([
      ["A", 7 * S],
      ["B", 4 * S],
    ]);
    expect(await rows({ table: "trades", t0: 5 * S, t1: 5 * S })).toEqual([]);
    expect(await rows({ table: "trades", symbols: ["ZZZ"] })).toEqual([]);
  });

  it("lastBy / firstBy - per symbol as of a time, equal timestamps by LSN", async () => {
    expect(await rows({ op: "lastBy", table: "trades", at: 2 * S, columns: ["price"] })).toEqual([
      ["A", 2 * S, 12],
      ["B", 1 * S, 20],
    ]);
    expect(await rows({ op: "firstBy", table: "trades", at: 2 * S, columns: ["price"] })).toEqual([
      ["A", 2 * S, 11],
      ["B", 4 * S, 21],
    ]);
  });

  it("asof - backward, forward, nearest and a tolerance that excludes the match", async () => {
    const q = (direction: string, extra: object = {}) => rows({ op: "asof", table: "trades", columns: ["price"], right: { table: "quotes" }, direction, ...extra });
    expect(await q("backward")).toEqual([
      ["A", 1 * S, 10, 0, 9.5],
      ["B", 1 * S, 20, null, null],
      ["A", 2 * S, 11, 2 * S, 10.5],
      ["A", 2 * S, 12, 2 * S, 10.5],
      ["B", 4 * S, 21, 3 * S, 19.5],
      ["A", 7 * S, 13, 6 * S, 12.5],
    ]);
    expect((await q("forward")).map((r) => r[4])).toEqual([10.5, 19.5, 10.5, 10.5, null, null]);
    expect((await q("nearest")).map((r) => r[4])).toEqual([9.5, 19.5, 10.5, 10.5, 19.5, 12.5]);
    expect((await q("backward", { tolerance: "500ms" })).map((r) => r[4])).toEqual([null, null, 10.5, 10.5, null, null]);
  });

  it("windowJoin - aggregates of right rows in [ts - before, ts + after]", async () => {
    const r = await rows({ op: "windowJoin", table: "trades", symbols: ["A"], columns: [], right: { table: "quotes" }, before: "1s", after: "1s", aggregates: [{ fn: "count" }, { fn: "max", column: "bid" }] });
    expect(r).toEqual([
      ["A", 1 * S, 2, 10.5],
      ["A", 2 * S, 1, 10.5],
      ["A", 2 * S, 1, 10.5],
      ["A", 7 * S, 1, 12.5],
    ]);
  });

  it("rolling - time and row windows, vwap, stddev, ema", async () => {
    const r = await rows({
      op: "rolling",
      table: "trades",
      symbols: ["A"],
      columns: ["price"],
      window: "2s",
      aggregates: [{ fn: "count" }, { fn: "sum", column: "price" }, { fn: "vwap", column: "price" }, { fn: "ema", column: "price", alpha: 0.5 }],
    });
    expect(r).toEqual([
      ["A", 1 * S, 10, 1, 10, 10, 10],
      ["A", 2 * S, 11, 2, 21, (10 * 100 + 11 * 100) / 200, 10.5],
      ["A", 2 * S, 12, 3, 33, (1000 + 1100 + 3600) / 500, 11.25],
      ["A", 7 * S, 13, 1, 13, 13, 12.125],
    ]);
    const byRows = await rows({ op: "rolling", table: "trades", symbols: ["A"], columns: [], rows: 2, aggregates: [{ fn: "stddev", column: "price" }, { fn: "min", column: "price" }] });
    expect(byRows.map((x) => x[3])).toEqual([10, 10, 11, 12]);
    expect(byRows[0]![2]).toBeNull();
    expect(byRows[1]![2]).toBeCloseTo(Math.SQRT1_2, 12);
  });

  it("bars - OHLCV with fill options", async () => {
    const none = await rows({ op: "bars", table: "trades", symbols: ["A"], t0: 0, t1: 8 * S, bucket: "2s" });
    expect(none).toEqual([
      ["A", 0, 10, 10, 10, 10, 100, 1, 10],
      ["A", 2 * S, 11, 12, 11, 12, 400, 2, (1100 + 3600) / 400],
      ["A", 6 * S, 13, 13, 13, 13, 100, 1, 13],
    ]);
    const prev = await rows({ op: "bars", table: "trades", symbols: ["A"], t0: 0, t1: 8 * S, bucket: "2s", fill: "previous" });
    expect(prev[2]).toEqual(["A", 4 * S, 12, 12, 12, 12, 0, 0, null]);
    const nul = await rows({ op: "bars", table: "trades", symbols: ["A", "Q"], t0: 0, t1: 4 * S, bucket: "2s", fill: "null" });
    expect(nul.filter((x) => x[0] === "Q")).toEqual([
      ["Q", 0, null, null, null, null, 0, 0, null],
      ["Q", 2 * S, null, null, null, null, 0, 0, null],
    ]);
  });

  it("groupBy - by symbol, by bucket and overall", async () => {
    const aggs = [{ fn: "count" }, { fn: "first", column: "price" }, { fn: "last", column: "price" }, { fn: "vwap", column: "price" }];
    expect(await rows({ op: "groupBy", table: "trades", by: ["symbol"], aggregates: aggs })).toEqual([
      ["A", 4, 10, 13, (1000 + 1100 + 3600 + 1300) / 600],
      ["B", 2, 20, 21, (4000 + 2100) / 300],
    ]);
    expect(await rows({ op: "groupBy", table: "trades", by: ["bucket"], bucket: "5s", aggregates: [{ fn: "count" }, { fn: "max", column: "price" }] })).toEqual([
      [0, 5, 21],
      [5 * S, 1, 13],
    ]);
    expect(await rows({ op: "groupBy", table: "trades", t0: 100 * S, t1: 200 * S, by: [], aggregates: [{ fn: "count" }, { fn: "sum", column: "size" }] })).toEqual([[0, null]]);
  });

  it("engine - Arrow batches carry the schema() fields and metadata", async () => {
    const e = engine();
    const q = { op: "asof", table: "trades", right: { table: "quotes" } };
    const schema = await e.schema("t", q);
    expect(schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual(["sym:Dictionary<Int32, Utf8>", "ts:Int64", "price:Float64", "size:Int64", "quotes_ts:Int64", "bid:Float64"]);
    const batches = [];
    for await (const b of e.run("t", q, new AbortController().signal)) batches.push(b);
    expect(batches.reduce((n, b) => n + b.numRows, 0)).toBe(6);
    const b = batches[0]!;
    expect(b.schema.metadata.get("proxist.complete")).toBe("true");
    expect(b.getChild("sym")!.get(1)).toBe("B");
    expect(b.getChild("ts")!.get(1)).toBe(BigInt(S));
    expect(b.getChild("bid")!.get(1)).toBeNull();
  });

  it("engine - minLsn waits on every shard of the tables it reads (read-after-write)", async () => {
    const waits: number[] = [];
    const shards = shardsOf(trades, T, 1).map((s) => ({ ...s, waitForLsn: (lsn: number) => (waits.push(lsn), Promise.resolve()) }));
    const e = new ProxistQueryEngine({ source: staticSource(new Map([["t", new Map([["trades", { spec: trades, shards }]])]])) });
    expect((await e.execute("t", { table: "trades", minLsn: 6 })).table.rows).toBe(6);
    expect(waits).toEqual([6, 6]);
    const slow = shards.map((s) => ({ ...s, waitForLsn: () => Promise.reject(new Error("timed out")) }));
    const e2 = new ProxistQueryEngine({ source: staticSource(new Map([["t", new Map([["trades", { spec: trades, shards: slow }]])]])) });
    await expect(e2.execute("t", { table: "trades", minLsn: 99 })).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED" });
  });

  it("engine - errors carry a status code and say what to fix", async () => {
    const e = engine();
    const code = async (tenant: string, q: unknown): Promise<string> => {
      try {
        await e.execute(tenant, q);
        return "ok";
      } catch (err) {
        expect(err).toBeInstanceOf(QueryError);
        return `${(err as QueryError).code}: ${(err as Error).message}`;
      }
    };
    expect(await code("t", { table: "nope" })).toMatch(/^NOT_FOUND: .*no table nope \(its tables: quotes, trades\)/);
    expect(await code("t", { table: "other.trades" })).toMatch(/^PERMISSION_DENIED/);
    expect(await code("t", { table: "trades", tenant: "x" })).toMatch(/^PERMISSION_DENIED/);
    expect(await code("t", { table: "trades", columns: ["bid"] })).toMatch(/^INVALID_ARGUMENT: .*no column "bid" \(its columns: price, size\)/);
    expect(await code("t", { op: "bars", table: "trades", bucket: "1m", fill: "null" })).toMatch(/^INVALID_ARGUMENT: .*narrow t0\/t1/);
    expect(await code("t", { op: "range" })).toMatch(/^INVALID_ARGUMENT: .*table/);
  });
});
