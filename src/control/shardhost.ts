// What the node agent drives: the runtime's shard and sink actors for each
// shard this node is assigned. The lead's runtime implements it with the real
// actors; tests use a fake that records calls.
import type { ShardStatus } from "../../protocols/shardstatus.js";
import type { ShardRef } from "./shard.js";

export interface ShardHost {
  /**
   * Starts the shard (hot set and sink) holding `leaseRevision`; every write the
   * shard makes (watermarks, ClickHouse batches) must carry it so a newer owner
   * can reject it. Resolves once the shard is started (it may still be replaying).
   */
  start(shard: ShardRef, leaseRevision: number): Promise<void>;
  /** Stops the shard and its sink; resolves once neither writes any more. */
  stop(shard: ShardRef): Promise<void>;
  status(): ShardStatus[];
  /**
   * Fencing, called from the agent's watch of px_assign before any stop is
   * scheduled: the shard now belongs to another node (or to `newRevision`);
   * its sink must not write again. Optional: hosts without sinks ignore it.
   */
  revoke?(shard: ShardRef, reason: string, newRevision?: number): void;
  /**
   * The agent's heartbeat sent `sentAgoMs` ago was stored: the sinks' permits
   * are extended from when it was sent. A permit that had lapsed is extended
   * (or its sink started again) only once `confirm` read px_assign and found
   * the shard still this node's under the same lease revision.
   */
  renewLeases?(sentAgoMs: number, confirm: LeaseConfirm): void;
}

/** Reads px_assign now: does `shard` still belong to this node under `leaseRevision`? */
export type LeaseConfirm = (shard: ShardRef, leaseRevision: number) => Promise<boolean>;
