// The range fast path against the generic path (load, order, gather) on random
// hot sets with late ticks and equal timestamps: the same rows in the same
// order, in symbol and in time order, for random ranges, symbol lists,
// columns, limits and chunk sizes; and it steps aside for descending order and
// whenever the seam rule needs cold rows.
import { describe, expect, it } from "vitest";
import { parseQuery } from "../../protocols/query.js";
import type { RangeQuery } from "../../protocols/query.js";
import { loadHotOnly } from "../../src/query/load.js";
import { rangeOp } from "../../src/query/ops/index.js";
import { fastRangeOp } from "../../src/query/rangefast.js";
import { SPAN, TENANT, T_BASE, buildHot, rng, workload } from "./fixture.js";
import { outRows } from "./oracle.js";

function generic(q: RangeQuery, c: ReturnType<typeof buildHot>, spec: ReturnType<typeof workload>["specs"][number]) {
  const shards = c.tables.get(spec.name)!;
  const cols = q.columns === undefined ? spec.columns.map(() => true) : spec.columns.map((col) => q.columns!.includes(col.name));
  const { series } = loadHotOnly({ tenant: TENANT, spec, shards, symbols: q.symbols, t0: q.t0, t1: q.t1, behind: 0, ahead: 0, wanted: cols });
  return rangeOp(q, spec, series);
}

describe("range fast path", () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`rangefast - equals the generic range in symbol and time order (seed ${seed})`, () => {
      const w = workload(seed, { symbols: 9, records: 80 });
      const c = buildHot(w);
      const spec = w.specs.find((s) => s.name === "trades")!;
      const shards = c.tables.get("trades")!;
      const rand = rng(seed * 7919);
      let nonEmpty = 0;
      for (let i = 0; i < 120; i++) {
        // Half the bounds fall on the 1 ms grid the ticks are on, so rows sit exactly at t0 and t1.
        const snap = (t: number): number => (rand() < 0.5 ? Math.floor(t / 1000) * 1000 : t);
        const a = snap(T_BASE + Math.floor(rand() * SPAN * 1.1) - SPAN / 20);
        const b = snap(a + Math.floor(rand() * SPAN * 0.6));
        const pick = rand();
        const symbols = pick < 0.3 ? w.symbols.filter(() => rand() < 0.4) : pick < 0.4 ? [w.symbols[1 + Math.floor(rand() * (w.symbols.length - 1))]!, "NOPE"] : undefined;
        const q = parseQuery({
          table: "trades",
          t0: Math.max(0, a),
          t1: Math.max(0, b),
          sort: i % 2 === 0 ? "symbol" : "time",
          ...(symbols === undefined ? {} : { symbols }),
          ...(rand() < 0.3 ? { columns: ["size"] } : {}),
          ...(rand() < 0.3 ? { limit: 1 + Math.floor(rand() * 200) } : {}),
        }) as RangeQuery;
        const chunkRows = [1, 5, 64, Infinity][(i >> 1) % 4]!;
        const fast = fastRangeOp(q, spec, shards, chunkRows);
        expect(fast).toBeDefined();
        expect(fast!.length).toBeGreaterThan(0);
        for (const t of fast!) expect(t.rows).toBeLessThanOrEqual(chunkRows);
        const want = outRows(generic(q, c, spec));
        expect(fast!.flatMap(outRows)).toEqual(want);
        if (want.length > 0) nonEmpty++;
      }
      expect(nonEmpty).toBeGreaterThan(40);
    });
  }

  it("rangefast - steps aside for descending order and ranges below a shard's horizon", () => {
    const w = workload(5, { symbols: 9, records: 80 });
    const c = buildHot(w);
    const spec = w.specs.find((s) => s.name === "trades")!;
    const shards = c.tables.get("trades")!;
    const all = { table: "trades", t0: T_BASE, t1: T_BASE + SPAN };
    expect(fastRangeOp(parseQuery({ ...all, sort: "symbol", order: "desc" }) as RangeQuery, spec, shards, 64)).toBeUndefined();
    expect(fastRangeOp(parseQuery({ ...all, order: "desc" }) as RangeQuery, spec, shards, 64)).toBeUndefined();
    const lastLsn = Math.max(...w.records.map((r) => r.lsn));
    const H = T_BASE + SPAN / 2;
    shards[0]!.table.evict(lastLsn, H);
    expect(fastRangeOp(parseQuery({ ...all, sort: "symbol" }) as RangeQuery, spec, shards, 64)).toBeUndefined();
    expect(fastRangeOp(parseQuery(all) as RangeQuery, spec, shards, 64)).toBeUndefined();
    for (const sort of ["symbol", "time"]) {
      const above = parseQuery({ table: "trades", t0: H, t1: T_BASE + SPAN, sort }) as RangeQuery;
      expect(fastRangeOp(above, spec, shards, 64)!.flatMap(outRows)).toEqual(outRows(generic(above, c, spec)));
    }
  });
});
