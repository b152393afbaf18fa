// WAL compaction's decision for one shard, as a pure function: the lowest LSN
// any reader of the shard still needs is min(P + 1, the newest verified
// snapshot's LSN + 1, every hold); records below it minus the table's
// `retention.walKeep` may go, and none the WAL took within
// `retention.walKeepSeconds`. The compaction workflow (actors/compactor.ts)
// records the cut in px_compaction before it purges, so a reader that would
// need less stops on a named gap (./gap.ts) instead of replaying a hole.
import type { ShardAddress } from "../../protocols/subjects.js";

export interface CompactionInputs {
  readonly shard: ShardAddress;
  /**
   * P as compaction trusts it: the lower of the last watermark and the sink's
   * durable consumer ack floor (only the sink advances that, after
   * ClickHouse verified the batch). 0 when the shard has no sink: nothing is
   * persisted and nothing may go.
   */
  readonly persistedLsn: number;
  /** LSN the newest snapshot whose checksum holds covers (0: none). */
  readonly snapshotLsn: number;
  /** Lowest LSN each other reader still needs (feeds, other durable consumers): records from it on stay. */
  readonly holds: readonly number[];
  /** LSNs kept below the lowest needed one (the table's retention.walKeep). */
  readonly walKeep: number;
  /**
   * The time margin (retention.walKeepSeconds) as an LSN: the shard's first
   * record the WAL took within that time, which stays with everything after
   * it. undefined: no time margin, or every record of the shard is older.
   */
  readonly keepFromLsn?: number;
  /** The time margin in seconds, for the reason given when it is what holds records back. */
  readonly walKeepSeconds?: number;
  /** The cut of the previous compaction (0: never compacted). */
  readonly compactedBelow: number;
}

export interface CompactionPlan {
  readonly shard: ShardAddress;
  /** Purge the shard's subject below this LSN (0: nothing to do). */
  readonly cut: number;
  /** The lowest LSN a reader needs, and which reader. */
  readonly neededFrom: number;
  readonly neededBy: string;
  readonly persistedLsn: number;
  readonly snapshotLsn: number;
  /** Why nothing is purged, when cut is 0. */
  readonly skip?: string;
}

export function planCompaction(i: CompactionInputs): CompactionPlan {
  const needs: [number, string][] = [
    [i.persistedLsn + 1, i.persistedLsn === 0 ? "the sink (nothing persisted yet)" : `the sink (P ${i.persistedLsn})`],
    [i.snapshotLsn + 1, i.snapshotLsn === 0 ? "a replay (no verified snapshot)" : `a replay from the snapshot at LSN ${i.snapshotLsn}`],
    ...i.holds.map((h, n): [number, string] => [h, `hold ${n + 1} (LSN ${h})`]),
  ];
  let [neededFrom, neededBy] = needs[0]!;
  for (const [lsn, by] of needs) if (lsn < neededFrom) [neededFrom, neededBy] = [lsn, by];
  const base = { shard: i.shard, neededFrom, neededBy, persistedLsn: i.persistedLsn, snapshotLsn: i.snapshotLsn };
  const byRecords = neededFrom - i.walKeep;
  const cut = i.keepFromLsn === undefined ? byRecords : Math.min(byRecords, i.keepFromLsn);
  if (cut <= 1) {
    const why = cut === i.keepFromLsn && cut < byRecords ? `walKeepSeconds ${i.walKeepSeconds ?? "?"} keeps LSN ${i.keepFromLsn} and after` : `with walKeep ${i.walKeep} nothing is old enough`;
    return { ...base, cut: 0, skip: `${neededBy} needs LSN ${neededFrom}; ${why}` };
  }
  if (cut <= i.compactedBelow) return { ...base, cut: 0, skip: `already compacted below LSN ${i.compactedBelow}` };
  return { ...base, cut };
}

/** One line for logs and `pxctl compact --dry-run`. */
export function describePlan(p: CompactionPlan): string {
  const name = `${p.shard.tenant}/${p.shard.table}/${p.shard.bucket}`;
  return p.cut === 0 ? `${name}: nothing to purge (${p.skip ?? ""})` : `${name}: purge below LSN ${p.cut} (${p.neededBy} needs LSN ${p.neededFrom})`;
}
