// A Proxist node: one process with a NATS connection, the gateway actor and the
// HTTP endpoints. Started by `proxist node`/`proxist up`; stop() drains cleanly.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createActor } from "xstate";
import { gatewayMachine } from "../../actors/gateway.js";
import type { IngestRequest } from "../../actors/gateway.js";
import type { IngestReply } from "../../protocols/ingest.js";
import type { Catalog } from "../catalog.js";
import { LocalIngress, catalogWatcher, jetstreamWal, natsIngestSource } from "../runtime/gatewayio.js";
import type { SourceStats } from "../runtime/gatewayio.js";
import { MetadataStore } from "../runtime/metadata.js";
import { ensureWalStream, ensureWatermarkStream } from "../runtime/streams.js";
import { promText, startHttp } from "./http.js";
import { SnapshotStore } from "../snapshot/store.js";
import { LocalShardHost } from "../shard/host.js";
import type { ShardAddress } from "../../protocols/subjects.js";

const shardLabels = (s: ShardAddress): Record<string, string> => ({ tenant: s.tenant, table: s.table, bucket: String(s.bucket) });

export interface NodeOptions {
  readonly natsUrl: string;
  readonly nodeId?: string;
  /** 0 picks a free port. */
  readonly httpPort?: number;
  readonly replicas?: number;
  readonly maxInFlight?: number;
  /** "all": this node owns every shard (single-node mode); "assigned": the control plane decides. */
  readonly shards?: "all" | "assigned" | "none";
  readonly snapshotIntervalMs?: number;
  readonly log?: (line: string) => void;
}

export interface ProxistNode {
  readonly nodeId: string;
  readonly httpPort: number;
  readonly nc: NatsConnection;
  readonly store: MetadataStore;
  stats(): Record<string, number>;
  state(): string;
  /** In-process ingest (used by the gRPC/Flight front ends): same validation and acks as NATS. */
  ingest(request: Omit<IngestRequest, "id" | "wantsReply">): Promise<IngestReply>;
  /** The catalog the gateway currently serves. */
  catalog(): Catalog;
  readonly shards: LocalShardHost;
  stop(): Promise<void>;
}

export async function startNode(o: NodeOptions): Promise<ProxistNode> {
  const log = o.log ?? ((line: string) => console.log(line));
  const nodeId = o.nodeId ?? `node-${process.pid}`;
  const nc = await connect({ servers: o.natsUrl, name: `proxist ${nodeId}`, maxReconnectAttempts: -1 });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const replicas = o.replicas ?? 1;
  const store = await MetadataStore.open(nc, replicas);
  const snapshots = await SnapshotStore.open(nc, replicas);
  let currentCatalog: Catalog = new Map();
  const shards = new LocalShardHost({ js, jsm, snapshots, snapshotIntervalMs: o.snapshotIntervalMs ?? 60_000, catalog: () => currentCatalog, log });
  const shardMode = o.shards ?? "all";
  const sourceStats: SourceStats = { fireAndForgetFailures: 0 };
  const local = new LocalIngress();
  let catalogLoaded = false;
  const ensured = new Set<string>();

  // Streams must exist before the gateway may accept a tenant's batches.
  const ensureTenants = async (catalog: Catalog): Promise<void> => {
    for (const tenant of catalog.keys()) {
      if (ensured.has(tenant)) continue;
      await ensureWalStream(jsm, tenant, { replicas });
      await ensureWatermarkStream(jsm, tenant, replicas);
      ensured.add(tenant);
    }
  };

  const gateway = createActor(
    gatewayMachine.provide({
      actors: {
        source: natsIngestSource(nc, sourceStats, local),
        wal: jetstreamWal(js),
        catalog: catalogWatcher((onCatalog) =>
          store.watch((catalog) => {
            ensureTenants(catalog).then(
              async () => {
                currentCatalog = catalog;
                catalogLoaded = true;
                onCatalog(catalog);
                if (shardMode === "all") await shards.ownAll(catalog);
              },
              (e: unknown) => log(`node ${nodeId}: cannot create streams: ${(e as Error).message}`),
            );
          }),
        ),
      },
    }),
    { input: { maxInFlight: o.maxInFlight ?? 256 } },
  );
  gateway.start();

  const stats = (): Record<string, number> => {
    const s = gateway.getSnapshot().context.stats;
    return { ...s, fireAndForgetFailures: sourceStats.fireAndForgetFailures };
  };
  const http = await startHttp(o.httpPort ?? 0, {
    routes: {
      // Shard states and figures; ?digest=1 adds a digest of each hot set (tests compare it with a replay).
      "/v1/shards": async (url) => ({
        status: 200,
        body: JSON.stringify(
          shards.all().map((h) => {
            const s = h.runtime.stats;
            return { ...h.shard, state: h.runtime.state, ...s, ...(url.searchParams.get("digest") ? { digest: h.runtime.table.digest() } : {}) };
          }),
        ),
      }),
      // Snapshot every shard now (operators: before a planned restart).
      "/v1/snapshot": async (_url, method) => {
        if (method !== "POST") return { status: 405, body: JSON.stringify({ error: "use POST" }) };
        const lsns = await Promise.all(shards.all().map(async (h) => ({ ...h.shard, lsn: await h.runtime.snapshotNow() })));
        return { status: 200, body: JSON.stringify(lsns) };
      },
    },
    ready: () => catalogLoaded && !nc.isClosed(),
    metrics: () => {
      const s = stats();
      return promText({
        px_ingest_batches_accepted_total: { help: "Ingest batches stored in the WAL", type: "counter", value: s.acceptedBatches ?? 0 },
        px_ingest_rows_accepted_total: { help: "Ticks stored in the WAL", type: "counter", value: s.acceptedRows ?? 0 },
        px_ingest_batches_rejected_total: { help: "Ingest batches rejected as invalid", type: "counter", value: s.rejectedBatches ?? 0 },
        px_ingest_append_failures_total: { help: "Ingest batches the WAL failed to store", type: "counter", value: s.failedAppends ?? 0 },
        px_ingest_throttled_total: { help: "Ingest batches refused by back-pressure", type: "counter", value: s.throttledBatches ?? 0 },
        px_ingest_fire_and_forget_failures_total: { help: "Failed fire-and-forget batches", type: "counter", value: s.fireAndForgetFailures ?? 0 },
        px_shard_applied_lsn: shards.all().map((h) => ({ help: "Last WAL LSN applied to the hot set", type: "gauge" as const, value: h.runtime.stats.appliedLsn, labels: shardLabels(h.shard) })),
        px_shard_rows: shards.all().map((h) => ({ help: "Rows in the hot set", type: "gauge" as const, value: h.runtime.stats.rows, labels: shardLabels(h.shard) })),
        px_shard_bytes: shards.all().map((h) => ({ help: "Bytes of the hot set", type: "gauge" as const, value: h.runtime.stats.bytes, labels: shardLabels(h.shard) })),
      });
    },
  });
  log(`node ${nodeId}: up (nats ${o.natsUrl}, http :${http.port})`);

  return {
    nodeId,
    httpPort: http.port,
    nc,
    store,
    stats,
    state: () => String(gateway.getSnapshot().value),
    shards,
    ingest: (request) => local.submit(request),
    catalog: () => gateway.getSnapshot().context.catalog,
    stop: async () => {
      gateway.stop();
      await shards.stopAll();
      await new Promise<void>((resolve) => http.server.close(() => resolve()));
      await nc.drain().catch(() => {});
    },
  };
}
