// Eviction policy of a shard: from the persisted LSN P (a watermark), the
// newest tick and the table's retention, move the horizon H and evict. The hot
// set drops exactly the rows with ts < H and LSN <= P, so rows that are late
// or not yet persisted stay whatever H is. Like `apply`, this runs inside the
// shard machine's transition and mutates the hot set in place.
import type { HotTable } from "../hotset/index.js";

export interface HotRetention {
  /** Rows younger than this, relative to the newest tick, stay in RAM. */
  readonly hotMicros: number;
  /** Soft budget of the hot set's live bytes; older persisted rows go first. */
  readonly maxHotBytes: number;
}

export interface EvictOutcome {
  readonly evictedRows: number;
  readonly horizonMicros: number;
}

/** Rows of `table` with ts < `tsMicros`. */
function rowsBelow(table: HotTable, tsMicros: number): number {
  let n = 0;
  for (const e of table.entries()) n += e.series.lowerBound(tsMicros);
  return n;
}

/** Smallest integer H in (from, to] with at least `target` rows below it (`to` when none is). */
function horizonForRows(table: HotTable, from: number, to: number, target: number): number {
  let lo = from;
  let hi = to;
  if (rowsBelow(table, hi) <= target) return hi;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (rowsBelow(table, mid) >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}

const liveBytes = (t: HotTable): number => t.bytes - t.idleBytes;

/** The age horizon moves in steps of this share of the retention. */
export const HORIZON_STEP_SHARE = 0.1;

/**
 * Where eviction by age puts the horizon: `newest - hotMicros` once that is a
 * step (a tenth of the retention) past the current horizon, else where it is.
 * An eviction shifts each series' oldest chunk (the rows after the cut move
 * to its front), so evicting at every watermark (5 a second per shard) copied
 * most of the hot set's oldest chunks over and over: 4% of a node's main
 * thread at 100 k ticks/s (bench:sustained CPU profile). In steps RAM holds
 * up to a tenth more than the retention; the memory budget still evicts at
 * once.
 */
export function ageHorizon(currentMicros: number, newestTickMicros: number, hotMicros: number): number {
  const target = newestTickMicros - hotMicros;
  return target - currentMicros >= hotMicros * HORIZON_STEP_SHARE ? target : currentMicros;
}

/**
 * Evicts against `persistedLsn` with the horizon `newest - hotMicros` (in
 * steps, never below the current one: ageHorizon); then, while the live bytes exceed the budget, raises
 * the horizon to let more of the oldest rows go, growing the estimate by a
 * quarter each round (memory is freed a chunk at a time, so an estimate from
 * the average row size can fall short; small steps keep the overshoot small). Only persisted rows go: the budget is soft.
 * `newestTickMicros` is -Infinity when no tick was seen.
 */
export function evictForRetention(table: HotTable, persistedLsn: number, newestTickMicros: number, retention: HotRetention): EvictOutcome {
  if (!Number.isFinite(newestTickMicros)) {
    return { evictedRows: table.evict(persistedLsn, table.horizonMicros).evictedRows, horizonMicros: table.horizonMicros };
  }
  let evictedRows = table.evict(persistedLsn, ageHorizon(table.horizonMicros, newestTickMicros, retention.hotMicros)).evictedRows;
  for (let round = 0; round < 16 && liveBytes(table) > retention.maxHotBytes && table.rowCount > 0; round++) {
    const live = liveBytes(table);
    const excess = Math.ceil(((live - retention.maxHotBytes) / live) * table.rowCount * 1.25 ** round);
    const h = table.horizonMicros;
    const next = horizonForRows(table, h, newestTickMicros + 1, rowsBelow(table, h) + excess);
    if (next <= h) break;
    const n = table.evict(persistedLsn, next).evictedRows;
    evictedRows += n;
    if (n === 0 && next > newestTickMicros) break;
  }
  return { evictedRows, horizonMicros: table.horizonMicros };
}
