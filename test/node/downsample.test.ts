// Chart downsampling on the node (POST /v1/chart): lines keep each bucket's
// first, lowest, highest and last point; bars merge into wider bars; a result
// that fits is left as it is; the chart of an Arrow result picks candles or lines.
import { describe, expect, it } from "vitest";
import { makeData, makeVector, Table, TimestampMicrosecond, vectorFromArray, Float64, Utf8 } from "apache-arrow";
import { bucketWidthUs, downsampleCandles, downsampleLine } from "../../src/node/httpapi/downsample.js";
import { chartOf } from "../../src/node/httpapi/chart.js";

const times = (n: number, stepUs: number): number[] => Array.from({ length: n }, (_, i) => i * stepUs);

describe("chart downsampling", () => {
  it("downsample - a round bucket width, never under 1 ms", () => {
    expect(bucketWidthUs(10, 100)).toBe(1000);
    expect(bucketWidthUs(60_000_000, 500)).toBe(200_000);
    expect(bucketWidthUs(1_000_000_000, 3)).toBe(500_000_000);
  });

  it("downsample - a line that fits is kept as it is", () => {
    const l = { timesUs: times(10, 1000), values: times(10, 1) };
    expect(downsampleLine(l, 2000)).toEqual({ ...l, bucketUs: 0 });
  });

  it("downsample - a million points become at most maxPoints, keeping every bucket's extremes and ends", () => {
    const n = 1_000_000;
    const values = Array.from({ length: n }, (_, i) => Math.sin(i / 1000) * 100 + (i === 777_777 ? 5000 : 0) - (i === 123_456 ? 5000 : 0));
    const d = downsampleLine({ timesUs: times(n, 1000), values }, 2000);
    expect(d.timesUs.length).toBeLessThanOrEqual(2000);
    expect(d.timesUs.length).toBeGreaterThan(1000);
    // The spike and the dip survive, as do the first and last points; times stay in order.
    expect(Math.max(...d.values)).toBe(values.reduce((a, b) => Math.max(a, b)));
    expect(Math.min(...d.values)).toBe(values.reduce((a, b) => Math.min(a, b)));
    expect(d.timesUs[0]).toBe(0);
    expect(d.timesUs.at(-1)).toBe((n - 1) * 1000);
    expect(d.timesUs.every((t, i) => i === 0 || t > d.timesUs[i - 1]!)).toBe(true);
  });

  it("downsample - bars merge: open of the first, high max, low min, close of the last", () => {
    const c = { timesUs: [0, 1000, 2000, 3000], open: [1, 2, 3, 4], high: [5, 9, 6, 7], low: [0.5, 1, 0.1, 2], close: [2, 3, 4, 5] };
    const d = downsampleCandles(c, 2);
    expect(d).toEqual({ timesUs: [0, 2000], open: [1, 3], high: [9, 7], low: [0.5, 0.1], close: [3, 5], bucketUs: 2000 });
    expect(downsampleCandles(c, 4).bucketUs).toBe(0);
  });

  it("chart - an Arrow result with open/high/low/close is candles; without, one line per symbol and price column", () => {
    const ts = makeVector(makeData({ type: new TimestampMicrosecond("UTC"), data: BigInt64Array.of(1_000_000n, 2_000_000n, 1_500_000n) }));
    const sym = vectorFromArray(["A", "A", "B"], new Utf8());
    const f = (xs: number[]) => vectorFromArray(xs, new Float64());
    const bars = chartOf(new Table({ sym, ts, open: f([1, 2, 3]), high: f([2, 3, 4]), low: f([0, 1, 2]), close: f([1.5, 2.5, 3.5]) }), 100);
    expect(bars.kind).toBe("candles");
    expect(bars.series.map((s) => [s.name, s.points])).toEqual([["A", [[1000, 1, 2, 0, 1.5], [2000, 2, 3, 1, 2.5]]], ["B", [[1500, 3, 4, 2, 3.5]]]]);
    const ticks = chartOf(new Table({ sym, ts, price: f([10, 11, 12]), size: f([1, 2, 3]) }), 100);
    expect(ticks.kind).toBe("lines");
    expect(ticks.series.map((s) => s.name)).toEqual(["A price", "B price"]);
    expect(chartOf(new Table({ sym, price: f([1, 2, 3]) }), 100).kind).toBe("none");
  });
});
