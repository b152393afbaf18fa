// Skipped WAL records: a record no reader can decode (a bug, corruption)
// stops its shard and sink with an error naming its LSN; an operator who
// decides to lose it runs `pxctl shard skip-record`, which stores the skip
// here (KV px_walskips, one key per shard, the list of its skips with their
// audit as the value) and in
// the event log. Readers load a shard's skips when they start: a skipped
// record reads as a record without rows (./decode.ts skippedRecord).
import type { NatsConnection } from "@nats-io/transport-node";
import type { ShardAddress } from "../../protocols/subjects.js";
import { KV_WAL_SKIPS, walSkipKey } from "../../protocols/subjects.js";
import type { KV } from "@nats-io/kv";
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

// One bucket handle per connection: every shard start reads its skips.
const buckets = new WeakMap<NatsConnection, Promise<KV>>();
function bucket(nc: NatsConnection, replicas: number): Promise<KV> {
  let kv = buckets.get(nc);
  if (kv === undefined) {
    kv = openKv(nc, KV_WAL_SKIPS, { replicas });
    // A failed open is not kept: the next shard start tries again.
    kv.catch(() => buckets.delete(nc));
    buckets.set(nc, kv);
  }
  return kv;
}

const decoder = new TextDecoder();

function skipsOf(value: Uint8Array | undefined): WalSkip[] {
  if (value === undefined || value.length === 0) return [];
  const parsed = JSON.parse(decoder.decode(value)) as unknown;
  return Array.isArray(parsed) ? (parsed as WalSkip[]) : [];
}

/** Adds `skip` to the shard's list (compare-and-set: two operators at once both land). */
export async function recordWalSkip(nc: NatsConnection, shard: ShardAddress, skip: WalSkip, replicas = 1): Promise<void> {
  const kv = await bucket(nc, replicas);
  const key = walSkipKey(shard);
  for (let attempt = 0; ; attempt++) {
    const e = await kv.get(key);
    const list = skipsOf(e?.value).filter((s) => s.lsn !== skip.lsn);
    const value = encoder.encode(JSON.stringify([...list, skip]));
    try {
      if (e === null || e.operation !== "PUT") await kv.create(key, value);
      else await kv.update(key, value, e.revision);
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }
}

/** The LSNs of `shard`'s skipped records (empty when none was ever skipped): one KV read, no consumer. */
export async function readWalSkips(nc: NatsConnection, shard: ShardAddress, replicas = 1): Promise<Set<number>> {
  const kv = await bucket(nc, replicas);
  const e = await kv.get(walSkipKey(shard));
  return new Set(skipsOf(e?.operation === "PUT" ? e.value : undefined).map((s) => s.lsn).filter((lsn) => Number.isSafeInteger(lsn) && lsn > 0));
}
