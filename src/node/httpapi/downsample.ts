// Server-side downsampling for charts (pure): a line keeps, per time bucket,
// its first, lowest, highest and last point (M4: the drawn shape is the same as
// with every point); bars merge into wider bars (open of the first, high max,
// low min, close of the last). Inputs are in time order; times in µs.

export interface Line {
  readonly timesUs: readonly number[];
  readonly values: readonly number[];
}

export interface Candles {
  readonly timesUs: readonly number[];
  readonly open: readonly number[];
  readonly high: readonly number[];
  readonly low: readonly number[];
  readonly close: readonly number[];
}

/**
 * The bucket width in µs that brings a span of `spanUs` to at most `buckets`
 * buckets: a round width (1, 2 or 5 times a power of ten), never under 1 ms.
 */
export function bucketWidthUs(spanUs: number, buckets: number): number {
  const least = Math.max(1000, Math.ceil((spanUs + 1) / Math.max(1, buckets)));
  const decade = 10 ** Math.floor(Math.log10(least));
  return [1, 2, 5, 10].map((m) => m * decade).find((w) => w >= least)!;
}

/** At most `maxPoints` points (4 per bucket); the line as it is when it has no more. */
export function downsampleLine(line: Line, maxPoints: number): Line & { readonly bucketUs: number } {
  const n = line.timesUs.length;
  if (n <= maxPoints) return { ...line, bucketUs: 0 };
  const t0 = line.timesUs[0]!;
  const width = bucketWidthUs(line.timesUs[n - 1]! - t0, Math.floor(maxPoints / 4));
  const timesUs: number[] = [];
  const values: number[] = [];
  let i = 0;
  while (i < n) {
    const bucket = Math.floor((line.timesUs[i]! - t0) / width);
    const first = i;
    let lo = i;
    let hi = i;
    let j = i;
    while (j < n && Math.floor((line.timesUs[j]! - t0) / width) === bucket) {
      const v = line.values[j]!;
      if (v < line.values[lo]!) lo = j;
      if (v > line.values[hi]!) hi = j;
      j++;
    }
    const last = j - 1;
    // Each kept point once, in time order.
    for (const k of [...new Set([first, lo, hi, last])].sort((a, b) => a - b)) {
      timesUs.push(line.timesUs[k]!);
      values.push(line.values[k]!);
    }
    i = j;
  }
  return { timesUs, values, bucketUs: width };
}

/** At most `maxBars` bars, merged into buckets of equal width; the bars as they are when there are no more. */
export function downsampleCandles(c: Candles, maxBars: number): Candles & { readonly bucketUs: number } {
  const n = c.timesUs.length;
  if (n <= maxBars) return { ...c, bucketUs: 0 };
  const t0 = c.timesUs[0]!;
  const width = bucketWidthUs(c.timesUs[n - 1]! - t0, maxBars);
  const out = { timesUs: [] as number[], open: [] as number[], high: [] as number[], low: [] as number[], close: [] as number[] };
  let i = 0;
  while (i < n) {
    const bucket = Math.floor((c.timesUs[i]! - t0) / width);
    let hi = c.high[i]!;
    let lo = c.low[i]!;
    let j = i + 1;
    while (j < n && Math.floor((c.timesUs[j]! - t0) / width) === bucket) {
      hi = Math.max(hi, c.high[j]!);
      lo = Math.min(lo, c.low[j]!);
      j++;
    }
    out.timesUs.push(t0 + bucket * width);
    out.open.push(c.open[i]!);
    out.high.push(hi);
    out.low.push(lo);
    out.close.push(c.close[j - 1]!);
    i = j;
  }
  return { ...out, bucketUs: width };
}
