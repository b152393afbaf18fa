// One flush attempt of a sink batch, over an abstract ClickHouse (`FlushIo`):
// when the batch may have partly landed, raise the shard's fence (on a retry:
// an earlier attempt's INSERT may still be on its way), wait for earlier
// INSERTs to leave the server, ask what landed and reconcile; then plan and
// send the INSERTs. The
// runtime gives it the real server, unit tests an in-memory one that can fail
// anywhere (including committing a prefix of an INSERT).
import type { TableSpec } from "../../protocols/tablespec.js";
import { SinkFlushError, describeFailure, flushFailure } from "./errors.js";
import { planInserts } from "./plan.js";
import type { InsertPlan, PlanRecord } from "./plan.js";
import { partlyLanded, reconcile, wholeBatch } from "./reconcile.js";
import { rowsOf } from "./types.js";
import type { SinkRecord } from "./types.js";

export interface FlushIo {
  /** From now on an INSERT this sink sent before fails without writing (src/clickhouse/fence.ts). */
  raiseFence(signal?: AbortSignal): Promise<void>;
  /** True once the query left the server (false: still running after the wait). */
  waitQueryGone(queryId: string, signal?: AbortSignal): Promise<boolean>;
  /** `_lsn -> rows` of the shard in [lsnFrom, lsnTo] (rows within [tsMin, tsMax]). */
  landedCounts(lsnFrom: number, lsnTo: number, tsMinMicros: number, tsMaxMicros: number, signal?: AbortSignal): Promise<ReadonlyMap<number, number>>;
  /** Landed `_row` values of each of `lsns`. */
  landedRowSets(lsns: readonly number[], signal?: AbortSignal): Promise<ReadonlyMap<number, ArrayLike<number>>>;
  /** One INSERT of the planned rows; resolves once committed. */
  insert(plan: InsertPlan, queryId: string, signal?: AbortSignal): Promise<void>;
}

export interface FlushAttempt {
  readonly records: readonly SinkRecord[];
  readonly uncertain: boolean;
  readonly staleQueryIds: readonly string[];
  readonly attempt: number;
}

export interface FlushSettings {
  readonly spec: TableSpec;
  readonly maxInsertRows: number;
  /** query_id of INSERT i of this attempt. */
  readonly queryId: (attempt: number, insert: number) => string;
  /** TESTS ONLY: never ask what landed (the negative control). */
  readonly skipLandedCheck?: boolean;
  readonly log?: (line: string) => void;
}

export interface FlushResult {
  readonly inserts: number;
  readonly insertedRows: number;
  readonly alreadyLandedRows: number;
  readonly duplicateRows: number;
}

/** Rows of `records` still missing from ClickHouse, after waiting for `staleQueryIds`. */
async function missingRows(io: FlushIo, records: readonly SinkRecord[], attempt: FlushAttempt, s: FlushSettings, signal?: AbortSignal) {
  // A retry: an INSERT of an earlier attempt may not have reached the server's process list yet (queued in a
  // stalled server's socket); fenced, it can no longer land after the answer below. (Recovery raised it for the first.)
  if (attempt.attempt > 1) await io.raiseFence(signal);
  for (const id of attempt.staleQueryIds) {
    if (!(await io.waitQueryGone(id, signal))) throw new Error(`INSERT ${id} of an earlier attempt still runs on the server`);
  }
  let tsMin = Infinity;
  let tsMax = -Infinity;
  for (const r of records) {
    if (r.batch.rows === 0) continue;
    if (r.minTsMicros < tsMin) tsMin = r.minTsMicros;
    if (r.maxTsMicros > tsMax) tsMax = r.maxTsMicros;
  }
  const first = records[0]!.lsn;
  const last = records[records.length - 1]!.lsn;
  const counts = Number.isFinite(tsMin) ? await io.landedCounts(first, last, tsMin, tsMax, signal) : new Map<number, number>();
  const partial = partlyLanded(records, counts);
  const rowSets = partial.length > 0 ? await io.landedRowSets(partial, signal) : new Map<number, ArrayLike<number>>();
  const r = reconcile(records, { counts, rowSets });
  if (r.landedRows > 0 || r.duplicateRows > 0) {
    s.log?.(
      `LSNs ${first}..${last}: ${r.landedRows} of ${rowsOf(records)} rows already in ClickHouse` +
        `${r.partialLsns.length > 0 ? ` (${r.partialLsns.length} LSNs partly)` : ""}; sending the other ${r.rowsToSend}` +
        `${r.duplicateRows > 0 ? `; WARNING: ${r.duplicateRows} rows are there more than once` : ""}`,
    );
  }
  return r;
}

/**
 * Runs one attempt. Rejects with `SinkFlushError` saying whether rows of this
 * batch may now be in ClickHouse and which INSERTs may still run.
 */
export async function runFlush(io: FlushIo, attempt: FlushAttempt, s: FlushSettings, signal?: AbortSignal): Promise<FlushResult> {
  const { records } = attempt;
  let toSend: PlanRecord[];
  let alreadyLandedRows = 0;
  let duplicateRows = 0;
  if (records.length === 0) return { inserts: 0, insertedRows: 0, alreadyLandedRows: 0, duplicateRows: 0 };
  if (attempt.uncertain && s.skipLandedCheck !== true) {
    try {
      const r = await missingRows(io, records, attempt, s, signal);
      toSend = r.toSend;
      alreadyLandedRows = r.landedRows;
      duplicateRows = r.duplicateRows;
    } catch (e) {
      // Nothing was sent in this attempt: what may have landed before still may have.
      const info = describeFailure(e);
      throw new SinkFlushError(`checking what landed: ${info.message}`, info.kind, false, attempt.staleQueryIds, info.retryable, { cause: e });
    }
  } else {
    toSend = wholeBatch(records);
  }
  const plans = planInserts(s.spec, toSend, { maxInsertRows: s.maxInsertRows });
  let inserts = 0;
  let insertedRows = 0;
  for (const [i, plan] of plans.entries()) {
    const queryId = s.queryId(attempt.attempt, i);
    try {
      await io.insert(plan, queryId, signal);
    } catch (e) {
      throw flushFailure(e, inserts, `INSERT ${i + 1} of ${plans.length} (${plan.rows} rows, LSNs ${plan.lsnMin}..${plan.lsnMax})`);
    }
    inserts++;
    insertedRows += plan.rows;
  }
  return { inserts, insertedRows, alreadyLandedRows, duplicateRows };
}
