// The operators, over stitched per-symbol series (see load.ts): each returns an
// OutTable whose columns are `fieldsOf(query)`. Pure and synchronous: the same
// code answers hot-only and seam-spanning queries.
import type { Aggregate, AsofQuery, BarsQuery, ByQuery, GroupByQuery, Query, RangeQuery, RollingQuery, WindowJoinQuery } from "../../protocols/query.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { QueryError } from "../../protocols/errors.js";
import type { SeamRow } from "../hotset/index.js";
import { allocValueArray } from "../codec/tickbatch.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { orderRows } from "./order.js";
import { bucketStart } from "./partials.js";
import type { GroupTable } from "./partials.js";
import { compareStrings } from "./load.js";
import type { RowRefs } from "./order.js";
import type { OutColumn, OutField, OutTable } from "./output.js";
import { before, lowerBound, upperBound } from "./series.js";
import type { HotShard } from "./source.js";
import type { SymbolSeries } from "./series.js";
import { ema, slidingAggregates } from "./window.js";
import { symbolsInOrder, symbolsListed } from "./symorder.js";
import type { AggInput } from "./window.js";

/** A query that names something that does not exist or cannot be combined. */
const planError = (message: string): QueryError => new QueryError("INVALID_ARGUMENT", message);

export function columnIndex(spec: TableSpec, name: string, field: string): number {
  const j = spec.columns.findIndex((c) => c.name === name);
  if (j < 0) throw planError(`query field ${field}: table ${spec.name} has no column "${name}" (its columns: ${spec.columns.map((c) => c.name).join(", ")})`);
  return j;
}

/** Indices of the selected value columns (all when `columns` is undefined). */
export function selectedColumns(spec: TableSpec, columns: readonly string[] | undefined, field = "columns"): number[] {
  return columns === undefined ? spec.columns.map((_, j) => j) : columns.map((c) => columnIndex(spec, c, field));
}

const numeric = (spec: TableSpec, j: number, field: string): void => {
  if (spec.columns[j]!.type === "bool") throw planError(`query field ${field}: column ${spec.columns[j]!.name} is bool; aggregate a numeric column`);
};

function aggColumns(spec: TableSpec, q: { aggregates: readonly { column: string | undefined; weight: string | undefined }[] }): void {
  q.aggregates.forEach((a, i) => {
    if (a.column !== undefined) numeric(spec, columnIndex(spec, a.column, `aggregates[${i}].column`), `aggregates[${i}].column`);
    if (a.weight !== undefined) numeric(spec, columnIndex(spec, a.weight, `aggregates[${i}].weight`), `aggregates[${i}].weight`);
  });
}

// ---- result fields -------------------------------------------------------------

const f = (name: string, kind: OutField["kind"], nullable = false): OutField => ({ name, kind, nullable });

function valueFields(spec: TableSpec, cols: readonly number[], nullable = false, rename?: (n: string) => string): OutField[] {
  return cols.map((j) => {
    const c = spec.columns[j]!;
    return f(rename ? rename(c.name) : c.name, c.type, nullable);
  });
}

/** Right-side column names: as in the right table, prefixed with the right table's name when they clash. */
export function rightName(left: TableSpec, right: TableSpec, name: string): string {
  const taken = new Set([left.symbolColumn, left.timeColumn, ...left.columns.map((c) => c.name)]);
  return taken.has(name) ? `${right.name}_${name}` : name;
}

const BAR_FIELDS = ["open", "high", "low", "close"];

/** Value-column indices each table of a query reads (for loading). */
export function neededColumns(q: Query, left: TableSpec, right: TableSpec | undefined): { left: boolean[]; right: boolean[] } {
  const l = new Array<boolean>(left.columns.length).fill(false);
  const r = new Array<boolean>(right?.columns.length ?? 0).fill(false);
  const mark = (arr: boolean[], js: readonly number[]): void => js.forEach((j) => (arr[j] = true));
  switch (q.op) {
    case "range":
    case "lastBy":
    case "firstBy":
      mark(l, selectedColumns(left, q.columns));
      break;
    case "asof":
      mark(l, selectedColumns(left, q.columns));
      mark(r, selectedColumns(right!, q.right.columns, "right.columns"));
      break;
    case "windowJoin":
      mark(l, selectedColumns(left, q.columns));
      for (const a of q.aggregates) {
        if (a.column !== undefined) r[columnIndex(right!, a.column, "aggregates.column")] = true;
        if (a.weight !== undefined) r[columnIndex(right!, a.weight, "aggregates.weight")] = true;
      }
      break;
    case "rolling":
    case "groupBy":
      if (q.op === "rolling") mark(l, selectedColumns(left, q.columns));
      for (const a of q.aggregates) {
        if (a.column !== undefined) l[columnIndex(left, a.column, "aggregates.column")] = true;
        if (a.weight !== undefined) l[columnIndex(left, a.weight, "aggregates.weight")] = true;
      }
      break;
    case "bars":
      l[columnIndex(left, q.price, "price")] = true;
      l[columnIndex(left, q.size, "size")] = true;
      break;
  }
  return { left: l, right: r };
}

