// The pushed-down GROUP BY of bars and groupBy: one statement over every
// shard's cold slice, and its RowBinary result read back into partials.
import { describe, expect, it } from "vitest";
import type { Aggregate } from "../../protocols/query.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { GroupTable, addColdPartials, coldPartialsSql, packedKeys } from "../../src/query/partials.js";
import type { ColdSlice, ColdSource } from "../../src/query/source.js";
import { SPAN, TENANT, T_BASE, buildHot, workload } from "./fixture.js";
import { diffRows, outRows } from "./oracle.js";

const spec = parseTableSpec({ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });
const agg = (fn: Aggregate["fn"], column?: string, weight?: string): Aggregate => ({ fn, column, weight, alpha: undefined, as: fn });
const slice = (shard: number, persistedLsn: number, horizonMicros: number, symbols?: string[]): ColdSlice => ({ tenant: "acme", spec, shard, persistedLsn, horizonMicros, symbols });

/** RowBinary rows as ClickHouse writes them for coldPartialsSql: a String, then Float64s. */
function rowBinary(rows: readonly (readonly [string, ...number[]])[]): Uint8Array {
  const out: number[] = [];
  for (const [sym, ...nums] of rows) {
    const bytes = new TextEncoder().encode(sym);
    let len = bytes.length;
    do {
      out.push((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
      len >>>= 7;
    } while (len > 0);
    out.push(...bytes);
    const f = new DataView(new ArrayBuffer(8));
    for (const x of nums) {
      f.setFloat64(0, x, true);
      for (let i = 0; i < 8; i++) out.push(f.getUint8(i));
    }
  }
  return Uint8Array.from(out);
}

describe("pushed-down partials", () => {
  it("partials - one statement reads every shard's cold slice under its own P, H and symbols", () => {
    const aggs: Aggregate[] = [agg("count"), agg("sum", "size")];
    const sql = coldPartialsSql([slice(0, 40, 1_000, ["A"]), slice(1, 7, 900, ["B", "C"])], 100, 2_000, aggs, 60, true);
    expect(sql.match(/SELECT/g)).toHaveLength(1);
    expect(sql).toContain(`(\`_shard\` = 0 AND \`_lsn\` <= 40 AND \`ts\` < 1000 AND \`sym\` IN ('A')) OR (\`_shard\` = 1 AND \`_lsn\` <= 7 AND \`ts\` < 900 AND \`sym\` IN ('B', 'C'))`);
    expect(sql).toContain(`\`ts\` >= 100 AND`);
    expect(sql).toMatch(/FORMAT RowBinary$/);
    // A shard asked for no symbol matches no row (`IN ()` does not parse).
    expect(coldPartialsSql([slice(0, 40, 1_000, [])], 0, 500, aggs, undefined, false)).toContain("< 500 AND 0)");
    // t1 below a shard's horizon bounds that shard by t1.
    expect(coldPartialsSql([slice(0, 40, 1_000)], 0, 500, aggs, undefined, false)).toContain(`(\`_shard\` = 0 AND \`_lsn\` <= 40 AND \`ts\` < 500)`);
  });

  it("partials - slices of two tables in one statement are refused", () => {
    const other = { ...slice(1, 7, 900), spec: parseTableSpec({ name: "quotes", shards: 2, columns: [{ name: "bid", type: "float64" }] }) };
    expect(() => coldPartialsSql([slice(0, 40, 1_000), other], 0, 500, [agg("count")], undefined, true)).toThrow(/another table/);
  });

  it("partials - the RowBinary result is read into groups: UTF-8 symbols, long names, infinities, empty groups skipped", () => {
    // count: no field; sum: sum; first: ts, lsn, row, value; vwap: pw, w.
    const aggs: Aggregate[] = [agg("count"), agg("sum", "size"), agg("first", "price"), agg("vwap", "price", "size")];
    const long = "S".repeat(200);
    const t = new GroupTable(aggs);
    addColdPartials(
      t,
      rowBinary([
        ["€UR", 60, 3, 30, 61, 5, 2, 1.5, 45, 30],
        [long, 120, 1, Infinity, 121, 9, 0, -2, -Infinity, 1],
        ["EMPTY", 0, 0, 0, 0, 0, 0, 0, 0, 0],
      ]),
    );
    expect(t.size).toBe(2);
    expect(t.names).toEqual(["€UR", long]);
    expect([...t.bucket.subarray(0, 2)]).toEqual([60, 120]);
    expect([...t.n.subarray(0, 2)]).toEqual([3, 1]);
    expect([0, 1].map((g) => [t.col(1, 0)[g], t.col(2, 0)[g], t.col(2, 1)[g], t.col(2, 2)[g], t.col(2, 3)[g], t.col(3, 0)[g], t.col(3, 1)[g]])).toEqual([
      [30, 61, 5, 2, 1.5, 45, 30],
      [Infinity, 121, 9, 0, -2, -Infinity, 1],
    ]);
  });

  it("partials - first/last keys pack into one Decimal128 while P < 2^44, else the tuple", () => {
    const aggs = [agg("first", "price"), agg("last", "price")];
    expect(packedKeys([slice(0, 2 ** 44 - 1, 1_000), slice(1, 7, 900)])).toBe(true);
    expect(packedKeys([slice(0, 40, 1_000), slice(1, 2 ** 44, 900)])).toBe(false);
    const key = "(toDecimal128(`ts`, 0) * toDecimal128(4294967296, 0) * toDecimal128(4294967296, 0) + toDecimal128(`_lsn`, 0) * toDecimal128(1048576, 0) + toDecimal128(`_row`, 0))";
    const packed = coldPartialsSql([slice(0, 40, 1_000)], 0, 500, aggs, 60, true, true);
    expect(packed).toContain(`min(${key}), argMin(toFloat64(\`price\`), ${key}), max(${key}), argMax(toFloat64(\`price\`), ${key})`);
    expect(packed).not.toContain("tuple");
    expect(coldPartialsSql([slice(0, 40, 1_000)], 0, 500, aggs, 60, true)).toContain("toFloat64(tupleElement(min(tuple(`ts`, `_lsn`, `_row`)), 1))");
  });

  it("partials - a packed key is read back as the row's ts, lsn and row, exactly at the edges of its bits", () => {
    const le128 = (ts: bigint, lsn: bigint, row: bigint): number[] => {
      let v = (ts << 64n) | (lsn << 20n) | row;
      return Array.from({ length: 16 }, () => {
        const b = Number(v & 0xffn);
        v >>= 8n;
        return b;
      });
    };
    const f64 = (x: number): number[] => Array.from(new Uint8Array(Float64Array.of(x).buffer));
    // Symbol, bucket, count, then first (key, value), sum, last (key, value).
    const row = (sym: string, key1: number[], v1: number, sum: number, key2: number[], v2: number): number[] => [sym.length, ...new TextEncoder().encode(sym), ...f64(60), ...f64(3), ...key1, ...f64(v1), ...f64(sum), ...key2, ...f64(v2)];
    const ts = 1_704_205_800_123_456n;
    const bytes = Uint8Array.from([
      ...row("A", le128(ts, 2n ** 44n - 1n, 999_999n), 1.5, 10, le128(ts + 59_999_999n, 5n, 0n), 2.5),
      ...row("B", le128(2n ** 53n - 1n, 1n, 2n ** 20n - 1n), -3, 0.25, le128(0n, 0n, 0n), 4),
    ]);
    const t = new GroupTable([agg("first", "price"), agg("sum", "size"), agg("last", "price")]);
    addColdPartials(t, bytes, true);
    const fields = (k: number, f: number): number[] => [t.col(k, f)[0]!, t.col(k, f)[1]!];
    expect([0, 1, 2, 3].map((f) => fields(0, f))).toEqual([
      [Number(ts), 2 ** 53 - 1],
      [2 ** 44 - 1, 1],
      [999_999, 2 ** 20 - 1],
      [1.5, -3],
    ]);
    expect(fields(1, 0)).toEqual([10, 0.25]);
    expect([0, 1, 2, 3].map((f) => fields(2, f))).toEqual([
      [Number(ts + 59_999_999n), 0],
      [5, 0],
      [0, 0],
      [2.5, 4],
    ]);
    // Read as if not packed, the same bytes are refused or misread: the flag is what the layout depends on.
    expect(() => addColdPartials(new GroupTable([agg("first", "price"), agg("sum", "size"), agg("last", "price")]), bytes.subarray(0, bytes.length / 2))).toThrow(/ends inside a row/);
  });

  it("partials - a result cut inside a row is refused by name, not read short", () => {
    const whole = rowBinary([["A", 60, 3]]);
    expect(() => addColdPartials(new GroupTable([agg("count")]), whole.subarray(0, whole.length - 3))).toThrow(/ends inside a row/);
    expect(() => addColdPartials(new GroupTable([agg("count")]), Uint8Array.from([5, 65]))).toThrow(/ends inside a row/);
    expect(() => addColdPartials(new GroupTable([agg("count")]), Uint8Array.from([0x85]))).toThrow(/pushed-down partials: string length runs past the end \(byte 1 of 1\)/);
    expect(() => addColdPartials(new GroupTable([agg("count")]), Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80]))).toThrow(/string length varint is too long/);
  });

  // 50 buckets: few (symbol, bucket) cells against the rows (a counting sort); a million: many (a typed sort of one number per row).
  it.each([50, 1_000_000])("partials - groups() puts rows of any order in (symbol, bucket) order and combines equal keys (buckets from %i)", (buckets) => {
    // Seeded: symbols and buckets drawn at random, as a pushed-down GROUP BY returns them (hash order).
    let seed = 7;
    const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const t = new GroupTable([agg("sum", "size")]);
    const want = new Map<string, number>();
    for (let i = 0; i < 5_000; i++) {
      const sym = `S${rnd(300)}`;
      const bucket = (rnd(buckets) - (buckets >> 1)) * 60_000_000;
      const g = t.add(t.symbolId(sym), bucket, 1);
      t.col(0, 0)[g] = i;
      const k = `${sym}|${bucket}`;
      want.set(k, (want.get(k) ?? 0) + i);
    }
    const groups = [...t.groups()];
    const keys = groups.map((g) => [t.names[t.sym[g]!]!, t.bucket[g]!] as const);
    const sorted = [...keys].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
    expect(keys).toEqual(sorted);
    expect(new Set(keys.map(([s, b]) => `${s}|${b}`)).size).toBe(want.size);
    expect(new Map(groups.map((g) => [`${t.names[t.sym[g]!]!}|${t.bucket[g]!}`, t.col(0, 0)[g]!]))).toEqual(want);
  });

  // A cold store that takes SQL makes the engine read the hot rows chunk by chunk (loadHotPieces: a symbol's
  // chunks are partials of their own, combined by key); without one it reads flattened series. The fixture's
  // chunks hold 4-64 rows, so buckets and symbols span many of them. Sums add in another order: within 1e-9.
  it("partials - hot rows read chunk by chunk give the bars and groupBy of flattened series", async () => {
    const w = workload(5, { symbols: 7, records: 120 });
    const hot = buildHot(w);
    const noCold: ColdSource = {
      range: () => Promise.reject(new Error("no cold read expected")),
      edge: () => Promise.reject(new Error("no cold read expected")),
      sql: () => Promise.reject(new Error("no cold read expected")),
    };
    const pieces = hot.engine(noCold);
    const flat = hot.engine(undefined);
    const all = [agg("count"), agg("sum", "size"), agg("avg", "price"), agg("min", "price"), agg("max", "price"), agg("first", "price"), agg("last", "price"), agg("vwap", "price", "size")];
    const aggregates = all.map(({ fn, column, weight }) => ({ fn, ...(column === undefined ? {} : { column }), ...(weight === undefined ? {} : { weight }) }));
    const queries = [
      { op: "bars", table: "trades", bucket: "1s" },
      { op: "bars", table: "trades", bucket: "250ms", t0: T_BASE + Math.floor(SPAN / 5), t1: T_BASE + Math.floor(SPAN / 2), symbols: ["S1", "S3", "NOPE"] },
      { op: "groupBy", table: "trades", by: ["symbol"], aggregates },
      { op: "groupBy", table: "trades", by: ["symbol", "bucket"], bucket: "2s", aggregates },
      { op: "groupBy", table: "trades", by: [], aggregates, t0: T_BASE + Math.floor(SPAN / 3) },
    ];
    for (const q of queries) {
      const got = await pieces.execute(TENANT, q);
      const want = await flat.execute(TENANT, q);
      expect(got.table.rows).toBeGreaterThan(0);
      expect({ q, diff: diffRows(outRows(got.table), outRows(want.table)) }).toEqual({ q, diff: undefined });
    }
  });
});
