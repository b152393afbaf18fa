// A Proxist node: one process with a NATS connection, the gateway actor, the
// shard host (hot sets, and ClickHouse sinks when a ClickHouse is configured)
// and the HTTP endpoints. Started by `proxist node`/`proxist up`; stop() drains cleanly.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createActor } from "xstate";
import { gatewayMachine } from "../../actors/gateway.js";
import type { IngestRequest } from "../../actors/gateway.js";
import type { IngestReply } from "../../protocols/ingest.js";
import type { Catalog } from "../catalog.js";
import { LocalIngress, catalogWatcher, jetstreamWal, natsIngestSource } from "../runtime/gatewayio.js";
import type { AfterAppend, SourceStats } from "../runtime/gatewayio.js";
import type { ObjectStore } from "@nats-io/obj";
import { MetadataStore } from "../runtime/metadata.js";
import { ensureWalStream, ensureWatermarkStream } from "../wal/index.js";
import { promText, startHttp } from "./http.js";
import { SnapshotStore } from "../snapshot/store.js";
import { LocalShardHost } from "./shard/host.js";
import type { HostSinkOptions } from "./shard/host.js";
import { SinkClickhouse } from "../sink/index.js";
import { BytePool } from "../codec/pool.js";
import { startNodeControlPlane } from "./controlplane.js";
import { startNodeApi } from "./api.js";
import type { NodeControlOptions } from "./controlplane.js";
import type { ControlPlane } from "../control/index.js";
import type { ProxistQueryEngine } from "../query/index.js";
import type { ShardAddress } from "../../protocols/subjects.js";

const shardLabels = (s: ShardAddress): Record<string, string> => ({ tenant: s.tenant, table: s.table, bucket: String(s.bucket) });

export interface NodeOptions {
  /** One NATS URL, or the members of a cluster. */
  readonly natsUrl: string | string[];
  readonly nodeId?: string;
  /** 0 picks a free port. */
  readonly httpPort?: number;
  readonly replicas?: number;
  readonly maxInFlight?: number;
  /** "all": this node owns every shard (single-node mode); "assigned": the control plane decides. */
  readonly shards?: "all" | "assigned" | "none";
  /** The gRPC API port (0 picks a free one); the address the control plane shows for this node. */
  readonly grpcPort?: number;
  /** Control-plane timings with `shards: "assigned"` (tests shorten them). */
  readonly control?: NodeControlOptions["timings"];
  readonly snapshotIntervalMs?: number;
  /**
   * ClickHouse HTTP URL (e.g. http://127.0.0.1:8123). With it, every shard
   * this node owns runs a sink and evicts what ClickHouse holds; without it
   * ticks stay in the WAL and RAM only.
   */
  readonly clickhouseUrl?: string;
  /** Sink tuning (batching limits, retries); `unsafeSkipLandedCheck` is for the negative-control test only. */
  readonly sink?: Omit<HostSinkOptions, "clickhouse">;
  readonly log?: (line: string) => void;
  /** Wrappers around the node's IO; crash tests inject faults through them (test/helpers/faultnode.ts). */
  readonly seams?: NodeSeams;
}

/** Where tests wrap the node's IO (the sink's flush IO is `sink.flushIo`). */
export interface NodeSeams {
  /** Runs after JetStream stored a batch, before the gateway acks it. */
  readonly afterAppend?: AfterAppend;
  /** Wraps the object store that snapshots are written to and read from. */
  readonly snapshotObjects?: (os: ObjectStore) => ObjectStore;
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
  /** The gRPC/Flight port when the API server runs. */
  readonly grpcPort: number | undefined;
  /** The query engine behind the API (undefined without --grpc-port). */
  readonly query: ProxistQueryEngine | undefined;
  stop(): Promise<void>;
}

