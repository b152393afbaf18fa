// INSERT planning: one UTC day per INSERT, (symbol, ts, lsn, row) order, the
// block-size cut, partial records, and a RowBinary body that decodes back.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeRowBinary, partitionDayOf } from "../../src/clickhouse/index.js";
import { compareSymbols } from "../../src/hotset/index.js";
import { encodeInsert, planInserts } from "../../src/sink/index.js";
import type { InsertPlan, PlanRecord } from "../../src/sink/index.js";
import { DAY0, DAY_MICROS, SPEC, batch } from "./fixtures.js";

function key(p: InsertPlan, i: number): [string, number, number, number] {
  return [p.batch.symbols[p.batch.symbolIndex[i]!]!, p.batch.ts[i]!, p.lsn[i]!, p.row[i]!];
}

/** First row out of (symbol, ts, lsn, row) order, or undefined. */
function disorder(p: InsertPlan): string | undefined {
  for (let i = 1; i < p.rows; i++) {
    const a = key(p, i - 1);
    const b = key(p, i);
    const c = compareSymbols(a[0], b[0]) || a[1] - b[1] || a[2] - b[2] || a[3] - b[3];
    if (c >= 0) return `rows ${i - 1} and ${i} out of order: ${JSON.stringify(a)} ${JSON.stringify(b)}`;
  }
  return undefined;
}

describe("sink plan", () => {
  it("plan - every INSERT is inside one UTC day and ordered by (symbol, ts, lsn, row); every row once", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer(), fc.integer({ min: -2, max: 2 })), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 400 }), (specs, maxInsertRows) => {
        const records: PlanRecord[] = specs.map(([rows, seed, dayShift], i) => ({ lsn: 10 + i * 3, batch: batch(rows, seed, DAY0 + dayShift * DAY_MICROS + 86_000_000_000, 2_000_000_000) }));
        const plans = planInserts(SPEC, records, { maxInsertRows });
        const seen = new Set<string>();
        const problems: string[] = [];
        let prevDay = -Infinity;
        for (const p of plans) {
          if (p.rows < 1 || p.rows > maxInsertRows) problems.push(`INSERT of ${p.rows} rows`);
          if (p.day < prevDay) problems.push(`day ${p.day} after ${prevDay}`);
          prevDay = p.day;
          const d = disorder(p);
          if (d !== undefined) problems.push(d);
          for (let i = 0; i < p.rows; i++) {
            if (partitionDayOf(p.batch.ts[i]!) !== p.day) problems.push(`row ${i} of day ${partitionDayOf(p.batch.ts[i]!)} in day ${p.day}`);
            const k = `${p.lsn[i]}:${p.row[i]}`;
            if (seen.has(k)) problems.push(`row ${k} twice`);
            seen.add(k);
            if (p.lsn[i]! < p.lsnMin || p.lsn[i]! > p.lsnMax) problems.push(`LSN ${p.lsn[i]} outside ${p.lsnMin}..${p.lsnMax}`);
          }
        }
        expect(problems.slice(0, 5)).toEqual([]);
        expect(seen.size).toBe(records.reduce((n, r) => n + r.batch.rows, 0));
      }),
      { numRuns: 150 },
    );
  });

  it("plan - values travel with their rows", () => {
    const b = batch(500, 7);
    const [plan] = planInserts(SPEC, [{ lsn: 5, batch: b }], { maxInsertRows: 10_000 });
    for (let i = 0; i < plan!.rows; i++) {
      const r = plan!.row[i]!;
      expect(plan!.batch.ts[i]).toBe(b.ts[r]);
      expect(plan!.batch.values[0]![i]).toBe(b.values[0]![r]);
      expect(plan!.batch.values[1]![i]).toBe(b.values[1]![r]);
      expect(plan!.batch.symbols[plan!.batch.symbolIndex[i]!]).toBe(b.symbols[b.symbolIndex[r]!]);
    }
  });

  it("plan - a partly landed record plans only its missing rows", () => {
    const b = batch(100, 3);
    const missing = Uint32Array.from({ length: 40 }, (_, i) => 60 + i);
    const plans = planInserts(SPEC, [{ lsn: 9, batch: b, rows: missing }], { maxInsertRows: 1_000 });
    const rows = plans.flatMap((p) => Array.from(p.row)).sort((x, y) => x - y);
    expect(rows).toEqual(Array.from(missing));
  });

  it("plan - a batch over two UTC days becomes one INSERT per day, oldest day first", () => {
    const b = batch(200, 11, DAY0 + DAY_MICROS - 1_000_000, 2_000_000);
    const plans = planInserts(SPEC, [{ lsn: 1, batch: b }], { maxInsertRows: 1_000 });
    expect(plans.map((p) => p.day)).toEqual([partitionDayOf(DAY0), partitionDayOf(DAY0) + 1]);
  });

  it("plan - the RowBinary body decodes to the planned rows with _lsn, _row and _shard", () => {
    const plans = planInserts(SPEC, [{ lsn: 3, batch: batch(50, 1) }, { lsn: 8, batch: batch(70, 2) }], { maxInsertRows: 1_000 });
    const body = encodeInsert(SPEC, plans[0]!, 5);
    const d = decodeRowBinary(SPEC, body);
    expect(d.batch.rows).toBe(120);
    expect(Array.from(d.lsn)).toEqual(Array.from(plans[0]!.lsn));
    expect(Array.from(d.row)).toEqual(Array.from(plans[0]!.row));
    expect(new Set(d.shard)).toEqual(new Set([5]));
    expect(Array.from(d.batch.ts)).toEqual(Array.from(plans[0]!.batch.ts));
  });

  it("plan - an empty batch plans nothing", () => {
    expect(planInserts(SPEC, [], { maxInsertRows: 10 })).toEqual([]);
    expect(planInserts(SPEC, [{ lsn: 1, batch: batch(0, 1) }], { maxInsertRows: 10 })).toEqual([]);
  });
});
