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
  /** The agent's heartbeat was stored: the sinks' permits are extended. */
  renewLeases?(): void;
}
