// Property tests against an independent oracle: whatever the arrival order,
// chunk sizes, late ticks and equal timestamps, the store equals all ticks
// sorted by (symbol, ts, lsn, row); eviction keeps exactly the seam invariant.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HotTable } from "../../src/hotset/index.js";
import type { HotSetOptions } from "../../src/hotset/index.js";
import { TRADES, batchOf, compareStored, sortedOracle, storedRows, tag } from "./fixtures.js";
import type { InRow, StoredRow } from "./fixtures.js";

const SYMBOLS = ["A", "B", "C", "D", "E", "F", "G", "H", "IBM", "Ä", "€", "\u{1F600}"];

const tickArb = (maxTs: number) =>
  fc.record({
    sym: fc.constantFrom(...SYMBOLS),
    // a narrow time range makes equal timestamps and late ticks common
    ts: fc.integer({ min: 0, max: maxTs }),
    values: fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true, noDefaultInfinity: true })),
  });

const optionsArb: fc.Arbitrary<Partial<HotSetOptions>> = fc
  .integer({ min: 1, max: 8 })
  .chain((chunkRows) =>
    fc.record({
      chunkRows: fc.constant(chunkRows),
      firstChunkRows: fc.integer({ min: 1, max: chunkRows }),
      nextChunkRows: fc.integer({ min: 1, max: chunkRows }),
      rippleChunks: fc.integer({ min: 0, max: 3 }),
      poolBytes: fc.constantFrom(0, 1 << 20),
    }),
  );

/** Cuts `ticks` into records of 0..maxRows rows, with LSN gaps of 1..3. */
function recordsArb(ticks: readonly InRow[], maxRows: number) {
  return fc.array(fc.tuple(fc.integer({ min: 0, max: maxRows }), fc.integer({ min: 1, max: 3 })), {
    minLength: ticks.length + 1,
    maxLength: ticks.length + 1,
  }).map((cuts) => {
    const records: { lsn: number; rows: InRow[] }[] = [];
    let at = 0;
    let lsn = 0;
    for (const [size, gap] of cuts) {
      if (at >= ticks.length) break;
      lsn += gap;
      records.push({ lsn, rows: ticks.slice(at, at + size) });
      at += size;
    }
    return records;
  });
}

const workloadArb = fc
  .tuple(fc.array(tickArb(60), { maxLength: 120 }), fc.integer({ min: 1, max: 12 }))
  .chain(([ticks, maxRows]) =>
    // any arrival order of the same set of ticks
    fc.shuffledSubarray(ticks, { minLength: ticks.length, maxLength: ticks.length }).chain((arrival) => recordsArb(arrival, maxRows)),
  );

