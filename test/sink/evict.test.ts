// Eviction policy after a watermark (src/shard/evict.ts) on a real hot set:
// the time window relative to the newest tick, the memory budget, and rows
// that are late or unpersisted staying whatever the horizon is.
import { describe, expect, it } from "vitest";
import { HotTable } from "../../src/hotset/index.js";
import { ageHorizon, evictForRetention } from "../../src/shard/evict.js";
import { UnpersistedLsns, persistenceLagMs } from "../../src/shard/lag.js";
import { SPEC, batch } from "./fixtures.js";

const T0 = 1.75e15;
const SECOND = 1_000_000;

/** 20 records of 500 rows, 1 s of tick time each, LSN 1..20. */
function filled(): HotTable {
  const t = new HotTable(SPEC);
  for (let lsn = 1; lsn <= 20; lsn++) t.apply(lsn, batch(500, lsn, T0 + (lsn - 1) * SECOND, SECOND, ["AAA", "BBB"]));
  return t;
}

function rows(t: HotTable): { ts: number; lsn: number }[] {
  const r = t.toTickBatch();
  return Array.from({ length: r.batch.rows }, (_, i) => ({ ts: r.batch.ts[i]!, lsn: r.lsn[i]! }));
}

describe("shard eviction policy", () => {
  it("evict - by time: persisted rows older than hotSeconds before the newest tick go, the rest stays", () => {
    const t = filled();
    const before = rows(t);
    const newest = Math.max(...before.map((r) => r.ts));
    const out = evictForRetention(t, 20, newest, { hotMicros: 5 * SECOND, maxHotBytes: 1 << 30 });
    expect(out.horizonMicros).toBe(newest - 5 * SECOND);
    expect(rows(t)).toHaveLength(before.filter((r) => r.ts >= out.horizonMicros).length);
    expect(out.evictedRows).toBe(before.length - rows(t).length);
  });

  it("evict - by time in steps of a tenth of the retention: the horizon stays until newest - hotSeconds is a step past it; never more than a step of extra rows", () => {
    const t = filled();
    const ret = { hotMicros: 10 * SECOND, maxHotBytes: 1 << 30 };
    // Tick time 20 s .. 30 s: the first call moves H (from 0), the next ones only once a second (a tenth of 10 s) has passed.
    const hs: number[] = [];
    for (let newest = T0 + 20 * SECOND; newest <= T0 + 30 * SECOND; newest += SECOND / 4) {
      hs.push(evictForRetention(t, 20, newest, ret).horizonMicros);
      expect(rows(t).every((r) => r.ts >= t.horizonMicros)).toBe(true);
      // At most a step (and a record's second of ticks) more than the retention is held.
      expect(rows(t).every((r) => r.ts >= newest - 11 * SECOND - SECOND)).toBe(true);
    }
    expect(new Set(hs)).toEqual(new Set([10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20].map((s) => T0 + s * SECOND)));
    expect(ageHorizon(5, 100, 50)).toBe(50);
    expect(ageHorizon(46, 100, 50)).toBe(46);
    // Eviction held (hotMicros Infinity): the horizon never moves by age.
    expect(ageHorizon(46, 100, Infinity)).toBe(46);
  });

  it("evict - rows above P stay even below the horizon", () => {
    const t = filled();
    const before = rows(t);
    const newest = Math.max(...before.map((r) => r.ts));
    const out = evictForRetention(t, 10, newest, { hotMicros: 1 * SECOND, maxHotBytes: 1 << 30 });
    const expected = before.filter((r) => r.ts >= out.horizonMicros || r.lsn > 10);
    expect(rows(t)).toEqual(expected);
  });

  it("evict - over the memory budget, the oldest persisted rows go until it fits; unpersisted ones never", () => {
    const t = filled();
    const live = t.bytes - t.idleBytes;
    const newest = Math.max(...rows(t).map((r) => r.ts));
    const budget = Math.floor(live / 2);
    const out = evictForRetention(t, 20, newest, { hotMicros: 3_600 * SECOND, maxHotBytes: budget });
    expect(t.bytes - t.idleBytes).toBeLessThanOrEqual(budget);
    expect(t.rowCount).toBeGreaterThan(0);
    // What is left is the newest part: nothing below the horizon.
    expect(rows(t).every((r) => r.ts >= out.horizonMicros)).toBe(true);

    const u = filled();
    evictForRetention(u, 0, newest, { hotMicros: 3_600 * SECOND, maxHotBytes: 1 });
    expect(u.rowCount).toBe(10_000);
  });

  it("evict - before any tick, nothing moves", () => {
    const t = new HotTable(SPEC);
    expect(evictForRetention(t, 5, -Infinity, { hotMicros: SECOND, maxHotBytes: 1 })).toEqual({ evictedRows: 0, horizonMicros: 0 });
  });
});

describe("shard lag in records", () => {
  it("lag - counts applied records above P; bounded, the dropped ones counted until P passes them", () => {
    const u = new UnpersistedLsns(10);
    for (let lsn = 1; lsn <= 8; lsn++) u.push(lsn * 2);
    expect(u.count).toBe(8);
    u.prune(7);
    expect(u.count).toBe(5);
    for (let lsn = 9; lsn <= 20; lsn++) u.push(lsn * 2);
    expect(u.count).toBe(17);
    u.prune(30);
    expect(u.count).toBe(5);
    u.prune(1_000);
    expect(u.count).toBe(0);
  });

  it("lag age - the oldest unpersisted record's WAL time, through pruning and past the cap (the oldest dropped one's time is kept)", () => {
    const u = new UnpersistedLsns(10);
    expect(u.oldestAtMs).toBe(0);
    for (let lsn = 1; lsn <= 8; lsn++) u.push(lsn, 1_000 + lsn);
    expect(u.oldestAtMs).toBe(1_001);
    u.prune(3);
    expect(u.oldestAtMs).toBe(1_004);
    // Past the cap the oldest are only counted: their age stays the oldest one's.
    for (let lsn = 9; lsn <= 30; lsn++) u.push(lsn, 1_000 + lsn);
    expect(u.oldestAtMs).toBe(1_004);
    u.prune(29);
    expect([u.count, u.oldestAtMs]).toEqual([1, 1_030]);
    u.prune(30);
    expect([u.count, u.oldestAtMs]).toEqual([0, 0]);
  });

  it("lag age - a shard's persistence lag is the older of the sink's records and the WAL's unpersisted ones; none without either", () => {
    // The sink saw nothing (it is recovering, or its consumer waits for deliveries) while the WAL took a record 5 s ago.
    expect(persistenceLagMs(10_000, 0, 15_000)).toBe(5_000);
    expect(persistenceLagMs(10_000, 7_000, 15_000)).toBe(7_000);
    expect(persistenceLagMs(0, 300, 15_000)).toBe(300);
    // A WAL clock ahead of this node's: never a negative age.
    expect(persistenceLagMs(16_000, 0, 15_000)).toBe(0);
  });
});