/** The result's fields; throws QueryError INVALID_ARGUMENT for unknown or unusable columns. */
export function fieldsOf(q: Query, left: TableSpec, right: TableSpec | undefined): OutField[] {
  const head = [f(left.symbolColumn, "sym"), f(left.timeColumn, "ts")];
  switch (q.op) {
    case "range":
    case "lastBy":
    case "firstBy":
      return [...head, ...valueFields(left, selectedColumns(left, q.columns))];
    case "asof": {
      const rc = selectedColumns(right!, q.right.columns, "right.columns");
      return [...head, ...valueFields(left, selectedColumns(left, q.columns)), f(rightName(left, right!, `${right!.timeColumn}`), "ts", true), ...valueFields(right!, rc, true, (n) => rightName(left, right!, n))];
    }
    case "windowJoin":
      aggColumns(right!, q);
      return [...head, ...valueFields(left, selectedColumns(left, q.columns)), ...q.aggregates.map((a) => f(a.as, a.fn === "count" ? "i64" : "f64", a.fn !== "count"))];
    case "rolling":
      aggColumns(left, q);
      return [...head, ...valueFields(left, selectedColumns(left, q.columns)), ...q.aggregates.map((a) => f(a.as, a.fn === "count" ? "i64" : "f64", a.fn !== "count" && a.fn !== "ema"))];
    case "bars": {
      numeric(left, columnIndex(left, q.price, "price"), "price");
      numeric(left, columnIndex(left, q.size, "size"), "size");
      const nullOhlc = q.fill === "null" || q.fill === "previous";
      return [...head, ...BAR_FIELDS.map((n) => f(n, "f64", nullOhlc)), f("volume", "f64"), f("count", "i64"), f("vwap", "f64", true)];
    }
    case "groupBy": {
      aggColumns(left, q);
      const keys: OutField[] = [];
      if (q.bySymbol) keys.push(f(left.symbolColumn, "sym"));
      if (q.bucketMicros !== undefined) keys.push(f(left.timeColumn, "ts"));
      return [...keys, ...q.aggregates.map((a) => f(a.as, a.fn === "count" ? "i64" : "f64", a.fn !== "count"))];
    }
  }
}

// ---- helpers -------------------------------------------------------------------

function like(v: ValueArray, n: number): ValueArray {
  const C = v.constructor as new (n: number) => ValueArray;
  return new C(n);
}

function gatherSym(refs: RowRefs): OutColumn["data"] {
  return refs.sym.slice(0, refs.n);
}

function gatherTs(series: readonly SymbolSeries[], refs: RowRefs): Float64Array {
  const out = new Float64Array(refs.n);
  for (let k = 0; k < refs.n; k++) out[k] = series[refs.sym[k]!]!.ts[refs.idx[k]!]!;
  return out;
}

function gatherValues(spec: TableSpec, series: readonly SymbolSeries[], refs: RowRefs, j: number): ValueArray {
  const out = allocValueArray(spec.columns[j]!.type, refs.n);
  for (let k = 0; k < refs.n; k++) out[k] = series[refs.sym[k]!]!.values[j]![refs.idx[k]!]!;
  return out;
}

