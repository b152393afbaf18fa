// SlideState: a sliding pass continued call after call over a growing series
// (what the rolling feed does per symbol) does the batch pass's operations in
// the batch pass's order, so its output equals one batch call over the whole
// series bit for bit, also when the front of the series is dropped between
// calls. A row inserted among rows already read needs reset(): negative
// control without it gives wrong sums.
import { describe, expect, it } from "vitest";
import { SlideState, slidingAggregates } from "../../src/query/index.js";
import type { AggInput } from "../../src/query/window.js";
import type { Aggregate } from "../../protocols/query.js";

/** Deterministic values with runs of equal prices (stddev's exact-0 case) and repeated timestamps. */
function series(n: number, seed: number): { ts: Float64Array; px: Float64Array; sz: Float64Array } {
  let a = seed;
  const r = (): number => ((a = (a * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const ts = new Float64Array(n);
  const px = new Float64Array(n);
  const sz = new Float64Array(n);
  let t = 0;
  let p = 100;
  for (let i = 0; i < n; i++) {
    t += r() < 0.2 ? 0 : Math.floor(r() * 50);
    if (r() < 0.6) p = Math.round((p + (r() - 0.5)) * 100) / 100;
    ts[i] = t;
    px[i] = p;
    sz[i] = 100 * (1 + Math.floor(r() * 10));
  }
  return { ts, px, sz };
}

const FNS = ["count", "sum", "avg", "stddev", "vwap", "min", "max", "first", "last"] as const;
const inputs = (px: Float64Array, sz: Float64Array): AggInput[] => FNS.map((fn) => ({ agg: { fn, column: "price", ...(fn === "vwap" ? { weight: "size" } : {}) } as Aggregate, x: fn === "count" ? undefined : px, w: fn === "vwap" ? sz : undefined }));

/** Window starts of a time window (ts - w, ts] for rows [from, to). */
function starts(ts: Float64Array, from: number, to: number, w: number): Int32Array {
  const s = new Int32Array(to - from);
  let lo = 0;
  for (let i = from; i < to; i++) {
    while (ts[lo]! <= ts[i]! - w) lo++;
    s[i - from] = lo;
  }
  return s;
}
const ends = (from: number, to: number): Int32Array => Int32Array.from({ length: to - from }, (_, k) => from + k + 1);
const flat = (outs: { data: Float64Array; valid: Uint8Array }[]): number[][] => outs.map((o) => Array.from(o.data, (v, k) => (o.valid[k] ? v : Number.NaN)));

describe("SlideState", () => {
  const N = 20_000;
  const W = 4_000;
  const { ts, px, sz } = series(N, 7);
  const batch = flat(slidingAggregates(inputs(px, sz), starts(ts, 0, N, W), ends(0, N)));

  it("slide - a pass continued over appended chunks equals one batch pass, value for value", () => {
    const st = new SlideState();
    const got: number[][] = FNS.map(() => []);
    for (let from = 0, chunk = 1; from < N; from += chunk, chunk = (chunk * 7) % 97 + 1) {
      const to = Math.min(N, from + chunk);
      // The series as the feed holds it then: rows up to `to` only.
      const outs = flat(slidingAggregates(inputs(px.subarray(0, to), sz.subarray(0, to)), starts(ts, from, to, W), ends(from, to), st));
      outs.forEach((o, i) => got[i]!.push(...o));
    }
    expect(got).toEqual(batch);
  });

  it("slide - dropping the series' front between calls (shift) keeps the pass exact", () => {
    const st = new SlideState();
    const got: number[][] = FNS.map(() => []);
    let base = 0; // rows dropped so far
    for (let from = 0, chunk = 3; from < N; from += chunk, chunk = (chunk * 5) % 61 + 1) {
      const to = Math.min(N, from + chunk);
      const s = starts(ts, from, to, W);
      const local = (a: Int32Array): Int32Array => a.map((v) => v - base);
      const outs = flat(slidingAggregates(inputs(px.subarray(base, to), sz.subarray(base, to)), local(s), local(ends(from, to)), st));
      outs.forEach((o, i) => got[i]!.push(...o));
      // Drop what no later window reaches (before the last window's start), in lumps as SeriesBuffer does.
      const drop = s[s.length - 1]! - base;
      if (drop >= 64) {
        st.shift(drop);
        base += drop;
      }
    }
    expect(base).toBeGreaterThan(N / 2);
    expect(got).toEqual(batch);
  });

  it("slide - a row inserted among rows read needs reset; negative control: without it the sums are wrong", () => {
    const M = 400;
    const late = 150; // arrives after rows up to M - 1, belongs at index `late`; then row M arrives
    const order = [...Array.from({ length: M }, (_, i) => i).filter((i) => i !== late), late, M];
    const run = (reset: boolean): number[] => {
      const st = new SlideState();
      const held: number[] = []; // indices of the original series, in key order
      let out: number[] = [];
      for (const i of order) {
        let p = held.findIndex((j) => j > i);
        if (p < 0) p = held.length;
        held.splice(p, 0, i);
        if (reset && p < st.readTo) st.reset();
        // The late row's own window is not asked for: the next window asked (row M's) is past every row read.
        if (i === late) continue;
        const t = Float64Array.from(held, (j) => ts[j]!);
        out = flat(slidingAggregates(inputs(Float64Array.from(held, (j) => px[j]!), Float64Array.from(held, (j) => sz[j]!)), starts(t, p, p + 1, W), ends(p, p + 1), st)).map((o) => o[0]!);
      }
      return out; // row M's aggregates
    };
    const want = flat(slidingAggregates(inputs(px.subarray(0, M + 1), sz.subarray(0, M + 1)), starts(ts, M, M + 1, W), ends(M, M + 1))).map((o) => o[0]!);
    expect(run(true)).toEqual(want);
    expect(run(false)).not.toEqual(want);
  });
});
