// Sliding-window aggregation over one sorted series: windows are index ranges
// [start, end) whose ends never move backwards (rolling windows, window joins).
// Sums are running (values shifted by the first value so variance keeps its
// precision); min/max use monotonic deques: O(n) for any window sizes.
// A SlideState carries a pass over to the next call on the same series, so a
// feed that appends rows and asks for their windows pays for the new rows only,
// not for the whole window again (and sums in the batch query's order).
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

/** Where one aggregate's pass stands: rows [a, b) are summed (min/max: a is the last window's start, dq[head, tail) the deque). */
export interface Cursor {
  a: number;
  b: number;
  s: number;
  q: number;
  removed: number;
  shift: number;
  /** Length of the run of equal values ending at row b - 1, counted from the last restart (stddev). */
  run: number;
  dq: Int32Array;
  head: number;
  tail: number;
}

const EMPTY = new Int32Array(0);
const freshCursor = (): Cursor => ({ a: 0, b: 0, s: 0, q: 0, removed: 0, shift: Number.NaN, run: 0, dq: EMPTY, head: 0, tail: 0 });
function resetCursor(c: Cursor): void {
  c.a = c.b = c.s = c.q = c.removed = c.run = c.head = c.tail = 0;
  c.shift = Number.NaN;
}

/**
 * A sliding pass over one growing series, continued call after call: the
 * caller keeps rows before `readTo` unchanged (a row inserted before it needs
 * `reset`), asks for windows whose starts and ends do not move back from the
 * last call's, and reports rows dropped from the front with `shift`.
 */
export class SlideState {
  private cursors: Cursor[] = [];

  /** The cursor of aggregate i (a fresh pass when none). */
  cursor(i: number): Cursor {
    return (this.cursors[i] ??= freshCursor());
  }

  /** Rows every pass has read: the series must not change before this. */
  get readTo(): number {
    let b = 0;
    for (const c of this.cursors) if (c.b > b) b = c.b;
    return b;
  }

  /** The passes as plain data (a feed checkpoint): loaded back, the next call continues exactly where this one stands. */
  save(): readonly Cursor[] {
    return this.cursors.map((c) => ({ ...c, dq: c.dq.slice() }));
  }

  /** A state saved by `save` (cursors copied, so the saved data stays unchanged). */
  static load(saved: readonly Cursor[]): SlideState {
    const s = new SlideState();
    s.cursors = saved.map((c) => ({ ...c, dq: Int32Array.from(c.dq) }));
    return s;
  }

  /** Starts every pass over (a row was inserted before `readTo`). */
  reset(): void {
    this.cursors = [];
  }

  /** The series dropped its first k rows (all before every window still asked for). */
  shift(k: number): void {
    if (k <= 0) return;
    for (let i = 0; i < this.cursors.length; i++) {
      const c = this.cursors[i]!;
      if (c.a < k || (c.tail > c.head && c.dq[c.head]! < k)) {
        this.cursors[i] = freshCursor();
        continue;
      }
      c.a -= k;
      c.b -= k;
      for (let j = c.head; j < c.tail; j++) c.dq[j]! -= k;
    }
  }
}

/**
 * Aggregates of rows [start[k], end[k]) for every k. `start` and `end` must be
 * non-decreasing. ema is not a window aggregate (see `ema`). With `state`, the
 * pass continues where the last call on this series left it (see SlideState).
 */
export function slidingAggregates(inputs: readonly AggInput[], start: Int32Array, end: Int32Array, state?: SlideState): AggOut[] {
  const m = start.length;
  const outs = inputs.map(() => ({ data: new Float64Array(m), valid: new Uint8Array(m) }));
  slideRange(inputs, start, end, 0, m, outs, state);
  return outs;
}

/**
 * slidingAggregates of windows [from, to) of `start`/`end` only, written at
 * the same indices of `outs` (allocated by the caller: a feed fills one output
 * per record from many series' calls without allocating per call).
 */
export function slideRange(inputs: readonly AggInput[], start: Int32Array, end: Int32Array, from: number, to: number, outs: readonly AggOut[], state?: SlideState): void {
  for (let ai = 0; ai < inputs.length; ai++) {
    const { agg, x, w } = inputs[ai]!;
    const { data, valid } = outs[ai]!;
    const c = state?.cursor(ai) ?? freshCursor();
    // A window moved back from the last call's: that pass cannot continue.
    if (to > from && (start[from]! < c.a || end[from]! < c.b)) resetCursor(c);
    switch (agg.fn) {
      case "count":
        for (let k = from; k < to; k++) {
          data[k] = end[k]! - start[k]!;
          valid[k] = 1;
        }
        break;
      case "sum":
      case "avg":
      case "stddev": {
        const xs = x!;
        let { s, q, a, b, removed, shift, run } = c;
        for (let k = from; k < to; k++) {
          const e = end[k]!;
          const st = start[k]!;
          if (st >= e) {
            a = b = st;
            s = q = 0;
            run = 0;
            shift = Number.NaN;
            continue;
          }
          // Restart on a gap, and every few thousand removals so rounding cannot drift.
          if (st > b || shift !== shift || removed > 4096) {
            a = b = st;
            s = q = 0;
            run = 0;
            removed = 0;
            shift = xs[st]!;
          }
          while (b < e) {
            // The run of equal values ending here: a window inside one run has stddev exactly 0.
            run = run > 0 && xs[b] === xs[b - 1] ? run + 1 : 1;
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
            const v = run >= n ? 0 : (q - (s * s) / n) / (n - 1);
            data[k] = Math.sqrt(Math.max(0, v));
            valid[k] = 1;
          }
        }
        c.s = s;
        c.q = q;
        c.a = a;
        c.b = b;
        c.removed = removed;
        c.shift = shift;
        c.run = run;
        break;
      }
      case "vwap": {
        const xs = x!;
        const ws = w!;
        let { s: pw, q: sw, a, b } = c;
        for (let k = from; k < to; k++) {
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
        c.s = pw;
        c.q = sw;
        c.a = a;
        c.b = b;
        break;
      }
      case "min":
      case "max": {
        const xs = x!;
        const isMax = agg.fn === "max";
        let { head, tail, b, dq } = c;
        // Room for every row still to be pushed: compact (and grow) when the deque could run off its end.
        if (tail + (xs.length - b) > dq.length) {
          const next = new Int32Array(Math.max(1, xs.length * (state === undefined ? 1 : 2)));
          next.set(dq.subarray(head, tail));
          tail -= head;
          head = 0;
          dq = next;
        }
        let a = c.a;
        for (let k = from; k < to; k++) {
          const e = end[k]!;
          const st = start[k]!;
          a = st;
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
        c.head = head;
        c.tail = tail;
        c.b = b;
        c.dq = dq;
        c.a = a;
        break;
      }
      case "first":
      case "last": {
        const xs = x!;
        for (let k = from; k < to; k++) {
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
  }
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
