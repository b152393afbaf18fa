// orderRows against a plain sort of every row by (ts, lsn, row): the radix sort
// (most rows wanted) and the merge (a limit wanting few, or few rows) must give
// the same order, also with many equal timestamps across symbols, desc and
// limits, and non-integer timestamps (the merge's fallback); symbol order, and
// the runs it carries when ascending.
import { describe, expect, it } from "vitest";
import { orderRows } from "../../src/query/order.js";
import type { SymbolSeries } from "../../src/query/series.js";
import { rng } from "./fixture.js";

/** `nsym` series of random lengths; ts from a span of `span` values (small: many ties); (lsn, row) unique per row. */
function seriesOf(rand: () => number, nsym: number, maxRows: number, span: number, base: number, fraction = false): SymbolSeries[] {
  return Array.from({ length: nsym }, (_, si) => {
    const n = Math.floor(rand() * maxRows);
    const rows = Array.from({ length: n }, () => ({ ts: base + Math.floor(rand() * span) + (fraction ? 0.5 : 0), lsn: 1 + Math.floor(rand() * 50), row: 0 }))
      // lsn shared across symbols (one record holds many), row unique within an lsn: row numbers by symbol index.
      .map((r, i) => ({ ...r, row: si * 100_000 + i }))
      .sort((a, b) => a.ts - b.ts || a.lsn - b.lsn || a.row - b.row);
    const lo = Math.floor(rand() * Math.min(3, n + 1));
    const hi = Math.max(lo, n - Math.floor(rand() * 3));
    return { symbol: `S${si}`, n, ts: Float64Array.from(rows, (r) => r.ts), lsn: Float64Array.from(rows, (r) => r.lsn), row: Float64Array.from(rows, (r) => r.row), values: [], lo, hi };
  });
}

/** Every row [lo, hi) as (series, index), sorted by (ts, lsn, row), reversed for desc, cut at limit. */
function oracle(series: readonly SymbolSeries[], desc: boolean, limit = Infinity): string[] {
  const all = series.flatMap((s, si) => Array.from({ length: s.hi - s.lo }, (_, j) => ({ si, i: s.lo + j, ts: s.ts[s.lo + j]!, lsn: s.lsn[s.lo + j]!, row: s.row[s.lo + j]! })));
  all.sort((a, b) => a.ts - b.ts || a.lsn - b.lsn || a.row - b.row);
  if (desc) all.reverse();
  return all.slice(0, limit === Infinity ? undefined : limit).map((r) => `${r.si}:${r.i}`);
}

const pairs = (r: ReturnType<typeof orderRows>): string[] => Array.from({ length: r.n }, (_, k) => `${r.sym[k]}:${r.idx[k]}`);

/** Symbol order: series after series, each in its own order; desc reverses both. */
function bySymbolOracle(series: readonly SymbolSeries[], desc: boolean, limit = Infinity): string[] {
  const all = series.flatMap((s, si) => Array.from({ length: s.hi - s.lo }, (_, j) => `${si}:${s.lo + j}`));
  if (desc) all.reverse();
  return all.slice(0, limit === Infinity ? undefined : limit);
}

/** The runs an ascending symbol order carries, replayed: every output row where its run puts it. */
function fromRuns(r: ReturnType<typeof orderRows>): string[] {
  const out: string[] = new Array<string>(r.n);
  r.runs!.from.forEach((from, si) => {
    for (let i = from; i < r.runs!.to[si]!; i++) out[r.runs!.at[si]! + i - from] = `${si}:${i}`;
  });
  return out;
}

describe("query row order", () => {
  const base = 1_704_200_000_000_000;
  it.each([
    ["many rows, wide span (radix, several digits)", 40, 400, 2 ** 40, false],
    ["many rows, ties everywhere (radix, then (lsn, row) within runs)", 40, 400, 7, false],
    ["many rows, one timestamp", 30, 300, 1, false],
    ["few rows (merge)", 5, 40, 1000, false],
    ["non-integer timestamps (merge)", 40, 400, 1000, true],
  ] as const)("order - %s: equals a plain sort by (ts, lsn, row), asc and desc, with and without a limit", (_name, nsym, maxRows, span, fraction) => {
    const rand = rng(nsym * 31 + maxRows);
    for (let round = 0; round < 5; round++) {
      const s = seriesOf(rand, nsym, maxRows, span, base, fraction);
      const total = s.reduce((n, x) => n + x.hi - x.lo, 0);
      for (const desc of [false, true]) {
        expect(pairs(orderRows(s, "time", desc))).toEqual(oracle(s, desc));
        // A limit wanting most rows sorts; one wanting a few merges.
        for (const limit of [Math.floor(total * 0.9), 10]) expect(pairs(orderRows(s, "time", desc, limit))).toEqual(oracle(s, desc, limit));
        for (const limit of [Infinity, Math.floor(total * 0.9), 10]) {
          const r = orderRows(s, "symbol", desc, limit);
          expect(pairs(r)).toEqual(bySymbolOracle(s, desc, limit));
          // Ascending symbol order says where each series' run goes; the column copies rely on it.
          expect(r.runs === undefined).toBe(desc);
          if (!desc) expect(fromRuns(r)).toEqual(bySymbolOracle(s, desc, limit));
        }
      }
    }
  });
});