/** Per-series output arrays (computed per symbol over rows [lo, hi)) gathered in `refs` order. */
function gatherPerSeries(perSeries: readonly Float64Array[], series: readonly SymbolSeries[], refs: RowRefs): Float64Array {
  const out = new Float64Array(refs.n);
  for (let k = 0; k < refs.n; k++) out[k] = perSeries[refs.sym[k]!]![refs.idx[k]! - series[refs.sym[k]!]!.lo]!;
  return out;
}
function gatherValid(perSeries: readonly Uint8Array[], series: readonly SymbolSeries[], refs: RowRefs): Uint8Array {
  const out = new Uint8Array(refs.n);
  for (let k = 0; k < refs.n; k++) out[k] = perSeries[refs.sym[k]!]![refs.idx[k]! - series[refs.sym[k]!]!.lo]!;
  return out;
}

function rowsTable(fields: readonly OutField[], spec: TableSpec, cols: readonly number[], series: readonly SymbolSeries[], refs: RowRefs, extra: OutColumn["data"][], extraValid: (Uint8Array | undefined)[]): OutTable {
  const columns: OutColumn[] = [
    { field: fields[0]!, data: gatherSym(refs) },
    { field: fields[1]!, data: gatherTs(series, refs) },
    ...cols.map((j, i): OutColumn => ({ field: fields[2 + i]!, data: gatherValues(spec, series, refs, j) })),
    ...extra.map((data, i): OutColumn => {
      const valid = extraValid[i];
      return valid === undefined ? { field: fields[2 + cols.length + i]!, data } : { field: fields[2 + cols.length + i]!, data, valid };
    }),
  ];
  return { rows: refs.n, symbols: series.map((s) => s.symbol), columns };
}

// ---- operators -----------------------------------------------------------------

export function rangeOp(q: RangeQuery, spec: TableSpec, series: readonly SymbolSeries[]): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  const refs = orderRows(series, q.sort, q.order === "desc", q.limit ?? Infinity);
  return rowsTable(fields, spec, selectedColumns(spec, q.columns), series, refs, [], []);
}

/** lastBy: the last row per symbol in [t0, t1); firstBy: the first. Symbols without one are left out. */
export function byOp(q: ByQuery, spec: TableSpec, series: readonly SymbolSeries[]): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  const sym: number[] = [];
  const idx: number[] = [];
  series.forEach((s, si) => {
    // Loaded with look-behind (lastBy) or look-ahead (firstBy) of one row around an empty range.
    const i = q.op === "lastBy" ? s.lo - 1 : s.hi;
    if (i >= 0 && i < s.n && s.ts[i]! >= q.t0 && s.ts[i]! < q.t1) {
      sym.push(si);
      idx.push(i);
    }
  });
  const refs: RowRefs = { n: sym.length, sym: Int32Array.from(sym), idx: Int32Array.from(idx) };
  return rowsTable(fields, spec, selectedColumns(spec, q.columns), series, refs, [], []);
}

/** Index of the right row matched by a left row at ts, or -1. */
function asofMatch(r: SymbolSeries, ts: number, direction: AsofQuery["direction"], tol: number): number {
  const back = upperBound(r.ts, ts, 0, r.n) - 1;
  const fwd = lowerBound(r.ts, ts, 0, r.n);
  const db = back >= 0 ? ts - r.ts[back]! : Infinity;
  const df = fwd < r.n ? r.ts[fwd]! - ts : Infinity;
  let m: number;
  let d: number;
  if (direction === "backward") [m, d] = [back, db];
  else if (direction === "forward") [m, d] = [fwd, df];
  else [m, d] = db <= df ? [back, db] : [fwd, df];
  return d !== Infinity && d <= tol ? m : -1;
}

export function asofOp(q: AsofQuery, left: TableSpec, right: TableSpec, ls: readonly SymbolSeries[], rs: ReadonlyMap<string, SymbolSeries>): OutTable {
  const fields = fieldsOf(q, left, right);
  const rc = selectedColumns(right, q.right.columns, "right.columns");
  const tol = q.toleranceMicros ?? Infinity;
  const match: Int32Array[] = [];
  const rightOf: (SymbolSeries | undefined)[] = [];
  for (const s of ls) {
    const r = rs.get(s.symbol);
    rightOf.push(r);
    const m = new Int32Array(s.hi - s.lo).fill(-1);
    if (r !== undefined && r.n > 0) for (let i = s.lo; i < s.hi; i++) m[i - s.lo] = asofMatch(r, s.ts[i]!, q.direction, tol);
    match.push(m);
  }
  const refs = orderRows(ls, q.sort, false);
  const n = refs.n;
  const rts = new Float64Array(n);
  const valid = new Uint8Array(n);
  const rvals = rc.map((j) => allocValueArray(right.columns[j]!.type, n));
  for (let k = 0; k < n; k++) {
    const si = refs.sym[k]!;
    const m = match[si]![refs.idx[k]! - ls[si]!.lo]!;
    if (m < 0) continue;
    const r = rightOf[si]!;
    valid[k] = 1;
    rts[k] = r.ts[m]!;
    rc.forEach((j, c) => (rvals[c]![k] = r.values[j]![m]!));
  }
  return rowsTable(fields, left, selectedColumns(left, q.columns), ls, refs, [rts, ...rvals], [valid, ...rc.map(() => valid)]);
}

