// SymbolSeries: one symbol's rows of one table as flat, (ts, lsn, row)-sorted
// columns, as the operators read them: the stitched union of cold rows
// (ClickHouse, seam rule) and hot rows (RAM). `lo`/`hi` delimit the queried
// range [t0, t1); rows before `lo` / from `hi` on are look-behind/ahead context.
import { before } from "../hotset/index.js";
import type { ColumnSlice, SeamRow } from "../hotset/index.js";
import type { ValueArray } from "../codec/tickbatch.js";

export interface SymbolSeries {
  readonly symbol: string;
  readonly n: number;
  readonly ts: Float64Array;
  readonly lsn: Float64Array;
  readonly row: Float64Array;
  /** Value columns in table-spec order; undefined for a column the query does not read. */
  readonly values: readonly (ValueArray | undefined)[];
  /** First row with ts >= t0. */
  readonly lo: number;
  /** First row with ts >= t1. */
  readonly hi: number;
}

/** Flat columns without range bounds (a building block). */
export interface FlatRows {
  readonly n: number;
  readonly ts: Float64Array;
  readonly lsn: Float64Array;
  readonly row: Float64Array;
  readonly values: readonly (ValueArray | undefined)[];
}

export const EMPTY_ROWS = (ncols: number): FlatRows => ({ n: 0, ts: new Float64Array(0), lsn: new Float64Array(0), row: new Float64Array(0), values: new Array<undefined>(ncols).fill(undefined) });

function like(v: ValueArray, n: number): ValueArray {
  const C = v.constructor as new (n: number) => ValueArray;
  return new C(n);
}

/**
 * Columns for many symbols' flattened rows, one allocation per column: a typed
 * array costs about a microsecond to allocate, a view into a shared buffer a
 * fraction of that (a load of 1,000 symbols allocated ~6,000 of them).
 * `rows` holds every row taken, `copied` the rows taken with all columns.
 */
export class RowArena {
  private rowAt = 0;
  private at = 0;
  private readonly row: Float64Array;
  private readonly ts: Float64Array;
  private readonly lsn: Float64Array;
  private readonly values: (ValueArray | undefined)[];

  constructor(rows: number, copied: number, template: readonly (ValueArray | undefined)[]) {
    this.row = new Float64Array(rows);
    this.ts = new Float64Array(copied);
    this.lsn = new Float64Array(copied);
    this.values = template.map((t) => (t === undefined ? undefined : like(t, copied)));
  }

  /** Room for `n` more row numbers (a view of hot columns needs only those as Float64). */
  takeRow(n: number): Float64Array {
    const v = this.row.subarray(this.rowAt, this.rowAt + n);
    this.rowAt += n;
    return v;
  }

  /** Room for `n` more rows of every column. */
  take(n: number): { ts: Float64Array; lsn: Float64Array; row: Float64Array; values: (ValueArray | undefined)[] } {
    const a = this.at;
    this.at += n;
    return { ts: this.ts.subarray(a, a + n), lsn: this.lsn.subarray(a, a + n), row: this.takeRow(n), values: this.values.map((v) => v?.subarray(a, a + n)) };
  }
}

/** Whether flattenSlices copies every column of these slices (else: views and their row numbers). */
export const flattenCopies = (slices: readonly ColumnSlice[], copy: boolean): boolean => slices.length !== 1 || copy;

/**
 * Flattens hot slices into one set of columns taken from `arena` (made with
 * room for them: see RowArena). With `copy` false a single slice is returned
 * as views (valid until the table changes: use it before any await).
 */
export function flattenSlices(slices: readonly ColumnSlice[], wanted: readonly boolean[], copy: boolean, arena: RowArena): FlatRows {
  const ncols = wanted.length;
  if (!flattenCopies(slices, copy)) {
    const s = slices[0]!;
    const row = arena.takeRow(s.rows);
    row.set(s.rowInRecord);
    return { n: s.rows, ts: s.tsMicros, lsn: s.lsn, row, values: s.values.map((v, j) => (wanted[j] ? v : undefined)) };
  }
  let n = 0;
  for (const s of slices) n += s.rows;
  if (n === 0) return EMPTY_ROWS(ncols);
  const { ts, lsn, row, values } = arena.take(n);
  let at = 0;
  for (const s of slices) {
    ts.set(s.tsMicros, at);
    lsn.set(s.lsn, at);
    row.set(s.rowInRecord, at);
    for (let j = 0; j < ncols; j++) {
      const out = values[j];
      if (out !== undefined) out.set(s.values[j]! as never, at);
    }
    at += s.rows;
  }
  return { n, ts, lsn, row, values };
}

/** The seam cache row as a one-row FlatRows. */
export function seamRows(seam: SeamRow, template: readonly (ValueArray | undefined)[], types: readonly ValueArray[]): FlatRows {
  return {
    n: 1,
    ts: Float64Array.of(seam.tsMicros),
    lsn: Float64Array.of(seam.lsn),
    row: Float64Array.of(seam.rowInRecord),
    values: template.map((t, j) => {
      if (t === undefined) return undefined;
      const v = like(types[j]!, 1);
      v[0] = seam.values[j]!;
      return v;
    }),
  };
}

