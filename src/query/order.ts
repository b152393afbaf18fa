// Output row order across symbols: "symbol" concatenates each symbol's rows;
// "time" orders by (ts, lsn, row), the total order of a tenant's ticks (an LSN
// is unique in the tenant's WAL stream): a stable radix sort on ts when most
// rows are wanted, a k-way merge when a limit wants few. Returns row pointers.
import type { SymbolSeries } from "./series.js";

export interface RowRefs {
  readonly n: number;
  /** Index into the series list. */
  readonly sym: Int32Array;
  /** Row index within that series. */
  readonly idx: Int32Array;
  /**
   * Set when each series' rows are one ascending run of the output (symbol
   * order, ascending): series si's rows [from[si], to[si]) are output rows
   * at[si].. in order, so columns can be copied a run at a time.
   */
  readonly runs?: { readonly from: Int32Array; readonly to: Int32Array; readonly at: Int32Array };
}

/** Pointers to rows [lo, hi) of every series, in the given order, at most `limit` rows. */
export function orderRows(series: readonly SymbolSeries[], sort: "time" | "symbol", desc: boolean, limit = Infinity): RowRefs {
  let total = 0;
  for (const s of series) total += s.hi - s.lo;
  const n = Math.min(total, limit);
  const sym = new Int32Array(n);
  const idx = new Int32Array(n);
  if (n === 0) return { n, sym, idx };
  if ((sort === "symbol" || series.length === 1) && !desc) {
    const from = new Int32Array(series.length);
    const to = new Int32Array(series.length);
    const at = new Int32Array(series.length);
    let k = 0;
    for (let si = 0; si < series.length && k < n; si++) {
      const s = series[si]!;
      const len = Math.min(s.hi - s.lo, n - k);
      sym.fill(si, k, k + len);
      for (let c = 0; c < len; c++) idx[k + c] = s.lo + c;
      from[si] = s.lo;
      to[si] = s.lo + len;
      at[si] = k;
      k += len;
    }
    return { n, sym, idx, runs: { from, to, at } };
  }
  if (sort === "symbol" || series.length === 1) {
    // Descending: the last symbol first, each symbol's rows from its last.
    let k = 0;
    for (let si = series.length - 1; si >= 0 && k < n; si--) {
      const s = series[si]!;
      for (let c = 0; c < s.hi - s.lo && k < n; c++, k++) {
        sym[k] = si;
        idx[k] = s.hi - 1 - c;
      }
    }
    return { n, sym, idx };
  }
  if (n >= total / 4 && total >= RADIX_MIN_ROWS) {
    const sorted = sortByTime(series, total);
    if (sorted !== undefined) {
      // (ts, lsn, row) is a total order, so descending is ascending reversed.
      for (let k = 0; k < n; k++) {
        const at = desc ? total - 1 - k : k;
        sym[k] = sorted.sym[at]!;
        idx[k] = sorted.idx[at]!;
      }
      return { n, sym, idx };
    }
  }
  // Binary heap of series indices keyed by their current row.
  const pos = new Int32Array(series.length);
  const heap = new Int32Array(series.length);
  let size = 0;
  const less = (a: number, b: number): boolean => {
    const sa = series[a]!;
    const sb = series[b]!;
    const ia = pos[a]!;
    const ib = pos[b]!;
    const at = sa.ts[ia]!;
    const bt = sb.ts[ib]!;
    if (at !== bt) return desc ? at > bt : at < bt;
    const al = sa.lsn[ia]!;
    const bl = sb.lsn[ib]!;
    if (al !== bl) return desc ? al > bl : al < bl;
    return desc ? sa.row[ia]! > sb.row[ib]! : sa.row[ia]! < sb.row[ib]!;
  };
  const up = (i: number): void => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i]!, heap[p]!)) break;
      const t = heap[i]!;
      heap[i] = heap[p]!;
      heap[p] = t;
      i = p;
    }
  };
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && less(heap[l]!, heap[m]!)) m = l;
      if (r < size && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      const t = heap[i]!;
      heap[i] = heap[m]!;
      heap[m] = t;
      i = m;
    }
  };
  series.forEach((s, si) => {
    if (s.hi > s.lo) {
      pos[si] = desc ? s.hi - 1 : s.lo;
      heap[size++] = si;
      up(size - 1);
    }
  });
  for (let k = 0; k < n; k++) {
    const si = heap[0]!;
    sym[k] = si;
    idx[k] = pos[si]!;
    const s = series[si]!;
    const next = pos[si]! + (desc ? -1 : 1);
    if (desc ? next >= s.lo : next < s.hi) {
      pos[si] = next;
      down(0);
    } else {
      size--;
      if (size > 0) {
        heap[0] = heap[size]!;
        down(0);
      }
    }
  }
  return { n, sym, idx };
}

