// POST /v1/query's JSON written from typed columns (src/node/httpapi/jsoncols.ts)
// against the Arrow path it replaces (record batches as the engine's run()
// builds them, then render.ts renderJson): the same bytes, over random answers
// (nulls, NaN and infinities, int64 beyond 2^53, fractions in int64 columns,
// symbols and names needing escapes, lone surrogates, notes with newlines,
// several tables and batches, both time styles), and over real queries of the
// engine (run() against runColumns()).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { arrowSchema, toRecordBatches } from "../../src/query/index.js";
import type { OutColumn, OutField, OutKind, OutTable, QueryColumns } from "../../src/query/index.js";
import { columnsFit, integerText, numberText, renderJsonColumns } from "../../src/node/httpapi/jsoncols.js";
import { renderJson } from "../../src/node/httpapi/render.js";
import type { TsStyle } from "../../src/node/httpapi/render.js";
import type { RecordBatch } from "apache-arrow";
import { TENANT, T_BASE, SPAN, buildHot, rng, workload } from "../query/fixture.js";

/** What the route answered before: the batches run() yields (notes in the schema metadata), rendered against schema(). */
function arrowPath(a: QueryColumns, ts: TsStyle, maxRows: number): string {
  const meta = new Map([["proxist.complete", a.notes.length === 0 ? "true" : "false"]]);
  if (a.notes.length > 0) meta.set("proxist.notes", a.notes.join("\n"));
  const runSchema = arrowSchema(a.fields, meta);
  const batches = a.tables.flatMap((t) => toRecordBatches(t, runSchema, maxRows));
  return renderJson(arrowSchema(a.fields), batches, ts);
}

/** The bytes of `f`, or its error's message (an ISO time out of Date's range throws on both paths). */
function outcome(f: () => string | Buffer): Buffer | string {
  try {
    const r = f();
    return typeof r === "string" ? Buffer.from(r, "utf8") : r;
  } catch (e) {
    return `throws ${(e as Error).name}: ${(e as Error).message}`;
  }
}

const text = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom("AAPL", "SYM00001", 'q"uote', "back\\slash", "new\nline", "tab\t", "\u0000\u001f", "ÄPPL", "株式", "😀", "\uD800", "x\uDC00y", "", "\u2028\u2029"),
);
const int64Value = fc.oneof(
  fc.integer({ min: -1e9, max: 1e9 }),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 0.5, -1.5, 2 ** 53, 2 ** 53 + 2, -(2 ** 53) - 2, 2 ** 63, -(2 ** 63), 2 ** 64, 1e20, 9007199254740991, -9007199254740991),
  fc.double(),
);
const tsValue = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 4_102_444_800_000_000 }) }, { weight: 1, arbitrary: int64Value });
const floatValue = fc.oneof(fc.double(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 1e21, 5e-324, 0.1, 100.15));
const KINDS: readonly OutKind[] = ["ts", "i64", "int64", "f64", "float64", "float32", "int32", "bool"];

function columnArb(field: OutField, rows: number, nsym: number): fc.Arbitrary<OutColumn> {
  const values = (v: fc.Arbitrary<number>) => fc.array(v, { minLength: rows, maxLength: rows });
  let data: fc.Arbitrary<OutColumn["data"]>;
  switch (field.kind) {
    case "sym":
      data = values(fc.integer({ min: 0, max: Math.max(0, nsym - 1) })).map((xs) => Int32Array.from(xs));
      break;
    case "ts":
      data = values(tsValue).map((xs) => Float64Array.from(xs));
      break;
    case "i64":
    case "int64":
      data = values(int64Value).map((xs) => Float64Array.from(xs));
      break;
    case "f64":
    case "float64":
      data = values(floatValue).map((xs) => Float64Array.from(xs));
      break;
    case "float32":
      data = values(floatValue).map((xs) => Float32Array.from(xs));
      break;
    case "int32":
      data = values(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })).map((xs) => Int32Array.from(xs));
      break;
    case "bool":
      data = values(fc.integer({ min: 0, max: 2 })).map((xs) => Uint8Array.from(xs));
      break;
  }
  const valid = field.nullable ? fc.option(values(fc.integer({ min: 0, max: 1 })).map((xs) => Uint8Array.from(xs)), { nil: undefined }) : fc.constant(undefined);
  return fc.tuple(data, valid).map(([d, v]) => (v === undefined ? { field, data: d } : { field, data: d, valid: v }));
}

