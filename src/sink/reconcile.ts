// Exactly-once reconciliation, pure: given what ClickHouse says already
// landed of a batch (rows per LSN, and the _row values of partly landed LSNs),
// which rows still have to be sent. 18.16 has no insert deduplication, so this
// is what makes a retry, or a restart after a crash, write every row once.
import type { PlanRecord } from "./plan.js";
import type { SinkRecord } from "./types.js";

export interface LandedCounts {
  /** `_lsn -> rows` of the shard for the LSNs of the batch (absent: none landed). */
  readonly counts: ReadonlyMap<number, number>;
  /** `_lsn -> landed _row values` for LSNs that landed partly (see `partlyLanded`). */
  readonly rowSets: ReadonlyMap<number, ArrayLike<number>>;
}

export interface Reconciled {
  /** What to send: absent records whole, partly landed ones as their missing rows. */
  readonly toSend: PlanRecord[];
  readonly rowsToSend: number;
  /** Rows of the batch ClickHouse already holds. */
  readonly landedRows: number;
  /** Rows ClickHouse holds more than once (a previous writer's fault; reported, not repaired). */
  readonly duplicateRows: number;
  /** LSNs that had landed partly. */
  readonly partialLsns: number[];
}

/** LSNs of `records` that landed with fewer rows than the record has: their _row values are needed. */
export function partlyLanded(records: readonly SinkRecord[], counts: ReadonlyMap<number, number>): number[] {
  const out: number[] = [];
  for (const r of records) {
    const n = counts.get(r.lsn) ?? 0;
    if (n > 0 && n < r.batch.rows) out.push(r.lsn);
  }
  return out;
}

/**
 * Rows of `records` missing from ClickHouse. An LSN whose count equals its
 * rows is complete; one with more holds duplicates (counted, treated as
 * complete); a partly landed one must have its `rowSets` entry.
 */
export function reconcile(records: readonly SinkRecord[], landed: LandedCounts): Reconciled {
  const toSend: PlanRecord[] = [];
  let rowsToSend = 0;
  let landedRows = 0;
  let duplicateRows = 0;
  const partialLsns: number[] = [];
  for (const r of records) {
    const total = r.batch.rows;
    const n = landed.counts.get(r.lsn) ?? 0;
    if (n === 0) {
      if (total > 0) toSend.push({ lsn: r.lsn, batch: r.batch });
      rowsToSend += total;
      continue;
    }
    if (n >= total) {
      landedRows += total;
      duplicateRows += n - total;
      continue;
    }
    partialLsns.push(r.lsn);
    const set = landed.rowSets.get(r.lsn);
    if (set === undefined) {
      throw new Error(`reconcile: LSN ${r.lsn} landed ${n} of ${total} rows, but its landed _row values were not given`);
    }
    const have = new Uint8Array(total);
    let distinct = 0;
    for (let i = 0; i < set.length; i++) {
      const v = set[i]!;
      if (v < total && have[v] === 0) {
        have[v] = 1;
        distinct++;
      }
    }
    duplicateRows += set.length - distinct;
    landedRows += distinct;
    const missing = new Uint32Array(total - distinct);
    let k = 0;
    for (let i = 0; i < total; i++) if (have[i] === 0) missing[k++] = i;
    if (missing.length > 0) toSend.push({ lsn: r.lsn, batch: r.batch, rows: missing });
    rowsToSend += missing.length;
  }
  return { toSend, rowsToSend, landedRows, duplicateRows, partialLsns };
}

/** The whole batch, as sent when nothing can have landed yet. */
export function wholeBatch(records: readonly SinkRecord[]): PlanRecord[] {
  return records.filter((r) => r.batch.rows > 0).map((r) => ({ lsn: r.lsn, batch: r.batch }));
}