function aggInputs(spec: TableSpec, s: SymbolSeries | undefined, aggs: readonly { column: string | undefined; weight: string | undefined }[]): AggInput[] {
  return aggs.map((a) => ({
    agg: a as AggInput["agg"],
    x: a.column === undefined || s === undefined ? undefined : s.values[columnIndex(spec, a.column, "aggregates.column")],
    w: a.weight === undefined || s === undefined ? undefined : s.values[columnIndex(spec, a.weight, "aggregates.weight")],
  }));
}

export function windowJoinOp(q: WindowJoinQuery, left: TableSpec, right: TableSpec, ls: readonly SymbolSeries[], rs: ReadonlyMap<string, SymbolSeries>): OutTable {
  const fields = fieldsOf(q, left, right);
  const per = q.aggregates.map(() => ({ data: [] as Float64Array[], valid: [] as Uint8Array[] }));
  for (const s of ls) {
    const m = s.hi - s.lo;
    const r = rs.get(s.symbol);
    const start = new Int32Array(m);
    const end = new Int32Array(m);
    if (r !== undefined) {
      for (let i = 0; i < m; i++) {
        const t = s.ts[s.lo + i]!;
        start[i] = lowerBound(r.ts, t - q.beforeMicros, 0, r.n);
        end[i] = upperBound(r.ts, t + q.afterMicros, start[i]!, r.n);
      }
    }
    const outs = r === undefined ? q.aggregates.map((a) => ({ data: new Float64Array(m), valid: new Uint8Array(m).fill(a.fn === "count" ? 1 : 0) })) : slidingAggregates(aggInputs(right, r, q.aggregates), start, end);
    outs.forEach((o, a) => {
      per[a]!.data.push(o.data);
      per[a]!.valid.push(o.valid);
    });
  }
  const refs = orderRows(ls, q.sort, false);
  return rowsTable(
    fields,
    left,
    selectedColumns(left, q.columns),
    ls,
    refs,
    per.map((p) => gatherPerSeries(p.data, ls, refs)),
    per.map((p, a) => (q.aggregates[a]!.fn === "count" ? undefined : gatherValid(p.valid, ls, refs))),
  );
}

export function rollingOp(q: RollingQuery, spec: TableSpec, series: readonly SymbolSeries[]): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  const per = q.aggregates.map(() => ({ data: [] as Float64Array[], valid: [] as Uint8Array[] }));
  for (const s of series) {
    const m = s.hi - s.lo;
    const start = new Int32Array(m);
    const end = new Int32Array(m);
    if ("rows" in q.window) {
      const w = q.window.rows;
      for (let i = 0; i < m; i++) {
        end[i] = s.lo + i + 1;
        start[i] = Math.max(0, s.lo + i + 1 - w);
      }
    } else {
      const w = q.window.micros;
      let a = 0;
      for (let i = 0; i < m; i++) {
        const t = s.ts[s.lo + i]!;
        while (s.ts[a]! <= t - w) a++;
        start[i] = a;
        end[i] = s.lo + i + 1;
      }
    }
    const inputs = aggInputs(spec, s, q.aggregates);
    const win = inputs.filter((x) => x.agg.fn !== "ema");
    const outs = slidingAggregates(win, start, end);
    let k = 0;
    inputs.forEach((inp, a) => {
      if (inp.agg.fn === "ema") {
        per[a]!.data.push(ema(inp.x!, s.lo, s.hi, inp.agg.alpha!));
        per[a]!.valid.push(new Uint8Array(m).fill(1));
      } else {
        const o = outs[k++]!;
        per[a]!.data.push(o.data);
        per[a]!.valid.push(o.valid);
      }
    });
  }
  const refs = orderRows(series, q.sort, false);
  return rowsTable(
    fields,
    spec,
    selectedColumns(spec, q.columns),
    series,
    refs,
    per.map((p) => gatherPerSeries(p.data, series, refs)),
    per.map((p, a) => (fields[2 + selectedColumns(spec, q.columns).length + a]!.nullable ? gatherValid(p.valid, series, refs) : undefined)),
  );
}

