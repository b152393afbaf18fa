// What the node agent drives: the runtime's shard and sink actors for each
// shard this node is assigned. The lead's runtime implements it with the real
// actors; tests use a fake that records calls.
import type { ShardRef } from "./shard.js";

/** A shard as the host reports it in heartbeats (LSNs are JetStream sequences, times in µs). */
export interface ShardStatusLike {
  readonly tenant: string;
  readonly table: string;
  readonly bucket: number;
  /** e.g. recovering, replaying, live, draining, failed. */
  readonly state: string;
  readonly appliedLsn?: number;
  readonly persistedLsn?: number;
  readonly tPersistedMicros?: number;
  readonly rows?: number;
  readonly bytes?: number;
  readonly lagRecords?: number;
  /** The assignment revision the shard was started with. */
  readonly leaseRevision?: number;
}

export interface ShardHost {
  /**
   * Starts the shard (hot set and sink) holding `leaseRevision`; every write the
   * shard makes (watermarks, ClickHouse batches) must carry it so a newer owner
   * can reject it. Resolves once the shard is started (it may still be replaying).
   */
  start(shard: ShardRef, leaseRevision: number): Promise<void>;
  /** Stops the shard and its sink; resolves once neither writes any more. */
  stop(shard: ShardRef): Promise<void>;
  status(): ShardStatusLike[];
}
