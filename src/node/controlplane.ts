// `--shards assigned`: the node joins the control plane. Its LocalShardHost is
// what the node agent starts and stops shards on; heartbeats carry the shards'
// figures (not the sink's full status, which stays on /v1/shards).
import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import { startControlPlane } from "./control/index.js";
import type { ControlPlane, ControlPlaneOptions, HeartbeatCoverDial } from "./control/index.js";
import type { MetadataStore, NodeCatalog, ShardHost } from "../control/index.js";
import type { LocalShardHost } from "./shard/host.js";

/** Resolves true once the catalog holds the table, false after `timeoutMs`. */
function tableServed(catalog: Pick<NodeCatalog, "subscribe">, tenant: string, table: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (found: boolean): void => {
      clearTimeout(timer);
      unsubscribe();
      resolve(found);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    // subscribe may call back at once: finish after it returned its unsubscribe.
    const unsubscribe = catalog.subscribe((c) => {
      if (c.get(tenant)?.has(table)) queueMicrotask(() => finish(true));
    });
  });
}

/**
 * The control plane's view of the node's shard host. An assignment can arrive
 * before this node serves the table (px_config not loaded yet, or its WAL
 * stream still being created): start waits for the table in the node's
 * catalog up to `catalogWaitMs`, then fails (the agent retries).
 */
export function controlShardHost(host: LocalShardHost, catalog: Pick<NodeCatalog, "subscribe">, catalogWaitMs = 5_000): ShardHost {
  return {
    start: async (shard, leaseRevision) => {
      await tableServed(catalog, shard.tenant, shard.table, catalogWaitMs);
      await host.start(shard, leaseRevision);
    },
    stop: (shard) => host.stop(shard),
    revoke: (shard, reason, newRevision) => host.revoke(shard, reason, newRevision),
    renewLeases: (sentAgoMs, confirm) => host.renewLeases(sentAgoMs, confirm),
    // Richer than ShardStatus; a heartbeat encodes the ShardStatus fields only.
    status: () => host.status(),
  };
}

export interface NodeControlOptions {
  readonly nodeId: string;
  readonly host: LocalShardHost;
  /** The node's one catalog (tables whose WAL streams exist); the controller places from it too. */
  readonly catalog: NodeCatalog;
  readonly metadata: MetadataStore;
  readonly replicas: number;
  /** The port clients reach this node's API on (gRPC when it runs, else HTTP). */
  readonly apiPort: number;
  readonly clickhouseHealth?: () => string;
  /** Control-plane timings (heartbeat, node timeout, lease, ...); defaults: CONTROL_DEFAULTS. */
  readonly timings?: Partial<Pick<ControlPlaneOptions, "heartbeatMs" | "nodeTimeoutMs" | "leaseMs" | "reconcileMs" | "isolationMs" | "drainTimeoutMs" | "placementSettleMs">>;
  /** The node's NATS settings for the heartbeat thread, and its grace (PX_HEARTBEAT_GRACE_MS). */
  readonly heartbeatCover?: HeartbeatCoverDial;
  readonly log: (line: string) => void;
}

export function startNodeControlPlane(nc: NatsConnection, o: NodeControlOptions): Promise<ControlPlane> {
  return startControlPlane(nc, {
    ...o.timings,
    nodeId: o.nodeId,
    address: `${hostname()}:${o.apiPort}`,
    host: controlShardHost(o.host, o.catalog),
    catalog: o.catalog,
    metadata: o.metadata,
    replicas: o.replicas,
    log: o.log,
    ...(o.heartbeatCover === undefined ? {} : { heartbeatCover: o.heartbeatCover }),
    ...(o.clickhouseHealth === undefined ? {} : { clickhouseHealth: o.clickhouseHealth }),
  });
}