/** Largest number of buckets a filled bars query may produce per symbol. */
export const MAX_FILL_BUCKETS = 10_000_000;

const agg = (fn: Aggregate["fn"], column: string | undefined, weight?: string): Aggregate => ({ fn, column, weight, alpha: undefined, as: fn });

/** The group-by aggregates a bars query computes: open, high, low, close, volume, count, vwap. */
export function barAggregates(q: BarsQuery): Aggregate[] {
  return [agg("first", q.price), agg("max", q.price), agg("min", q.price), agg("last", q.price), agg("sum", q.size), agg("count", undefined), agg("vwap", q.price, q.size)];
}

/** OHLCV bars from the partials of `barAggregates` grouped by symbol and bucket, with empty buckets filled as asked. */
export function barsOp(q: BarsQuery, spec: TableSpec, t: GroupTable, listed: readonly string[] | undefined): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  const b = q.bucketMicros;
  const fill = q.fill !== "none";
  const first = bucketStart(q.t0, b);
  const nb = Math.ceil((q.t1 - first) / b);
  if (fill && nb > MAX_FILL_BUCKETS) throw planError(`query field fill: ${q.fill} would make ${nb} buckets per symbol (limit ${MAX_FILL_BUCKETS}); narrow t0/t1 or use fill "none"`);
  const groups = t.groups();
  const present = new Set<string>();
  for (const g of groups) present.add(t.names[t.sym[g]!]!);
  const symbols = [...new Set([...present, ...(fill && listed !== undefined ? listed : [])])].sort(compareStrings);
  const cap = fill ? symbols.length * nb : groups.length;
  const sym = new Int32Array(cap);
  const ts = new Float64Array(cap);
  const ohlc = [new Float64Array(cap), new Float64Array(cap), new Float64Array(cap), new Float64Array(cap)] as const;
  const vol = new Float64Array(cap);
  const cnt = new Float64Array(cap);
  const vw = new Float64Array(cap);
  const ok = new Uint8Array(cap);
  const vwOk = new Uint8Array(cap);
  let n = 0;
  let gi = 0;
  symbols.forEach((name, si) => {
    let prevClose = Number.NaN;
    let next = first;
    const empty = (upTo: number): void => {
      if (!fill) return;
      for (let bt = next; bt < upTo; bt += b, n++) {
        sym[n] = si;
        ts[n] = bt;
        const v = q.fill === "zero" ? 0 : q.fill === "previous" ? prevClose : Number.NaN;
        for (const col of ohlc) col[n] = v;
        ok[n] = v === v ? 1 : 0;
      }
    };
    while (gi < groups.length && t.names[t.sym[groups[gi]!]!] === name) {
      const g = groups[gi++]!;
      const bk = t.bucket[g]!;
      empty(bk);
      sym[n] = si;
      ts[n] = bk;
      ohlc.forEach((col, k) => (col[n] = t.value(k, g)));
      vol[n] = t.value(4, g);
      cnt[n] = t.n[g]!;
      vw[n] = t.value(6, g);
      vwOk[n] = vw[n] === vw[n] ? 1 : 0;
      ok[n] = 1;
      prevClose = ohlc[3][n]!;
      next = bk + b;
      n++;
    }
    empty(first + nb * b);
  });
  const nullOhlc = fields[2]!.nullable;
  const cut = <T extends Float64Array | Int32Array | Uint8Array>(a: T): T => a.subarray(0, n) as T;
  const columns: OutColumn[] = [
    { field: fields[0]!, data: cut(sym) },
    { field: fields[1]!, data: cut(ts) },
    ...ohlc.map((d, i): OutColumn => (nullOhlc ? { field: fields[2 + i]!, data: cut(d), valid: cut(ok) } : { field: fields[2 + i]!, data: cut(d) })),
    { field: fields[6]!, data: cut(vol) },
    { field: fields[7]!, data: cut(cnt) },
    { field: fields[8]!, data: cut(vw), valid: cut(vwOk) },
  ];
  return { rows: n, symbols, columns };
}

