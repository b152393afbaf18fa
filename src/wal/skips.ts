// Skipped WAL records: a record no reader can decode (a bug, corruption)
// stops its shard and sink with an error naming its LSN; an operator who
// decides to lose it runs `pxctl shard skip-record`, which stores the skip
// here (KV px_walskips, one key per record, the audit as its value) and in
// the event log. Readers load a shard's skips when they start: a skipped
// record reads as a record without rows (./decode.ts skippedRecord).
import type { NatsConnection } from "@nats-io/transport-node";
import type { ShardAddress } from "../../protocols/subjects.js";
import { KV_WAL_SKIPS, walSkipKey } from "../../protocols/subjects.js";
import { openKv } from "../control/index.js";

/** One skip, as stored and as `pxctl events` shows it. */
export interface WalSkip {
  readonly shard: string;
  readonly lsn: number;
  readonly atMs: number;
  readonly node: string;
  /** The operator's reason (--reason). */
  readonly reason: string;
  /** Why the record could not be read. */
  readonly error: string;
}

const encoder = new TextEncoder();

export async function recordWalSkip(nc: NatsConnection, shard: ShardAddress, skip: WalSkip, replicas = 1): Promise<void> {
  const kv = await openKv(nc, KV_WAL_SKIPS, { replicas });
  await kv.put(walSkipKey(shard, skip.lsn), encoder.encode(JSON.stringify(skip)));
}

/** The LSNs of `shard`'s skipped records (empty when none was ever skipped). */
export async function readWalSkips(nc: NatsConnection, shard: ShardAddress, replicas = 1): Promise<Set<number>> {
  const kv = await openKv(nc, KV_WAL_SKIPS, { replicas });
  const prefix = `${shard.tenant}.${shard.table}.${shard.bucket}.`;
  const out = new Set<number>();
  for await (const key of await kv.keys(`${prefix}*`)) {
    const lsn = Number(key.slice(prefix.length));
    if (Number.isSafeInteger(lsn) && lsn > 0) out.add(lsn);
  }
  return out;
}
