// The floor of bench:query (issue 17): the tightest plain TypeScript loop for
// each query over per-symbol sorted typed arrays of the same generated day,
// results as typed arrays. No planning, no stitching, no seam, no generality:
// what a hand-written program that knew the data would take. The engine is
// held to a ratio of it (N_vs_floor_ratio); row counts are checked against the
// engine's answers so the floor answers the same question.
import type { TickBatch } from "../src/codec/tickbatch.js";

/** One symbol's ticks in time order (the generated day has no late ticks: arrival order is time order). */
export interface SymbolColumns {
  readonly ts: Float64Array;
  readonly values: readonly Float64Array[];
}

/** Per symbol (index = position in `names`), the columns of `batches`; built once, not timed. */
export function bySymbol(batches: readonly TickBatch[], names: readonly string[]): SymbolColumns[] {
  const idOf = new Map(names.map((n, i) => [n, i]));
  const counts = new Int32Array(names.length);
  for (const b of batches) for (let r = 0; r < b.rows; r++) counts[idOf.get(b.symbols[b.symbolIndex[r]!]!)!]!++;
  const ncols = batches[0]?.values.length ?? 0;
  const out = names.map((_, s) => ({ ts: new Float64Array(counts[s]!), values: Array.from({ length: ncols }, () => new Float64Array(counts[s]!)) }));
  const fill = new Int32Array(names.length);
  for (const b of batches) {
    const ids = b.symbols.map((n) => idOf.get(n)!);
    for (let r = 0; r < b.rows; r++) {
      const s = ids[b.symbolIndex[r]!]!;
      const at = fill[s]!++;
      const c = out[s]!;
      c.ts[at] = b.ts[r]!;
      for (let j = 0; j < ncols; j++) c.values[j]![at] = (b.values[j] as Float64Array)[r]!;
    }
  }
  return out;
}

/** First index with ts[i] > t (ts sorted). */
function upper(ts: Float64Array, t: number): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (ts[m]! <= t) lo = m + 1;
    else hi = m;
  }
  return lo;
}

/** First index with ts[i] >= t. */
function lower(ts: Float64Array, t: number): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (ts[m]! < t) lo = m + 1;
    else hi = m;
  }
  return lo;
}

/** Q1: the last trade at or before `at` per symbol (symbol, ts, price). */
export function floorLastBy(t: readonly SymbolColumns[], at: number): { sym: Int32Array; ts: Float64Array; price: Float64Array } {
  const sym = new Int32Array(t.length);
  const ts = new Float64Array(t.length);
  const price = new Float64Array(t.length);
  let n = 0;
  for (let s = 0; s < t.length; s++) {
    const c = t[s]!;
    const i = upper(c.ts, at) - 1;
    if (i < 0) continue;
    sym[n] = s;
    ts[n] = c.ts[i]!;
    price[n++] = c.values[0]![i]!;
  }
  return { sym: sym.subarray(0, n), ts: ts.subarray(0, n), price: price.subarray(0, n) };
}

/** Q2: trades in [t0, t1) with the prevailing quote of their symbol (backward as-of: the last quote at or before the trade). */
export function floorAsof(t: readonly SymbolColumns[], q: readonly SymbolColumns[], t0: number, t1: number): { rows: number; cols: Float64Array[] } {
  let rows = 0;
  const from = new Int32Array(t.length);
  const to = new Int32Array(t.length);
  for (let s = 0; s < t.length; s++) {
    from[s] = lower(t[s]!.ts, t0);
    to[s] = lower(t[s]!.ts, t1);
    rows += to[s]! - from[s]!;
  }
  // ts, price, size, then bid, ask, bid_size, ask_size (NaN without a prevailing quote).
  const cols = Array.from({ length: 7 }, () => new Float64Array(rows));
  const [ts, price, size, bid, ask, bs, as] = cols as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
  let at = 0;
  for (let s = 0; s < t.length; s++) {
    const tc = t[s]!;
    const qc = q[s]!;
    if (from[s] === to[s]) continue;
    let j = upper(qc.ts, tc.ts[from[s]!]!) - 1;
    for (let i = from[s]!; i < to[s]!; i++) {
      const x = tc.ts[i]!;
      while (j + 1 < qc.ts.length && qc.ts[j + 1]! <= x) j++;
      ts[at] = x;
      price[at] = tc.values[0]![i]!;
      size[at] = tc.values[1]![i]!;
      if (j >= 0) {
        bid[at] = qc.values[0]![j]!;
        ask[at] = qc.values[1]![j]!;
        bs[at] = qc.values[2]![j]!;
        as[at] = qc.values[3]![j]!;
      } else bid[at] = ask[at] = bs[at] = as[at] = NaN;
      at++;
    }
  }
  return { rows, cols };
}

