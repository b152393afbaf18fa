// Sliding-window aggregation over one sorted series: windows are index ranges
// [start, end) whose ends never move backwards (rolling windows, window joins).
// Sums are running (values shifted by the first value so variance keeps its
// precision); min/max use monotonic deques: O(n) for any window sizes.
import type { Aggregate } from "../../protocols/query.js";
import type { ValueArray } from "../codec/tickbatch.js";

/** Per aggregate: output values and validity for `count` windows. */
export interface AggOut {
  readonly data: Float64Array;
  readonly valid: Uint8Array;
}

export interface AggInput {
  readonly agg: Aggregate;
  /** The aggregated column (undefined for count). */
  readonly x: ValueArray | undefined;
  /** vwap weight column. */
  readonly w: ValueArray | undefined;
}

/**
 * Aggregates of rows [start[k], end[k]) for every k. `start` and `end` must be
 * non-decreasing. ema is not a window aggregate (see `ema`).
 */
export function slidingAggregates(inputs: readonly AggInput[], start: Int32Array, end: Int32Array): AggOut[] {
  const m = start.length;
  return inputs.map(({ agg, x, w }) => {
    const data = new Float64Array(m);
    const valid = new Uint8Array(m);
    switch (agg.fn) {
      case "count":
        for (let k = 0; k < m; k++) {
          data[k] = end[k]! - start[k]!;
          valid[k] = 1;
        }
        break;
      case "sum":
      case "avg":
      case "stddev": {
        const xs = x!;
        // Length of the run of equal values ending at each row: a window inside one run has stddev exactly 0.
        const same = agg.fn === "stddev" ? equalRuns(xs) : undefined;
        let s = 0;
        let q = 0;
        let a = 0;
        let b = 0;
        let removed = 0;
        let shift = Number.NaN;
        for (let k = 0; k < m; k++) {
          const e = end[k]!;
          const st = start[k]!;
          if (st >= e) {
            a = b = st;
            s = q = 0;
            shift = Number.NaN;
            continue;
          }
          // Restart on a gap, and every few thousand removals so rounding cannot drift.
          if (st > b || shift !== shift || removed > 4096) {
            a = b = st;
            s = q = 0;
            removed = 0;
            shift = xs[st]!;
          }
          while (b < e) {
            const v = xs[b++]! - shift;
            s += v;
            q += v * v;
          }
          while (a < st) {
            const v = xs[a++]! - shift;
            s -= v;
            q -= v * v;
            removed++;
          }
          const n = e - st;
          if (agg.fn === "sum") {
            data[k] = s + shift * n;
            valid[k] = 1;
          } else if (agg.fn === "avg") {
            data[k] = s / n + shift;
            valid[k] = 1;
          } else if (n >= 2) {
            const v = same![e - 1]! >= n ? 0 : (q - (s * s) / n) / (n - 1);
            data[k] = Math.sqrt(Math.max(0, v));
            valid[k] = 1;
          }
        }
        break;
      }
      case "vwap": {
        const xs = x!;
        const ws = w!;
        let pw = 0;
        let sw = 0;
        let a = 0;
        let b = 0;
        for (let k = 0; k < m; k++) {
          const e = end[k]!;
          const st = start[k]!;
          if (st >= e || st > b) {
            a = b = st;
            pw = sw = 0;
            if (st >= e) continue;
          }
          while (b < e) {
            pw += xs[b]! * ws[b]!;
            sw += ws[b++]!;
          }
          while (a < st) {
            pw -= xs[a]! * ws[a]!;
            sw -= ws[a++]!;
          }
          if (sw !== 0) {
            data[k] = pw / sw;
            valid[k] = 1;
          }
        }
        break;
      }
      case "min":
      case "max": {
        const xs = x!;
        const isMax = agg.fn === "max";
        const dq = new Int32Array(Math.max(1, xs.length));
        let head = 0;
        let tail = 0;
        let b = 0;
        for (let k = 0; k < m; k++) {
          const e = end[k]!;
          const st = start[k]!;
          if (b < st) {
            head = tail = 0;
            b = st;
          }
          while (b < e) {
            const v = xs[b]!;
            while (tail > head && (isMax ? xs[dq[tail - 1]!]! <= v : xs[dq[tail - 1]!]! >= v)) tail--;
            dq[tail++] = b++;
          }
          while (tail > head && dq[head]! < st) head++;
          if (tail > head && st < e) {
            data[k] = xs[dq[head]!]!;
            valid[k] = 1;
          }
        }
        break;
      }
      case "first":
      case "last": {
        const xs = x!;
        for (let k = 0; k < m; k++) {
          if (start[k]! < end[k]!) {
            data[k] = xs[agg.fn === "first" ? start[k]! : end[k]! - 1]!;
            valid[k] = 1;
          }
        }
        break;
      }
      case "ema":
        throw new Error("ema is not a window aggregate");
    }
    return { data, valid };
  });
}

function equalRuns(xs: ValueArray): Int32Array {
  const out = new Int32Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = i > 0 && xs[i] === xs[i - 1] ? out[i - 1]! + 1 : 1;
  return out;
}

/**
 * EMA of x over rows [lo, hi), seeded with x[lo]: e = alpha * x + (1 - alpha) * e.
 * With `prev` (the EMA of the row before lo) it continues that series instead,
 * with the same operations, so a feed extending it row by row matches a batch run bit for bit.
 */
export function ema(x: ValueArray, lo: number, hi: number, alpha: number, prev?: number): Float64Array {
  const out = new Float64Array(Math.max(0, hi - lo));
  let e = prev ?? 0;
  for (let i = lo; i < hi; i++) {
    const v = x[i]!;
    e = i === lo && prev === undefined ? v : alpha * v + (1 - alpha) * e;
    out[i - lo] = e;
  }
  return out;
}