export async function startNode(o: NodeOptions): Promise<ProxistNode> {
  const log = o.log ?? ((line: string) => console.log(line));
  const nodeId = o.nodeId ?? `node-${process.pid}`;
  // noAsyncTraces: no Error object (stack capture) per request; at thousands of WAL appends per second it showed in profiles.
  const nc = await connect({ servers: o.natsUrl, name: `proxist ${nodeId}`, maxReconnectAttempts: -1, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const replicas = o.replicas ?? 1;
  const store = await MetadataStore.open(nc, replicas);
  const snapshots = await SnapshotStore.open(nc, replicas, o.seams?.snapshotObjects);
  let currentCatalog: Catalog = new Map();
  const clickhouse = o.clickhouseUrl === undefined ? undefined : new SinkClickhouse({ url: o.clickhouseUrl });
  const shards = new LocalShardHost({
    js,
    jsm,
    snapshots,
    snapshotIntervalMs: o.snapshotIntervalMs ?? 60_000,
    catalog: () => currentCatalog,
    log,
    ...(clickhouse === undefined ? {} : { sink: { ...o.sink, clickhouse } }),
  });
  const shardMode = o.shards ?? "all";
  const sourceStats: SourceStats = { fireAndForgetFailures: 0 };
  const local = new LocalIngress();
  // WAL record buffers: the gateway machine takes them, its wal actor gives them back once JetStream stored them.
  const recordPool = new BytePool(256);
  let catalogLoaded = false;
  const ensured = new Set<string>();

  // Streams must exist before the gateway may accept a tenant's batches.
  const ensureTenants = async (catalog: Catalog): Promise<void> => {
    for (const tenant of catalog.keys()) {
      if (ensured.has(tenant)) continue;
      // A NATS cluster still electing stream leaders answers with timeouts for a while: retry before giving up.
      for (let attempt = 1; ; attempt++) {
        try {
          await ensureWalStream(jsm, tenant, { replicas });
          await ensureWatermarkStream(jsm, tenant, replicas);
          break;
        } catch (e) {
          if (attempt >= 5) throw e;
          log(`node ${nodeId}: creating the streams of tenant ${tenant} failed (${(e as Error).message}); retrying`);
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
      ensured.add(tenant);
    }
  };

  const gateway = createActor(
    gatewayMachine.provide({
      actors: {
        source: natsIngestSource(nc, sourceStats, local),
        wal: jetstreamWal(js, recordPool, o.seams?.afterAppend === undefined ? {} : { afterAppend: o.seams.afterAppend }),
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
    { input: { maxInFlight: o.maxInFlight ?? 256, recordPool } },
  );
  gateway.start();

  const sinks = () => shards.all().flatMap((h) => (h.sink === undefined ? [] : [[h, h.sink.status()] as const]));
  const stats = (): Record<string, number> => {
    const s = gateway.getSnapshot().context.stats;
    return { ...s, fireAndForgetFailures: sourceStats.fireAndForgetFailures };
  };
  const http = await startHttp(o.httpPort ?? 0, {
    routes: {
      // Shard states and figures; ?digest=1 adds a digest of each hot set (tests compare it with a replay).
      // P, T_persisted, H, lag and the sink's state come with each shard (sink: null without ClickHouse).
      "/v1/shards": async (url) => ({
        status: 200,
        body: JSON.stringify(
          shards.all().map((h) => {
            const s = h.runtime.stats;
            const sink = h.sink?.status() ?? null;
            return {
              ...h.shard,
              state: h.runtime.state,
              ...s,
              sinkState: sink?.state ?? "none",
              lagMs: sink?.lagMs ?? 0,
              sink,
              ...(url.searchParams.get("digest") ? { digest: h.runtime.table.digest() } : {}),
            };
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
        px_shard_persisted_lsn: shards.all().map((h) => ({ help: "P: WAL LSN up to which the shard is in ClickHouse (as the hot set last evicted)", type: "gauge" as const, value: h.runtime.stats.persistedLsn, labels: shardLabels(h.shard) })),
        px_shard_t_persisted_micros: shards.all().map((h) => ({ help: "T_persisted: newest tick time covered by P, microseconds", type: "gauge" as const, value: h.runtime.stats.tPersistedMicros, labels: shardLabels(h.shard) })),
        px_shard_horizon_micros: shards.all().map((h) => ({ help: "H: every row with ts >= H is in RAM, microseconds", type: "gauge" as const, value: h.runtime.stats.horizonMicros, labels: shardLabels(h.shard) })),
        px_shard_lag_records: shards.all().map((h) => ({ help: "WAL records applied to RAM and not yet persisted", type: "gauge" as const, value: h.runtime.stats.lagRecords, labels: shardLabels(h.shard) })),
        px_shard_evicted_rows_total: shards.all().map((h) => ({ help: "Rows evicted from RAM after ClickHouse had them", type: "counter" as const, value: h.runtime.stats.evictedRows, labels: shardLabels(h.shard) })),
        px_sink_lag_ms: sinks().map(([h, k]) => ({ help: "Age of the oldest received record not yet persisted", type: "gauge" as const, value: k.lagMs, labels: shardLabels(h.shard) })),
        px_sink_pending_rows: sinks().map(([h, k]) => ({ help: "Rows received by the sink and not yet persisted", type: "gauge" as const, value: k.pendingRows, labels: shardLabels(h.shard) })),
        px_sink_inserted_rows_total: sinks().map(([h, k]) => ({ help: "Rows the sink inserted into ClickHouse", type: "counter" as const, value: k.insertedRows, labels: shardLabels(h.shard) })),
        px_sink_already_landed_rows_total: sinks().map(([h, k]) => ({ help: "Rows a retry found already in ClickHouse and did not send again", type: "counter" as const, value: k.alreadyLandedRows, labels: shardLabels(h.shard) })),
        px_sink_failures_total: sinks().map(([h, k]) => ({ help: "Failed sink attempts (recovery, flush)", type: "counter" as const, value: k.failures, labels: shardLabels(h.shard) })),
        px_sink_degraded: sinks().map(([h, k]) => ({ help: "1 while the sink keeps failing (it keeps retrying)", type: "gauge" as const, value: k.degraded ? 1 : 0, labels: shardLabels(h.shard) })),
      });
    },
  });
  // "assigned": the node agent starts and stops shards as the leader assigns them; every node contends for the lead.
  let control: ControlPlane | undefined;
  if (shardMode === "assigned") {
    control = await startNodeControlPlane(nc, {
      nodeId,
      host: shards,
      catalog: () => currentCatalog,
      metadata: store,
      replicas,
      apiPort: o.grpcPort || http.port,
      log,
      ...(o.control === undefined ? {} : { timings: o.control }),
    });
  }
  // gRPC + Arrow Flight: queries over this node's shards (stitched with ClickHouse when present), ingest through the gateway.
  const api =
    o.grpcPort === undefined
      ? undefined
      : await startNodeApi({
          nc,
          node: { nodeId, nc, ingest: (r) => local.submit(r), catalog: () => gateway.getSnapshot().context.catalog, state: () => String(gateway.getSnapshot().value) },
          catalog: () => currentCatalog,
          shards,
          clickhouse: clickhouse?.client,
          grpcPort: o.grpcPort,
          replicas,
          log,
        });
  log(`node ${nodeId}: up (nats ${String(o.natsUrl)}, http :${http.port}${api ? `, grpc :${api.server.port}` : ""})`);
  log(
    clickhouse === undefined
      ? `node ${nodeId}: no ClickHouse configured (--clickhouse URL or PX_CLICKHOUSE_URL): shards run without sinks; ticks stay in the WAL and RAM, nothing is evicted`
      : `node ${nodeId}: sinks write to ClickHouse at ${clickhouse.url}`,
  );

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
    grpcPort: api?.server.port,
    query: api?.engine,
    stop: async () => {
      // First the control plane: its shards stop, the heartbeat goes, the lease is released.
      await control?.stop().catch((e: unknown) => log(`node ${nodeId}: control plane stop failed: ${(e as Error).message}`));
      await api?.stop().catch(() => {});
      gateway.stop();
      await shards.stopAll();
      clickhouse?.close();
      await new Promise<void>((resolve) => http.server.close(() => resolve()));
      await nc.drain().catch(() => {});
    },
  };
}
