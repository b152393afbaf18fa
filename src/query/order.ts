// Output row order across symbols: "symbol" concatenates each symbol's rows;
// "time" is a k-way merge on (ts, lsn, row), the total order of a tenant's
// ticks (an LSN is unique in the tenant's WAL stream). Returns row pointers.
import type { SymbolSeries } from "./series.js";

export interface RowRefs {
  readonly n: number;
  /** Index into the series list. */
  readonly sym: Int32Array;
  /** Row index within that series. */
  readonly idx: Int32Array;
}

/** Pointers to rows [lo, hi) of every series, in the given order, at most `limit` rows. */
export function orderRows(series: readonly SymbolSeries[], sort: "time" | "symbol", desc: boolean, limit = Infinity): RowRefs {
  let total = 0;
  for (const s of series) total += s.hi - s.lo;
  const n = Math.min(total, limit);
  const sym = new Int32Array(n);
  const idx = new Int32Array(n);
  if (n === 0) return { n, sym, idx };
  if (sort === "symbol" || series.length === 1) {
    let k = 0;
    const list = desc ? [...series.keys()].reverse() : [...series.keys()];
    for (const si of list) {
      const s = series[si]!;
      for (let c = 0; c < s.hi - s.lo && k < n; c++, k++) {
        sym[k] = si;
        idx[k] = desc ? s.hi - 1 - c : s.lo + c;
      }
      if (k === n) break;
    }
    return { n, sym, idx };
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