/** Q3: VWAP over the window (ts - w, ts] ending at each row, of the symbols given (running sums, two pointers). */
export function floorRollingVwap(t: readonly SymbolColumns[], symbols: readonly number[], t0: number, t1: number, w: number): Float64Array[] {
  return symbols.map((s) => {
    const c = t[s]!;
    const p = c.values[0]!;
    const v = c.values[1]!;
    const a = lower(c.ts, t0);
    const b = lower(c.ts, t1);
    const out = new Float64Array(b - a);
    let left = lower(c.ts, t0 - w);
    let pv = 0;
    let vol = 0;
    // Rows before t0 that are inside the first window are summed first.
    for (let i = left; i < a; i++) {
      pv += p[i]! * v[i]!;
      vol += v[i]!;
    }
    for (let i = a; i < b; i++) {
      const x = c.ts[i]!;
      pv += p[i]! * v[i]!;
      vol += v[i]!;
      while (c.ts[left]! <= x - w) {
        pv -= p[left]! * v[left]!;
        vol -= v[left]!;
        left++;
      }
      out[i - a] = pv / vol;
    }
    return out;
  });
}

/** Q4: 1-minute OHLCV + count + VWAP per symbol over [t0, t1) (bars that have ticks). */
export function floorBars(t: readonly SymbolColumns[], t0: number, t1: number, bucket: number): { rows: number; cols: Float64Array[] } {
  // Count the bars first: outputs are allocated once, at their size.
  let rows = 0;
  for (const c of t) {
    let last = NaN;
    for (let i = lower(c.ts, t0), e = lower(c.ts, t1); i < e; i++) {
      const k = Math.floor(c.ts[i]! / bucket);
      if (k !== last) {
        rows++;
        last = k;
      }
    }
  }
  const cols = Array.from({ length: 9 }, () => new Float64Array(rows));
  const [sym, bk, open, high, low, close, vol, count, vwap] = cols as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
  let at = -1;
  // The open bar's sum of price x size (its VWAP is written when the next bar opens, or at the end).
  let pv = 0;
  for (let s = 0; s < t.length; s++) {
    const c = t[s]!;
    const p = c.values[0]!;
    const v = c.values[1]!;
    let last = NaN;
    for (let i = lower(c.ts, t0), e = lower(c.ts, t1); i < e; i++) {
      const k = Math.floor(c.ts[i]! / bucket);
      const x = p[i]!;
      if (k !== last) {
        if (at >= 0) vwap[at] = pv / vol[at]!;
        at++;
        last = k;
        sym[at] = s;
        bk[at] = k * bucket;
        open[at] = high[at] = low[at] = x;
        vol[at] = 0;
        count[at] = 0;
        pv = 0;
      }
      if (x > high[at]!) high[at] = x;
      if (x < low[at]!) low[at] = x;
      close[at] = x;
      vol[at]! += v[i]!;
      count[at]!++;
      pv += x * v[i]!;
    }
  }
  if (at >= 0) vwap[at] = pv / vol[at]!;
  return { rows, cols };
}

/** Q5: the symbols' ticks in [t0, t1), merged in time order (symbol, ts, price, size). */
export function floorRange(t: readonly SymbolColumns[], symbols: readonly number[], t0: number, t1: number): { rows: number; cols: Float64Array[] } {
  const pos = symbols.map((s) => lower(t[s]!.ts, t0));
  const end = symbols.map((s) => lower(t[s]!.ts, t1));
  let rows = 0;
  for (let k = 0; k < symbols.length; k++) rows += end[k]! - pos[k]!;
  const cols = Array.from({ length: 4 }, () => new Float64Array(rows));
  const [sym, ts, price, size] = cols as [Float64Array, Float64Array, Float64Array, Float64Array];
  for (let at = 0; at < rows; at++) {
    // The stream with the smallest next ts (a handful of symbols: a linear pick beats a heap).
    let best = -1;
    let bestTs = Infinity;
    for (let k = 0; k < symbols.length; k++) {
      if (pos[k]! < end[k]!) {
        const x = t[symbols[k]!]!.ts[pos[k]!]!;
        if (x < bestTs) {
          bestTs = x;
          best = k;
        }
      }
    }
    const c = t[symbols[best]!]!;
    const i = pos[best]!++;
    sym[at] = symbols[best]!;
    ts[at] = bestTs;
    price[at] = c.values[0]![i]!;
    size[at] = c.values[1]![i]!;
  }
  return { rows, cols };
}
