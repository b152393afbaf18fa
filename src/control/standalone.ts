// The cluster state of a standalone node (`proxist node --shards all`): no
// controller, no heartbeats or assignments in KV; the node owns every shard of
// the catalog. pxctl reads it through the same views as a cluster's (pure).
import type { ShardStatus } from "../../protocols/shardstatus.js";
import type { TenantSpec } from "../../protocols/tablespec.js";
import type { Assignment } from "./assignments.js";
import type { StoredHeartbeat } from "./heartbeat.js";
import { shardKey } from "./shard.js";
import type { ClusterState } from "./views.js";

/** Shown as the leader of a standalone node, so `pxctl status` says what runs. */
export const STANDALONE_HOLDER_SUFFIX = " (standalone: --shards all, no controller; it owns every shard)";

export interface StandaloneInput {
  readonly nowMs: number;
  readonly nodeId: string;
  readonly address: string;
  readonly softwareVersion: string;
  /** The configured ClickHouse (no credentials), or "none". */
  readonly clickhouse: string;
  readonly shards: readonly ShardStatus[];
  readonly tenants: ReadonlyMap<string, { readonly spec: TenantSpec; readonly revision: number }>;
}

export function standaloneState(i: StandaloneInput): ClusterState {
  const heartbeat: StoredHeartbeat = {
    info: { nodeId: i.nodeId, address: i.address, softwareVersion: i.softwareVersion, sentAtMicros: i.nowMs * 1000, capacityShards: 0, state: "running", clickhouse: i.clickhouse, shards: i.shards },
    revision: 0,
    createdMs: i.nowMs,
  };
  const assignments = new Map<string, Assignment>(i.shards.map((s) => [shardKey(s), { node: i.nodeId, leaseRevision: 0, term: 0, assignedAtMs: i.nowMs }]));
  return {
    nowMs: i.nowMs,
    lease: { record: { holder: `${i.nodeId}${STANDALONE_HOLDER_SUFFIX}`, term: 0, leaseMs: 0, renewedAtMs: i.nowMs }, revision: 0, createdMs: i.nowMs },
    leaseCreatedMs: i.nowMs,
    heartbeats: new Map([[i.nodeId, heartbeat]]),
    assignments,
    tenants: i.tenants,
  };
}
