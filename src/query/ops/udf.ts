// User-defined functions in queries (issue 17): scalar ones as derived columns
// of range, aggregate ones in groupBy, bars and rolling. The operators see a
// UdfRunner (src/udf runs it in sandboxes); rows go to it in bulk, per
// argument column as float64. Group aggregates read rows (hot and cold, stitched),
// not ClickHouse partials: a user's state cannot be pushed down.
import type { Aggregate, RangeQuery } from "../../../protocols/query.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { orderRows } from "../order.js";
import type { OutTable } from "../output.js";
import { GroupTable, bucketStart, hotPartials } from "../partials.js";
import { lowerBound } from "../series.js";
import type { SymbolSeries } from "../series.js";
import { columnIndex, fieldsOf, selectedColumns } from "./fields.js";
import { rowsTable } from "./rows.js";

/** An aggregate's state per group, kept by the runner between batches. */
export interface UdfFold {
  /** Folds segment r (rows from the previous segment's end up to ends[r]) into group gids[r]. */
  add(gids: Int32Array, ends: Int32Array, cols: readonly Float64Array[]): void;
  /** The final value of groups 0..groups-1 (NaN = null). */
  finish(groups: number): Float64Array;
}

/** Runs the query's user-defined functions (one query's session: its CPU budget and its limits). */
export interface UdfRunner {
  scalar(a: Aggregate, cols: readonly Float64Array[], n: number): Float64Array;
  aggregate(a: Aggregate): UdfFold;
  /** finish(fold(rows [start[i], end[i]))) per i, indices into `cols`. */
  window(a: Aggregate, start: Int32Array, end: Int32Array, cols: readonly Float64Array[]): Float64Array;
}

/** The argument columns of `a` over rows [lo, hi) of `s`, as float64 (views when they already are). */
export function udfArgs(spec: TableSpec, s: SymbolSeries, a: Aggregate, lo: number, hi: number): Float64Array[] {
  return a.udf!.args.map((name, i) => {
    const v = s.values[columnIndex(spec, name, `udf ${a.udf!.name} args[${i}]`)]!;
    return v instanceof Float64Array ? v.subarray(lo, hi) : Float64Array.from(v.subarray(lo, hi));
  });
}

const validOf = (d: Float64Array): Uint8Array => Uint8Array.from(d, (x) => (x === x ? 1 : 0));

/** range with derived columns: the rows as rangeOp gives them (after the limit), their arguments gathered in output order and passed in batches. */
export function udfRangeOp(q: RangeQuery, spec: TableSpec, series: readonly SymbolSeries[], run: UdfRunner): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  const refs = orderRows(series, q.sort, q.order === "desc", q.limit ?? Infinity);
  const extras = (q.derived ?? []).map((a) => {
    const args = a.udf!.args.map((name, i) => {
      const j = columnIndex(spec, name, `derived ${a.udf!.name} args[${i}]`);
      const out = new Float64Array(refs.n);
      for (let k = 0; k < refs.n; k++) out[k] = series[refs.sym[k]!]!.values[j]![refs.idx[k]!]!;
      return out;
    });
    return run.scalar(a, args, refs.n);
  });
  return rowsTable(fields, spec, selectedColumns(spec, q.columns), series, refs, extras, extras.map(validOf));
}

/**
 * The group table of a groupBy or bars query whose aggregates include
 * user-defined ones: built-ins from the rows' partials, user-defined ones
 * folded in the sandbox (one segment per symbol and bucket; groups across
 * symbols are merged there), read through `t.udf`.
 */
export function udfGroupTable(aggs: readonly Aggregate[], spec: TableSpec, series: readonly SymbolSeries[], bucket: number | undefined, bySymbol: boolean, run: UdfRunner): GroupTable {
  const t = new GroupTable(aggs);
  hotPartials(t, spec, series, bucket, bySymbol);
  // Our own group ids per (symbol id, bucket start), and the segments of every series in one pass. Number keys in
  // a map per symbol: a string key per segment and per output row cost more than the user's VWAP itself.
  const gidOf: Map<number, number>[] = [];
  let groups = 0;
  const gids: number[] = [];
  const ends: number[] = [];
  let total = 0;
  for (const s of series) {
    const sid = t.symbolId(bySymbol ? s.symbol : "");
    const bySid = (gidOf[sid] ??= new Map());
    let i = s.lo;
    while (i < s.hi) {
      const bk = bucket === undefined ? 0 : bucketStart(s.ts[i]!, bucket);
      const end = bucket === undefined ? s.hi : lowerBound(s.ts, bk + bucket, i, s.hi);
      let g = bySid.get(bk);
      if (g === undefined) bySid.set(bk, (g = groups++));
      gids.push(g);
      ends.push(total + end - s.lo);
      i = end;
    }
    total += Math.max(0, s.hi - s.lo);
  }
  const results = new Map<number, Float64Array>();
  aggs.forEach((a, k) => {
    if (a.fn !== "udf") return;
    // The argument columns of every series, end to end (one batch sequence instead of a call per symbol).
    const cols = a.udf!.args.map(() => new Float64Array(total));
    let at = 0;
    for (const s of series) {
      if (s.hi <= s.lo) continue;
      udfArgs(spec, s, a, s.lo, s.hi).forEach((c, j) => cols[j]!.set(c, at));
      at += s.hi - s.lo;
    }
    const fold = run.aggregate(a);
    fold.add(Int32Array.from(gids), Int32Array.from(ends), cols);
    results.set(k, fold.finish(groups));
  });
  t.udf = (k, i) => {
    const g = gidOf[t.sym[i]!]?.get(bucket === undefined ? 0 : t.bucket[i]!);
    return g === undefined ? Number.NaN : results.get(k)![g]!;
  };
  return t;
}


/** Where the engine gets a query's runner (src/udf's UdfHost): checks the tenant's rate limit and loads the functions. */
export interface UdfSessions {
  session(tenant: string, calls: readonly { readonly a: Aggregate; readonly kind: "scalar" | "aggregate" }[]): Promise<UdfRunner & { close(): void }>;
}

/** The calls of a query with the kind each use needs (derived: scalar, aggregates: aggregate). */
export function udfUses(q: { readonly op: string }, calls: readonly Aggregate[]): { a: Aggregate; kind: "scalar" | "aggregate" }[] {
  return calls.map((a) => ({ a, kind: q.op === "range" ? "scalar" : "aggregate" }));
}