// The row order is the hot set's (one definition for both layers).
export { before };

/** Merges sorted row sets (disjoint by the seam rule) into one sorted set. */
export function mergeRows(parts: readonly FlatRows[], ncols: number): FlatRows {
  const nonEmpty = parts.filter((p) => p.n > 0);
  if (nonEmpty.length === 0) return parts[0] ?? EMPTY_ROWS(ncols);
  if (nonEmpty.length === 1) return nonEmpty[0]!;
  let acc = nonEmpty[0]!;
  for (let i = 1; i < nonEmpty.length; i++) acc = merge2(acc, nonEmpty[i]!);
  return acc;
}

function merge2(a: FlatRows, b: FlatRows): FlatRows {
  // Fast paths: one side entirely before the other (the usual cold-then-hot case).
  const n = a.n + b.n;
  const ts = new Float64Array(n);
  const lsn = new Float64Array(n);
  const row = new Float64Array(n);
  const values = a.values.map((v) => (v === undefined ? undefined : like(v, n)));
  const lastA = a.n - 1;
  if (before(a.ts[lastA]!, a.lsn[lastA]!, a.row[lastA]!, b.ts[0]!, b.lsn[0]!, b.row[0]!)) {
    concat(a, b, ts, lsn, row, values);
    return { n, ts, lsn, row, values };
  }
  const lastB = b.n - 1;
  if (before(b.ts[lastB]!, b.lsn[lastB]!, b.row[lastB]!, a.ts[0]!, a.lsn[0]!, a.row[0]!)) {
    concat(b, a, ts, lsn, row, values);
    return { n, ts, lsn, row, values };
  }
  let i = 0;
  let j = 0;
  for (let k = 0; k < n; k++) {
    const takeA = j >= b.n || (i < a.n && before(a.ts[i]!, a.lsn[i]!, a.row[i]!, b.ts[j]!, b.lsn[j]!, b.row[j]!));
    const src = takeA ? a : b;
    const s = takeA ? i++ : j++;
    ts[k] = src.ts[s]!;
    lsn[k] = src.lsn[s]!;
    row[k] = src.row[s]!;
    for (let c = 0; c < values.length; c++) {
      const out = values[c];
      if (out !== undefined) out[k] = src.values[c]![s]!;
    }
  }
  return { n, ts, lsn, row, values };
}

function concat(x: FlatRows, y: FlatRows, ts: Float64Array, lsn: Float64Array, row: Float64Array, values: (ValueArray | undefined)[]): void {
  ts.set(x.ts, 0);
  ts.set(y.ts, x.n);
  lsn.set(x.lsn, 0);
  lsn.set(y.lsn, x.n);
  row.set(x.row, 0);
  row.set(y.row, x.n);
  values.forEach((out, c) => {
    if (out === undefined) return;
    out.set(x.values[c]! as never, 0);
    out.set(y.values[c]! as never, x.n);
  });
}

/** First index in sorted `ts[from, to)` with ts >= t. */
export function lowerBound(ts: Float64Array, t: number, from = 0, to = ts.length): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in sorted `ts[from, to)` with ts > t. */
export function upperBound(ts: Float64Array, t: number, from = 0, to = ts.length): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * upperBound searched from `from` forward in doubling steps: as cheap as the
 * distance to the answer, not the range (a window start a few rows after the
 * last one, a buffer's front). The answer must lie in [from, to]: ts[from - 1] <= t.
 */
export function upperBoundFrom(ts: Float64Array, t: number, from: number, to: number): number {
  let lo = from;
  let step = 1;
  while (lo + step <= to && ts[lo + step - 1]! <= t) {
    lo += step;
    step *= 2;
  }
  return upperBound(ts, t, lo, Math.min(to, lo + step));
}

/** Bounds a merged row set to a SymbolSeries over [t0, t1) keeping at most `behind` rows before and `ahead` rows after. */
export function toSeries(symbol: string, rows: FlatRows, t0: number, t1: number, behind: number, ahead: number): SymbolSeries {
  const lo = lowerBound(rows.ts, t0, 0, rows.n);
  const hi = lowerBound(rows.ts, t1, lo, rows.n);
  const from = Math.max(0, lo - behind);
  const to = Math.min(rows.n, hi + ahead);
  if (from === 0 && to === rows.n) return { symbol, ...rows, lo, hi };
  const sub = <T extends ValueArray>(v: T): T => v.subarray(from, to) as T;
  return {
    symbol,
    n: to - from,
    ts: sub(rows.ts),
    lsn: sub(rows.lsn),
    row: sub(rows.row),
    values: rows.values.map((v) => (v === undefined ? undefined : sub(v))),
    lo: lo - from,
    hi: hi - from,
  };
}