const answerArb: fc.Arbitrary<QueryColumns> = fc
  .tuple(
    fc.array(fc.tuple(text, fc.constantFrom(...KINDS), fc.boolean()), { maxLength: 5 }),
    fc.boolean(),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 12 }), fc.array(text, { minLength: 1, maxLength: 6 })), { minLength: 1, maxLength: 3 }),
    fc.oneof(fc.constant([] as string[]), fc.array(fc.oneof(text, fc.constant(""), fc.constant("shard trades/2: not live\nreplaying")), { maxLength: 3 })),
  )
  .chain(([cols, symNullable, tables, notes]) => {
    const fields: OutField[] = [{ name: "sym", kind: "sym", nullable: symNullable }, ...cols.map(([name, kind, nullable]) => ({ name, kind, nullable }))];
    const tableArbs = tables.map(([rows, symbols]) =>
      fc.tuple(...fields.map((f) => columnArb(f, rows, symbols.length))).map((columns): OutTable => ({ rows, symbols, columns })),
    );
    return fc.tuple(...tableArbs).map((ts): QueryColumns => ({ fields, tables: ts, notes }));
  });

describe("http query JSON from columns", () => {
  it("jsoncols - random answers give the bytes of the Arrow path, in both time styles and any batch size", () => {
    fc.assert(
      fc.property(answerArb, fc.constantFrom<TsStyle>("us", "iso"), fc.integer({ min: 1, max: 8 }), (a, ts, maxRows) => {
        // Same-named columns are left to the Arrow path (Arrow merges their metadata); the rest is written from the columns.
        const distinct = new Set(a.fields.map((f) => f.name)).size === a.fields.length;
        expect(columnsFit(a)).toBe(distinct);
        if (distinct) expect(outcome(() => renderJsonColumns(a, ts))).toEqual(outcome(() => arrowPath(a, ts, maxRows)));
      }),
      { numRuns: 400 },
    );
  });

  it("jsoncols - numbers are printed as JSON.stringify prints them (its fast paths included)", () => {
    const rand = rng(18);
    const check = (v: number): void => {
      if (numberText(v) !== JSON.stringify(v)) expect(numberText(v), `value ${v}`).toBe(JSON.stringify(v));
    };
    for (let i = 0; i < 100_000; i++) {
      const k = Math.floor(rand() * 9);
      const scale = 10 ** Math.floor(rand() * 12 - 4);
      // Prices with k decimals, their sums (0.1 + 0.2), neighbours one ulp away, and arbitrary bit patterns.
      const m = Math.round(rand() * scale * 10 ** k) / 10 ** k;
      check(m);
      check(-m);
      check(m + 0.1 * rand());
      check(m * (1 + Number.EPSILON));
      check(m * (1 - Number.EPSILON));
      const bits = new Uint32Array([Math.floor(rand() * 2 ** 32), Math.floor(rand() * 2 ** 32)]);
      check(new Float64Array(bits.buffer)[0]!);
      const int = Math.floor(rand() * 2 ** 53) * (rand() < 0.5 ? -1 : 1);
      if (integerText(int) !== String(int)) expect(integerText(int), `integer ${int}`).toBe(String(int));
      check(int);
    }
    for (const v of [0, -0, 1e-6, 9.99e-7, 1e-7, 0.000005, 0.1 + 0.2, 1e21, 999999999.999999, 1e9 - 1e-6, 2 ** 53, 2 ** 53 + 2, 1e8, 99_999_999, 100_000_001, 0x3fffffff + 1, -(2 ** 31), 4503599627370495.5]) check(v);
    for (let hi = 1; hi < 2 ** 23; hi = hi * 3 + 1) for (const lo of [0, 1, 99_999_999, 50_000_000]) expect(integerText(hi * 1e8 + lo)).toBe(String(hi * 1e8 + lo));
  }, 60_000);

  it("jsoncols - a column not held as its kind's typed array is left to the Arrow path", () => {
    const fields: OutField[] = [{ name: "sym", kind: "sym", nullable: false }, { name: "n", kind: "int32", nullable: false }];
    const a: QueryColumns = { fields, tables: [{ rows: 1, symbols: ["A"], columns: [{ field: fields[0]!, data: Int32Array.of(0) }, { field: fields[1]!, data: Float64Array.of(3) }] }], notes: [] };
    expect(columnsFit(a)).toBe(false);
  });

  it("jsoncols - the engine's queries: runColumns() written as JSON equals run()'s batches rendered", async () => {
    const w = workload(7, { symbols: 9, records: 40 });
    const engine = buildHot(w).engine(undefined);
    const t1 = T_BASE + SPAN;
    const queries: Record<string, unknown>[] = [
      { op: "lastBy", table: "trades" },
      { op: "lastBy", table: "quotes", symbols: ["S1", "S3", "NOPE"], t1: T_BASE + Math.floor(SPAN / 2) },
      { op: "firstBy", table: "trades", t0: T_BASE + Math.floor(SPAN / 3) },
      { op: "range", table: "trades", t0: T_BASE, t1 },
      { op: "range", table: "quotes", symbols: ["S2"], t0: T_BASE, t1, limit: 17, order: "desc" },
      { op: "asof", table: "trades", columns: ["price"], right: { table: "quotes" }, t0: T_BASE, t1 },
      { op: "bars", table: "trades", symbols: ["S1", "S2", "NOPE"], t0: T_BASE, t1, bucket: "2s", fill: "null" },
      { op: "bars", table: "trades", t0: T_BASE, t1, bucket: "5s", fill: "previous" },
      { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "count" }, { fn: "first", column: "price" }, { fn: "vwap", column: "price" }] },
      { op: "groupBy", table: "trades", by: ["bucket"], bucket: "5s", aggregates: [{ fn: "count" }, { fn: "max", column: "price" }, { fn: "sum", column: "size" }] },
      { op: "groupBy", table: "trades", t0: 0, t1: 1, by: [], aggregates: [{ fn: "count" }, { fn: "sum", column: "size" }] },
      { op: "rolling", table: "trades", symbols: ["S1"], columns: [], rows: 2, aggregates: [{ fn: "stddev", column: "price" }, { fn: "min", column: "price" }] },
      { op: "rolling", table: "trades", columns: ["price"], window: "2s", aggregates: [{ fn: "count" }, { fn: "vwap", column: "price" }, { fn: "ema", column: "price", alpha: 0.5 }] },
    ];
    for (const query of queries) {
      for (const ts of ["us", "iso"] as const) {
        const schema = await engine.schema(TENANT, query);
        const batches: RecordBatch[] = [];
        for await (const b of engine.run(TENANT, query, new AbortController().signal)) batches.push(b);
        const cols = await engine.runColumns(TENANT, query, new AbortController().signal);
        expect(columnsFit(cols), JSON.stringify(query)).toBe(true);
        expect(renderJsonColumns(cols, ts).toString("utf8"), `${JSON.stringify(query)} ts=${ts}`).toBe(renderJson(schema, batches, ts));
        expect(cols.tables.reduce((n, t) => n + t.rows, 0)).toBe(batches.reduce((n, b) => n + b.numRows, 0));
      }
    }
  });
});
