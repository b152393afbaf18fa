// The WAL floor (./floor.ts) read once for every reader of a process: all
// shards of a tenant share one WAL stream, so records of other shards
// interleave and nearly every batch a reader gets skips sequences and asks
// for the floor (./gap.ts). Read per reader, that was two JetStream API
// requests per batch per reader (a node with 8 shards and their sinks: 16
// readers), each batch held until its answer came back. Here the stream's
// first sequence is read once per tenant and the compaction floor once per
// shard for every reader at once; each caller still gets values read after
// its call (freshReads), which is what the gap check needs.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { ShardAddress } from "../../protocols/subjects.js";
import { compactionFloor, streamFirstSeq } from "./floor.js";
import { freshReads } from "./fresh.js";
import type { WalFloor } from "./gap.js";

/** Fresh floor reads shared by every reader over one JetStream connection. */
export class SharedWalFloors {
  private readonly firstSeq = new Map<string, () => Promise<number>>();
  private readonly compacted = new Map<string, () => Promise<number>>();

  constructor(private readonly jsm: JetStreamManager) {}

  /** The floor of `shard`'s WAL, every part of it read after this call. */
  floorAfterNow(shard: ShardAddress): Promise<WalFloor> {
    const { tenant } = shard;
    let first = this.firstSeq.get(tenant);
    if (first === undefined) this.firstSeq.set(tenant, (first = freshReads(() => streamFirstSeq(this.jsm, tenant))));
    const key = `${tenant}\u0000${shard.table}\u0000${shard.bucket}`;
    let comp = this.compacted.get(key);
    if (comp === undefined) this.compacted.set(key, (comp = freshReads(() => compactionFloor(this.jsm, shard))));
    return Promise.all([first(), comp()]).then(([firstSeq, compactedBelow]) => ({ firstSeq, compactedBelow }));
  }
}

const byConnection = new WeakMap<JetStreamManager, SharedWalFloors>();

/** The shared floor reads of `jsm` (one per JetStream manager, i.e. per node's connection). */
export function sharedWalFloors(jsm: JetStreamManager): SharedWalFloors {
  let s = byConnection.get(jsm);
  if (s === undefined) byConnection.set(jsm, (s = new SharedWalFloors(jsm)));
  return s;
}
