// Reads what a shard's WAL readers need for the gap check (./gap.ts): the
// stream's first sequence, and the compaction floor the compaction workflow
// records in KV px_compaction before it purges (read through the stream API,
// so a reader needs no bucket handle and a missing bucket means "never
// compacted").
import type { JetStreamManager } from "@nats-io/jetstream";
import { KV_COMPACTION, compactionKey, walStream } from "../../protocols/subjects.js";
import type { ShardAddress } from "../../protocols/subjects.js";
import type { WalFloor } from "./gap.js";

/** A shard's compaction record in px_compaction. */
export interface CompactionRecord {
  /** The shard's subject holds no record below this sequence (purged). */
  readonly purgedBelow: number;
  /** What the cut was computed from (for `pxctl events` and the gap error). */
  readonly persistedLsn: number;
  readonly snapshotLsn: number;
  readonly atMs: number;
}

export async function compactionFloor(jsm: JetStreamManager, shard: ShardAddress): Promise<number> {
  const m = await jsm.streams.getMessage(`KV_${KV_COMPACTION}`, { last_by_subj: `$KV.${KV_COMPACTION}.${compactionKey(shard)}` }).catch(() => null);
  if (m === null || m.data.length === 0) return 0;
  try {
    return (JSON.parse(new TextDecoder().decode(m.data)) as CompactionRecord).purgedBelow;
  } catch {
    return 0;
  }
}

export async function streamFirstSeq(jsm: JetStreamManager, tenant: string): Promise<number> {
  return (await jsm.streams.info(walStream(tenant))).state.first_seq;
}

/** Where a WAL stream starts, and how many records were removed inside it (purges, deletes): see ./sharedfloor.ts. */
export interface WalStreamFloor {
  readonly firstSeq: number;
  readonly removed: number;
}

export async function streamFloorState(jsm: JetStreamManager, tenant: string): Promise<WalStreamFloor> {
  const s = (await jsm.streams.info(walStream(tenant))).state;
  // num_deleted is the server's count of removed sequences between first and last (derived the same way when absent).
  return { firstSeq: s.first_seq, removed: s.num_deleted ?? Math.max(0, s.last_seq - s.first_seq + 1 - s.messages) };
}

export async function walFloor(jsm: JetStreamManager, shard: ShardAddress, withCompaction = true): Promise<WalFloor> {
  const [firstSeq, compactedBelow] = await Promise.all([streamFirstSeq(jsm, shard.tenant), withCompaction ? compactionFloor(jsm, shard) : Promise.resolve(0)]);
  return { firstSeq, compactedBelow };
}