/** Group-by output from combined partials, ordered by symbol then bucket. */
export function groupByOp(q: GroupByQuery, spec: TableSpec, t: GroupTable): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  let groups = t.groups();
  // Without keys the answer is one row, as in SQL (count 0 over no rows).
  if (!q.bySymbol && q.bucketMicros === undefined && groups.length === 0) groups = Int32Array.of(t.add(t.symbolId(""), 0, 0));
  const symbols = t.names;
  const symIndex = new Map(symbols.map((s, i) => [s, i]));
  const columns: OutColumn[] = [];
  let fi = 0;
  if (q.bySymbol) columns.push({ field: fields[fi++]!, data: Int32Array.from(groups, (g) => symIndex.get(t.names[t.sym[g]!]!)!) });
  if (q.bucketMicros !== undefined) columns.push({ field: fields[fi++]!, data: Float64Array.from(groups, (g) => t.bucket[g]!) });
  q.aggregates.forEach((a, k) => {
    const data = Float64Array.from(groups, (g) => t.value(k, g));
    columns.push(a.fn === "count" ? { field: fields[fi++]!, data } : { field: fields[fi++]!, data, valid: Uint8Array.from(data, (x) => (x === x ? 1 : 0)) });
  });
  return { rows: groups.length, symbols, columns };
}

/** Converts per-series time-ordered outputs into a map by symbol (join right sides). */
export function bySymbolMap(series: readonly SymbolSeries[]): Map<string, SymbolSeries> {
  return new Map(series.map((s) => [s.symbol, s]));
}

export { like as sameTypeArray };

/**
 * lastBy/firstBy straight from the hot series, when no cold row can win: lastBy
 * with t1 above every shard's horizon (the seam cache row stands for the cold
 * side), firstBy with t0 at or above it. Returns undefined when ClickHouse is needed.
 */
export function fastByOp(q: ByQuery, spec: TableSpec, shards: readonly HotShard[]): OutTable | undefined {
  for (const sh of shards) {
    const H = sh.table.horizonMicros;
    if (H > 0 && (q.op === "lastBy" ? q.t1 <= H : q.t0 < H)) return undefined;
  }
  const cols = selectedColumns(spec, q.columns);
  const candidates = q.symbols === undefined ? symbolsInOrder(shards) : symbolsListed(q.symbols, spec, shards);
  const n = candidates.length;
  const names: string[] = [];
  const ts = new Float64Array(n);
  const values = cols.map((j) => allocValueArray(spec.columns[j]!.type, n));
  let k = 0;
  for (const c of candidates) {
    const table = shards[c.shard]!.table;
    const s = table.series(c.id);
    if (s === undefined) continue;
    let i: number;
    let seam: SeamRow | null = null;
    if (q.op === "lastBy") {
      i = s.lowerBound(q.t1) - 1;
      seam = table.seam(c.id);
      // The seam row is the greatest cold row: it wins over a hot row only if it is later (a late unpersisted row can be older).
      if (i >= 0 && seam !== null && before(s.tsAt(i), s.lsnAt(i), s.rowInRecordAt(i), seam.tsMicros, seam.lsn, seam.rowInRecord)) i = -1;
      else if (i >= 0) seam = null;
    } else {
      i = s.lowerBound(q.t0);
      if (i >= s.length) i = -1;
    }
    const t = i >= 0 ? s.tsAt(i) : seam !== null ? seam.tsMicros : Number.NaN;
    if (!(t >= q.t0 && t < q.t1)) continue;
    ts[k] = t;
    for (let v = 0; v < cols.length; v++) values[v]![k] = i >= 0 ? s.valueAt(cols[v]!, i) : seam!.values[cols[v]!]!;
    names.push(c.name);
    k++;
  }
  const fields = fieldsOf(q, spec, undefined);
  return {
    rows: k,
    symbols: names,
    columns: [
      { field: fields[0]!, data: Int32Array.from(names.keys()) },
      { field: fields[1]!, data: ts.subarray(0, k) },
      ...cols.map((_, c): OutColumn => ({ field: fields[2 + c]!, data: values[c]!.subarray(0, k) as OutColumn["data"] })),
    ],
  };
}