/** Below this many rows the merge's few comparisons beat the sort's fixed cost (its digit counts). */
const RADIX_MIN_ROWS = 512;
const DIGIT_BITS = 11;
const DIGITS = 1 << DIGIT_BITS;

/**
 * All rows of every series [lo, hi) in ascending (ts, lsn, row) order: a stable
 * LSD radix sort on ts (11-bit digits of ts - min, as many as the span needs),
 * then each run of equal ts that holds rows of several series put in (lsn, row)
 * order (the sort kept it in series order). Undefined when a ts is not an
 * integer or the span passes 2^53 (the caller merges instead).
 */
function sortByTime(series: readonly SymbolSeries[], total: number): { sym: Int32Array; idx: Int32Array } | undefined {
  let sym = new Int32Array(total);
  let idx = new Int32Array(total);
  let key = new Float64Array(total);
  let min = Infinity;
  let max = -Infinity;
  let k = 0;
  for (let si = 0; si < series.length; si++) {
    const s = series[si]!;
    const ts = s.ts;
    for (let i = s.lo; i < s.hi; i++, k++) {
      const t = ts[i]!;
      sym[k] = si;
      idx[k] = i;
      key[k] = t;
      if (t < min) min = t;
      if (t > max) max = t;
    }
  }
  if (!Number.isSafeInteger(max - min) || !Number.isSafeInteger(min)) return undefined;
  for (let i = 0; i < total; i++) {
    const v = key[i]! - min;
    if (!Number.isInteger(v)) return undefined;
    key[i] = v;
  }
  // Ping-pong between two (key, sym, idx) buffers, one pass per digit the span has.
  let key2 = new Float64Array(total);
  let sym2 = new Int32Array(total);
  let idx2 = new Int32Array(total);
  const count = new Int32Array(DIGITS);
  const span = max - min;
  for (let div = 1; div <= span; div *= DIGITS) {
    count.fill(0);
    for (let i = 0; i < total; i++) count[Math.floor(key[i]! / div) % DIGITS]!++;
    // A digit every row shares orders nothing.
    if (count.includes(total)) continue;
    for (let d = 0, at = 0; d < DIGITS; d++) {
      const c = count[d]!;
      count[d] = at;
      at += c;
    }
    for (let i = 0; i < total; i++) {
      const to = count[Math.floor(key[i]! / div) % DIGITS]!++;
      key2[to] = key[i]!;
      sym2[to] = sym[i]!;
      idx2[to] = idx[i]!;
    }
    [key, key2] = [key2, key];
    [sym, sym2] = [sym2, sym];
    [idx, idx2] = [idx2, idx];
  }
  // Equal ts: rows of one series are in (lsn, row) order already; across series they are in series order.
  for (let a = 0; a < total; ) {
    let b = a + 1;
    let mixed = false;
    while (b < total && key[b] === key[a]) {
      if (sym[b] !== sym[a]) mixed = true;
      b++;
    }
    if (mixed) orderTies(series, sym, idx, a, b);
    a = b;
  }
  return { sym, idx };
}

/** Puts rows [a, b) (equal ts) in (lsn, row) order. */
function orderTies(series: readonly SymbolSeries[], sym: Int32Array, idx: Int32Array, a: number, b: number): void {
  const run = Array.from({ length: b - a }, (_, j) => a + j).map((p) => ({ s: sym[p]!, i: idx[p]!, lsn: series[sym[p]!]!.lsn[idx[p]!]!, row: series[sym[p]!]!.row[idx[p]!]! }));
  run.sort((x, y) => x.lsn - y.lsn || x.row - y.row);
  run.forEach((r, j) => {
    sym[a + j] = r.s;
    idx[a + j] = r.i;
  });
}