describe("hot table - properties", () => {
  it("property - any arrival order yields the store sorted by (symbol, ts, lsn, row)", () => {
    fc.assert(
      fc.property(workloadArb, optionsArb, (records, options) => {
        const t = new HotTable(TRADES, options);
        for (const rec of records) t.apply(rec.lsn, batchOf(TRADES, rec.rows));
        t.verify();
        const expected = sortedOracle(TRADES, tag(records));
        expect(storedRows(t)).toEqual(expected);
        expect(t.rowCount).toBe(expected.length);
        // and the same digest as a store built with other chunk options
        const other = new HotTable(TRADES);
        for (const rec of records) other.apply(rec.lsn, batchOf(TRADES, rec.rows));
        expect(t.digest()).toBe(other.digest());
      }),
      { numRuns: 300 },
    );
  });

  it("property - binary search and range slices agree with a linear scan", () => {
    fc.assert(
      fc.property(workloadArb, optionsArb, fc.array(fc.integer({ min: -2, max: 62 }), { minLength: 1, maxLength: 6 }), (records, options, probes) => {
        const t = new HotTable(TRADES, options);
        for (const rec of records) t.apply(rec.lsn, batchOf(TRADES, rec.rows));
        for (const { symbolId, series } of t) {
          const ts = series.slices(0, series.length).flatMap((s) => Array.from(s.tsMicros));
          for (const p of probes) {
            expect(series.lowerBound(p)).toBe(ts.filter((x) => x < p).length);
            expect(series.upperBound(p)).toBe(ts.filter((x) => x <= p).length);
            const q = p + 7;
            const got = t.range(symbolId, p, q).flatMap((s) => Array.from(s.tsMicros));
            expect(got).toEqual(ts.filter((x) => x >= p && x < q));
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  type Op =
    | { readonly kind: "apply"; readonly rows: readonly InRow[] }
    | { readonly kind: "evict"; readonly pBack: number; readonly horizon: number }
    | { readonly kind: "redeliver"; readonly back: number }
    | { readonly kind: "restore" };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant("apply" as const), rows: fc.array(tickArb(80), { maxLength: 10 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("evict" as const),
        // P relative to the last applied LSN: behind it, or (rarely) ahead of it
        pBack: fc.integer({ min: -2, max: 6 }),
        horizon: fc.integer({ min: 0, max: 90 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("redeliver" as const), back: fc.integer({ min: 0, max: 5 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("restore" as const) }) },
  );

  interface Replayed {
    t: HotTable;
    readonly applied: { lsn: number; rows: readonly InRow[] }[];
    lsn: number;
    /** The greatest P and H asked for. */
    P: number;
    H: number;
  }

  /** Runs `ops` on a new table; `read` runs at each "read" op. */
  function replay(ops: readonly (Op | { readonly kind: "read" })[], options: Partial<HotSetOptions>, read: (r: Replayed) => void = () => {}): Replayed {
    const r: Replayed = { t: new HotTable(TRADES, options), applied: [], lsn: 0, P: 0, H: 0 };
    for (const op of ops) {
      if (op.kind === "read") read(r);
      else if (op.kind === "apply") {
        r.lsn++;
        r.applied.push({ lsn: r.lsn, rows: op.rows });
        r.t.apply(r.lsn, batchOf(TRADES, op.rows));
      } else if (op.kind === "evict") {
        const p = Math.max(0, r.lsn - op.pBack);
        r.t.evict(p, op.horizon);
        r.P = Math.max(r.P, p);
        r.H = Math.max(r.H, op.horizon);
      } else if (op.kind === "redeliver") {
        const rec = r.applied[r.applied.length - 1 - op.back];
        if (rec !== undefined) r.t.apply(rec.lsn, batchOf(TRADES, [...rec.rows, ...rec.rows]));
      } else {
        const restored = HotTable.fromColumns(TRADES, r.t.exportColumns(), options);
        expect(restored.digest()).toBe(r.t.digest());
        r.t = restored;
      }
    }
    return r;
  }

  it("property - eviction keeps exactly rows with ts >= H or lsn > P, the seam is the last evicted row", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), optionsArb, (ops, options) => {
        const { t, applied, lsn, P, H } = replay(ops, options);
        t.verify();
        const all = sortedOracle(TRADES, tag(applied));
        const cold = (r: StoredRow) => r.ts < H && r.lsn <= P;
        expect(storedRows(t)).toEqual(all.filter((r) => !cold(r)));
        expect(t.horizonMicros).toBe(H);
        expect(t.persistedLsn).toBe(P);
        expect(t.appliedLsn).toBe(lsn);
        const lastEvicted = new Map<string, StoredRow>();
        for (const r of all.filter(cold)) {
          const prev = lastEvicted.get(r.sym);
          if (prev === undefined || compareStored(prev, r) < 0) lastEvicted.set(r.sym, r);
        }
        for (const sym of new Set(all.map((r) => r.sym))) {
          const e = lastEvicted.get(sym);
          const seam = t.seam(t.lookup(sym)!);
          expect(seam).toEqual(e === undefined ? null : { tsMicros: e.ts, lsn: e.lsn, rowInRecord: e.row, values: e.values });
        }
      }),
      { numRuns: 300 },
    );
  });

  it("property - the last-row board equals, per symbol, the greatest row ever applied and the last hot row, read at any point", () => {
    const readArb = fc.constant({ kind: "read" as const });
    fc.assert(
      fc.property(fc.array(fc.oneof({ weight: 4, arbitrary: opArb }, { weight: 2, arbitrary: readArb }), { maxLength: 40 }), optionsArb, (ops, options) => {
        const check = ({ t, applied, P, H }: Replayed): void => {
          const board = t.lastBoard();
          const all = sortedOracle(TRADES, tag(applied));
          const cold = (r: StoredRow) => r.ts < H && r.lsn <= P;
          expect(board.current(t.symbolCount)).toBe(false);
          for (const sym of new Set(all.map((r) => r.sym))) {
            const id = t.lookup(sym)!;
            const rows = all.filter((r) => r.sym === sym);
            const win = rows[rows.length - 1]!;
            const hot = rows.filter((r) => !cold(r));
            expect(board.current(id)).toBe(true);
            expect(board.has[id], sym).toBe(1);
            expect([board.winTs[id], board.winLsn[id], board.winRow[id], board.winSeam[id]], sym).toEqual([win.ts, win.lsn, win.row, cold(win) ? 1 : 0]);
            expect(board.values.map((v) => v[id]), sym).toEqual(win.values);
            expect(board.hotTs[id], sym).toBe(hot.length === 0 ? -Infinity : hot[hot.length - 1]!.ts);
          }
        };
        check(replay(ops, options, check));
      }),
      { numRuns: 300 },
    );
  });
});
