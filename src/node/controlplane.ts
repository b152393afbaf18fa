// `--shards assigned`: the node joins the control plane. Its LocalShardHost is
// what the node agent starts and stops shards on; heartbeats carry the shards'
// figures (not the sink's full status, which stays on /v1/shards).
import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import { startControlPlane } from "../control/index.js";
import type { ControlPlane, ControlPlaneOptions, ShardHost, ShardStatusLike } from "../control/index.js";
import type { MetadataStore } from "../runtime/metadata.js";
import type { LocalShardHost } from "./shard/host.js";
import type { Catalog } from "../catalog.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The control plane's view of the node's shard host. An assignment can arrive
 * before this node has loaded the table from px_config (or created its WAL
 * stream): start waits for the table up to `catalogWaitMs`, then fails (the
 * agent retries).
 */
export function controlShardHost(host: LocalShardHost, catalog: () => Catalog, catalogWaitMs = 5_000): ShardHost {
  return {
    start: async (shard, leaseRevision) => {
      const deadline = Date.now() + catalogWaitMs;
      while (!catalog().get(shard.tenant)?.has(shard.table) && Date.now() < deadline) await sleep(50);
      await host.start(shard, leaseRevision);
    },
    stop: (shard) => host.stop(shard),
    status: (): ShardStatusLike[] =>
      host.status().map((s) => ({
        tenant: s.tenant,
        table: s.table,
        bucket: s.bucket,
        state: s.state,
        appliedLsn: s.appliedLsn,
        persistedLsn: s.persistedLsn,
        tPersistedMicros: s.tPersistedMicros,
        rows: s.rows,
        bytes: s.bytes,
        lagRecords: s.lagRecords,
        leaseRevision: s.leaseRevision,
      })),
  };
}

export interface NodeControlOptions {
  readonly nodeId: string;
  readonly host: LocalShardHost;
  /** The catalog the node serves (tables whose WAL streams exist). */
  readonly catalog: () => Catalog;
  readonly metadata: MetadataStore;
  readonly replicas: number;
  /** The port clients reach this node's API on (gRPC when it runs, else HTTP). */
  readonly apiPort: number;
  readonly clickhouseHealth?: () => string;
  /** Control-plane timings (heartbeat, node timeout, lease, ...); defaults: CONTROL_DEFAULTS. */
  readonly timings?: Partial<Pick<ControlPlaneOptions, "heartbeatMs" | "nodeTimeoutMs" | "leaseMs" | "reconcileMs" | "isolationMs" | "drainTimeoutMs">>;
  readonly log: (line: string) => void;
}

export function startNodeControlPlane(nc: NatsConnection, o: NodeControlOptions): Promise<ControlPlane> {
  return startControlPlane(nc, {
    ...o.timings,
    nodeId: o.nodeId,
    address: `${hostname()}:${o.apiPort}`,
    host: controlShardHost(o.host, o.catalog),
    metadata: o.metadata,
    replicas: o.replicas,
    log: o.log,
    ...(o.clickhouseHealth === undefined ? {} : { clickhouseHealth: o.clickhouseHealth }),
  });
}
