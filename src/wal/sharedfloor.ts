// The WAL floor (./floor.ts) read once for every reader of a process: all
// shards of a tenant share one WAL stream, so records of other shards
// interleave and nearly every batch a reader gets skips sequences and asks
// for the floor (./gap.ts). Read per reader, that was two JetStream API
// requests per batch per reader (a node with 8 shards and their sinks: 16
// readers), each batch held until its answer came back. Here the stream's
// state is read once per tenant for every reader at once; each caller still
// gets values read after its call (freshReads), which is what the gap check
// needs.
//
// The shard's compaction floor is read again only when the stream shows that
// records were removed since the last read of it. Compaction writes the floor
// before it purges, and a purge inside the stream raises its count of removed
// sequences (num_deleted), one at its start moves the first sequence; neither
// count goes back while the first sequence stays. So while (first sequence,
// removed) is what it was when the floor was last read (that read started
// after that state was seen), nothing was purged since and that floor still
// tells every gap: a floor written since without its purge yet has removed
// nothing a reader could miss. At 100 k ticks/s on 8 shards that was ~560
// compaction reads a second, each a failed request while px_compaction does
// not exist yet (bench:sustained, JetStream API requests of one run).
import type { JetStreamManager } from "@nats-io/jetstream";
import type { ShardAddress } from "../../protocols/subjects.js";
import { compactionFloor, streamFloorState } from "./floor.js";
import type { WalStreamFloor } from "./floor.js";
import { freshReads } from "./fresh.js";
import type { WalFloor } from "./gap.js";

/** The reads the shared floors make (JetStream's in a node; fakes in tests). */
export interface WalFloorReads {
  streamFloor(tenant: string): Promise<WalStreamFloor>;
  compactionFloor(shard: ShardAddress): Promise<number>;
}

interface KnownFloor extends WalStreamFloor {
  /** The compaction floor, read after the stream was seen at (firstSeq, removed). */
  readonly compactedBelow: number;
}

/** Fresh floor reads shared by every reader over one JetStream connection. */
export class SharedWalFloors {
  private readonly stream = new Map<string, () => Promise<WalStreamFloor>>();
  private readonly compacted = new Map<string, () => Promise<number>>();
  private readonly known = new Map<string, KnownFloor>();

  constructor(private readonly reads: WalFloorReads) {}

  /** The floor of `shard`'s WAL, as of a read of the stream made after this call. */
  async floorAfterNow(shard: ShardAddress): Promise<WalFloor> {
    const { tenant } = shard;
    let stream = this.stream.get(tenant);
    if (stream === undefined) this.stream.set(tenant, (stream = freshReads(() => this.reads.streamFloor(tenant))));
    const now = await stream();
    const key = `${tenant}\u0000${shard.table}\u0000${shard.bucket}`;
    const k = this.known.get(key);
    if (k !== undefined && k.firstSeq === now.firstSeq && k.removed === now.removed) return { firstSeq: now.firstSeq, compactedBelow: k.compactedBelow };
    let comp = this.compacted.get(key);
    if (comp === undefined) this.compacted.set(key, (comp = freshReads(() => this.reads.compactionFloor(shard))));
    // Started after `now` was read: it holds every floor written before a purge that `now` shows.
    const compactedBelow = await comp();
    this.known.set(key, { ...now, compactedBelow });
    return { firstSeq: now.firstSeq, compactedBelow };
  }
}

const byConnection = new WeakMap<JetStreamManager, SharedWalFloors>();

/** The shared floor reads of `jsm` (one per JetStream manager, i.e. per node's connection). */
export function sharedWalFloors(jsm: JetStreamManager): SharedWalFloors {
  let s = byConnection.get(jsm);
  if (s === undefined) byConnection.set(jsm, (s = new SharedWalFloors({ streamFloor: (tenant) => streamFloorState(jsm, tenant), compactionFloor: (shard) => compactionFloor(jsm, shard) })));
  return s;
}
