// A Proxist node: one process with a NATS connection, its one catalog, the
// gateway actor, the shard host (hot sets, and ClickHouse sinks when a ClickHouse
// is configured) and the HTTP endpoints. Started by `proxist node`/`proxist up`;
// stop() drains cleanly. Routes, metrics and stream setup live next door.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createActor } from "xstate";
import { gatewayMachine } from "../../actors/gateway.js";
import type { IngestRequest } from "../../actors/gateway.js";
import type { IngestReply } from "../../protocols/ingest.js";
import type { Catalog } from "../catalog.js";
import { MetadataStore, controlRequest, openCatalog, shardKey } from "../control/index.js";
import { MOVE_VERB } from "../../protocols/placement.js";
import type { MoveShardReply, MoveShardRequest } from "../../protocols/placement.js";
import type { ProxistQueryEngine } from "../query/index.js";
import type { QueryEngine } from "../api/index.js";
import { BytePool } from "../codec/pool.js";
import { SinkClickhouse } from "../sink/index.js";
import { SnapshotStore, openSnapshotBucket } from "../snapshot/store.js";
import type { ObjectStore } from "@nats-io/obj";
import { queryEngineOf, startNodeApi } from "./api.js";
import type { ApiTlsFiles } from "./api.js";
import { clusterRoute, consoleRoutes } from "./console/index.js";
import { httpApiRoutes } from "./httpapi/index.js";
import { natsClusterParts } from "./fanout.js";
import { servePartQueries } from "./qpart.js";
import { ClickhouseColdSource } from "../query/index.js";
import { startNodeControlPlane } from "./controlplane.js";
import { heartbeatGraceMs } from "./control/index.js";
import type { NodeControlOptions } from "./controlplane.js";
import { sweepFeedCheckpoints } from "./feed/checkpoints.js";
import { feedHost } from "./feed/host.js";
import { logConnectionEvents } from "./natsstatus.js";
import type { FeedHost } from "./feed/host.js";
import { historyOf } from "./feed/runtime.js";
import { feedRoutes, feedViews } from "./feed/routes.js";
import { catalogActor } from "./gateway/catalog.js";
import { LocalIngress, jetstreamWal, natsIngestSource } from "./gateway/io.js";
import { jetstreamDigestAt } from "./gateway/pairs.js";
import { reportUsage } from "./gateway/usage.js";
import { shareIngestQuotas } from "./gateway/quotashare.js";
import type { QueryQuotas } from "../quota/index.js";
import { startClusterHolds } from "./clusterholds.js";
import type { AfterAppend, LoseWalAck, SourceStats } from "./gateway/io.js";
import { ProducerMint } from "./gateway/mint.js";
import { shardRoutes, startHttp } from "./http.js";
import { httpAdminGate } from "./httpauth.js";
import { NodeMetrics, metricsEnabled } from "./metrics.js";
import type { WalStreamFigures } from "./metricsscrape.js";
import { createLogger, lineLog } from "./obs/index.js";
import { SlowQueries, slowQueryOptionsFromEnv } from "./slowlog.js";
import { BatchSpans } from "./gateway/spans.js";
import type { SlowQueryOptions } from "./slowlog.js";
import { LocalShardHost } from "./shard/host.js";
import type { HostSinkOptions } from "./shard/host.js";
import { catalogNotLoaded, nodeProblems, tenantStreams } from "./streams.js";
import { retryOnTimeout } from "./startup.js";
import { SubscriptionHolds } from "../feed/index.js";
import type { FeedPlan } from "../feed/index.js";
import { CompactionRuntime, compactionIntervalMs } from "./compaction.js";
import { snapshotNice } from "./shard/snapshotnice.js";
import { RemediationRuntime, remediationIntervalMs } from "./remediation.js";
import type { MoveSink } from "./remediation.js";
import type { CompactionHolds } from "./compaction.js";
import { serveOpsControl } from "./opsctl.js";
import { IngestStatusServer } from "./ingeststatus.js";
import { ensureEventsStream, readWalSkips } from "../wal/index.js";
import { walStream } from "../../protocols/subjects.js";
import type { ShardAddress } from "../../protocols/subjects.js";
import { NATS_CREDS_ENV, TLS_CA_ENV, explainNatsTlsError, natsCredsOptions, natsTlsOptions } from "../runtime/natsclient.js";
import { loadNatsAuth } from "../runtime/servers/natsauth.js";
import { credsIssuer } from "../runtime/natscreds.js";
import { ENV } from "../config/defaults.js";
import { resolve } from "node:path";
import { clickhouseDisplay, startStandaloneControl } from "./standalone.js";

export interface NodeOptions {
  /** One NATS URL, or the members of a cluster. */
  readonly natsUrl: string | string[];
  readonly nodeId?: string;
  /** The service `.creds` file (NATS runs locked); default $PX_NATS_CREDS; none on an open server. */
  readonly natsCreds?: string;
  /** CA certificate (PEM) of a NATS that speaks TLS; default $PX_TLS_CA; none: plaintext NATS. */
  readonly natsCa?: string;
  /**
   * The deployment's NATS auth directory (identity.json: the operator and account seeds); default $PX_AUTH_DIR.
   * With it, the gRPC admin service mints and revokes tenants' NATS credentials; without it those calls are refused.
   */
  readonly authDir?: string;
  /** The gRPC/Flight server's TLS certificate and key (PEM files); without them it listens in plaintext. */
  readonly grpcTls?: ApiTlsFiles;
  /** Interface of the gRPC/Flight server: 127.0.0.1 in plaintext, all interfaces with TLS, unless asked (PX_GRPC_HOST). */
  readonly grpcHost?: string;
  /** 0 picks a free port. */
  readonly httpPort?: number;
  /** Interface of /healthz, /readyz, /metrics: 127.0.0.1 by default; 0.0.0.0 in a container (PX_HTTP_HOST). */
  readonly httpHost?: string;
  /** HTTPS on the HTTP port with these PEM files (PX_HTTP_TLS=1 with PX_TLS_CERT/PX_TLS_KEY); omitted: plaintext. */
  readonly httpTls?: ApiTlsFiles;
  /** The built web console served at / (default dist/console of this checkout). */
  readonly consoleDir?: string;
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
  /** ClickHouse user and password (compose: the password comes from a secret file, PX_CLICKHOUSE_PASSWORD_FILE). */
  readonly clickhouseAuth?: { readonly user: string; readonly password: string };
  /** Sink tuning (batching limits, retries); `unsafeSkipLandedCheck` is for the negative-control test only. */
  readonly sink?: Omit<HostSinkOptions, "clickhouse">;
  readonly log?: (line: string) => void;
  /** Test-only negative control: no producer-pair check (a reused pair with other data is then stored or dropped per bucket). */
  readonly unsafeSkipProducerPairCheck?: boolean;
  /** Test-only negative control: batches without a producer pair get none (the gateway's retries may then duplicate them). */
  readonly unsafeNoMintedProducer?: boolean;
  /** Test only (negative control): no quota exchange between nodes, so rates, concurrentQueries, hotBytes and symbols hold per node, as before they were shared over the cluster (src/quota/share.ts). */
  readonly unsafeLocalQuotas?: boolean;
  /** Test-only negative control: no check of WAL record sizes against max_payload before appending. */
  readonly unsafeSkipRecordLimit?: boolean;
  /** Wrappers around the node's IO; crash tests inject faults through them (test/helpers/faultnode.ts). */
  readonly seams?: NodeSeams;
  /** HTTP ingest bodies stored at once before 429 (default 32). */
  readonly httpMaxConcurrentIngest?: number;
  /** Slow-query thresholds (default from PX_SLOW_QUERY_MS, PX_SLOW_QUERY_MS_TENANTS); the log needs a ClickHouse. */
  readonly slowQuery?: SlowQueryOptions;
  /** Byte limit of each tenant's WAL stream (default PX_WAL_MAX_BYTES or 2 GiB; src/config/limits.ts). */
  readonly walMaxBytes?: number;
  /**
   * WAL compaction of the shards this node hosts with a sink: between runs
   * (default PX_COMPACTION_INTERVAL_MS or 60 s; 0: only on `pxctl compact`),
   * and the holds of other readers (feeds) below which nothing is purged.
   */
  readonly compaction?: { readonly intervalMs?: number; readonly holds?: CompactionHolds };
  /** Lag remediation of the shards this node hosts with a sink: between lag readings (default PX_LAG_REMEDIATION_INTERVAL_MS or 5 s; 0: off). */
  readonly lagRemediation?: { readonly intervalMs?: number };
}

/** Where tests wrap the node's IO (the sink's flush IO is `sink.flushIo`). */
export interface NodeSeams {
  /** Runs after JetStream stored a batch, before the gateway acks it. */
  readonly afterAppend?: AfterAppend;
  /** Makes the gateway act as if the PubAck of a stored WAL record was lost. */
  readonly loseWalAck?: LoseWalAck;
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
  /** The node's one catalog, as the gateway, shards and API all see it. */
  catalog(): Catalog;
  readonly shards: LocalShardHost;
  /** The gRPC/Flight port when the API server runs. */
  readonly grpcPort: number | undefined;
  /** The query engine behind the API (undefined without --grpc-port). */
  readonly query: ProxistQueryEngine | undefined;
  /** The compaction workflow (undefined without ClickHouse: nothing is persisted, nothing is compacted). */
  readonly compaction: CompactionRuntime | undefined;
  /** Materialized feeds running here (standalone nodes; undefined with --shards assigned). */
  readonly feeds: FeedHost | undefined;
  /** The lag remediation workflow (undefined without ClickHouse, or with its interval 0). */
  readonly remediation: RemediationRuntime | undefined;
  /** Open subscriptions' WAL needs (the node's compaction holds them); an API started apart from the node registers here too. */
  readonly subscriptions: SubscriptionHolds;
  stop(): Promise<void>;
}

export async function startNode(o: NodeOptions): Promise<ProxistNode> {
  const nodeId = o.nodeId ?? `node-${process.pid}`;
  const log = o.log ?? lineLog(createLogger({ nodeId }));
  const natsCa = o.natsCa ?? process.env[TLS_CA_ENV];
  // Read before anything starts: a wrong directory stops the node at once, naming the fix.
  const authDir = o.authDir ?? process.env[ENV.authDir];
  const natsAuth = authDir === undefined || authDir === "" ? undefined : await loadNatsAuth(resolve(authDir));
  // The snapshot thread reads it when it starts; a bad value stops the node here, not its first snapshot.
  snapshotNice(process.env);
  // A TLS mismatch (no CA for a TLS server, a CA for a plaintext one) fails with the fix named.
  // noAsyncTraces: no Error object (stack capture) per request; at thousands of WAL appends per second it showed in profiles.
  // PX_NATS_ASYNC_TRACES=1 turns the traces back on, to see which call a NATS timeout came from.
  const noAsyncTraces = process.env.PX_NATS_ASYNC_TRACES !== "1";
  const nc = await connect({ servers: o.natsUrl, name: `proxist ${nodeId}`, maxReconnectAttempts: -1, noAsyncTraces, ...natsCredsOptions(o.natsCreds ?? process.env[NATS_CREDS_ENV]), ...natsTlsOptions(natsCa) }).catch((e: unknown) => {
    throw explainNatsTlsError(e, String(o.natsUrl), natsCa);
  });
  const startLog = (line: string): void => log(`node ${nodeId}: ${line}`);
  void logConnectionEvents(nc.status(), startLog).catch(() => {});
  // jetstreamManager asks the server for the account's JetStream info: a request that can time out like the steps below.
  const jsm = await retryOnTimeout("reaching JetStream", () => jetstreamManager(nc), startLog);
  const js = jetstream(nc);
  const replicas = o.replicas ?? 1;
  const store = await retryOnTimeout("opening px_config", () => MetadataStore.open(nc, replicas), startLog);
  const snapshots = await retryOnTimeout("opening the snapshot store", () => SnapshotStore.open(nc, replicas, o.seams?.snapshotObjects, { servers: o.natsUrl, name: `proxist ${nodeId}`, credsPath: o.natsCreds ?? process.env[NATS_CREDS_ENV], caPath: natsCa }, { log: startLog }), startLog);
  // The one catalog of this node: a tenant is served only once its streams exist.
  const catalog = await retryOnTimeout("loading the catalog", () => openCatalog(nc, replicas, { prepare: tenantStreams(jsm, { replicas, nodeId, log, ...(o.walMaxBytes === undefined ? {} : { walMaxBytes: o.walMaxBytes }) }), log: (line) => log(`node ${nodeId}: ${line}`) }), startLog);
  const clickhouse = o.clickhouseUrl === undefined ? undefined : new SinkClickhouse({ url: o.clickhouseUrl, ...o.clickhouseAuth });
  const metrics = new NodeMetrics(nodeId);
  // PX_METRICS=off: nothing observed per batch (the benchmarks' comparison); scrape-time figures still answer.
  const meter = metricsEnabled() ? metrics : undefined;
  const slow = clickhouse === undefined ? undefined : new SlowQueries(clickhouse.client, nodeId, o.slowQuery ?? slowQueryOptionsFromEnv(process.env), log);
  const shards = new LocalShardHost({
    meter,
    js,
    jsm,
    snapshots,
    snapshotIntervalMs: o.snapshotIntervalMs ?? 60_000,
    catalog: catalog.current,
    log,
    ...(clickhouse === undefined ? {} : { sink: { ...o.sink, clickhouse } }),
    skips: (s) => readWalSkips(nc, s, replicas),
  });
  // WAL compaction needs P, so only a node with sinks runs it; every node records operations events.
  await retryOnTimeout("creating the events stream", () => ensureEventsStream(jsm, replicas), startLog);
  const shardMode = o.shards ?? "all";
  // Materialized feeds of px_config: a standalone node runs them all; in a cluster each runs on the node the controller
  // gave shard 0 of its table, so feeds are placed, fail over and drain with that shard (issue 14).
  const feedShard = (p: FeedPlan): ShardAddress => ({ tenant: p.tenant, table: p.left.name, bucket: 0 });
  const feeds = feedHost({
    nc,
    tenants: () => store.tenants(),
    catalog: catalog.current,
    replicas,
    log: (line) => log(`node ${nodeId}: ${line}`),
    sweep: async (feeds) => sweepFeedCheckpoints(await openSnapshotBucket(nc, replicas), feeds),
    horizon: (tenant, table, bucket) => shards.all().find((h) => h.shard.tenant === tenant && h.shard.table === table && h.shard.bucket === bucket)?.runtime.table.horizonMicros,
    // A feed without a usable checkpoint on a compacted WAL reads the compacted records back from ClickHouse.
    ...(clickhouse === undefined ? {} : { history: historyOf(new ClickhouseColdSource(clickhouse.client)) }),
    ...(shardMode === "all"
      ? {}
      : {
          runsHere: (p: FeedPlan) => shards.get(feedShard(p)) !== undefined,
          elsewhere: (p: FeedPlan) => `shard ${shardKey(feedShard(p))}, which places it, left this node`,
        }),
  });
  if (shardMode !== "all") shards.onChange(() => void feeds.reconcile());
  // Compaction holds what the feeds running here have not folded yet and what open subscriptions here have not received,
  // what those of the other nodes need (px_holds), besides the holds given.
  const subscriptions = new SubscriptionHolds();
  const localHolds = (tenant: string, table: string): number[] => [...feeds.holds(tenant, table), ...subscriptions.holds(tenant, table)];
  const clusterHolds = await retryOnTimeout("opening the compaction holds bucket", () => startClusterHolds({ nc, nodeId, replicas, catalog: catalog.current, local: localHolds, log }), startLog);
  const holds = async (shard: ShardAddress): Promise<readonly number[]> => [...((await o.compaction?.holds?.(shard)) ?? []), ...localHolds(shard.tenant, shard.table), ...clusterHolds.holds(shard)];
  const compaction =
    clickhouse === undefined
      ? undefined
      : new CompactionRuntime({ nc, js, jsm, nodeId, shards, snapshots, replicas, log, unsafeIgnoreSink: process.env.PX_COMPACT_IGNORE_SINK === "1", intervalMs: o.compaction?.intervalMs ?? compactionIntervalMs(process.env), holds }).start();
  if (shardMode === "all") {
    catalog.subscribe((c) => void shards.ownAll(c).catch((e: unknown) => log(`node ${nodeId}: cannot start shards: ${(e as Error).message}`)));
  } else {
    // Assigned shards: the agent starts them; a changed table spec restarts them here.
    catalog.subscribe((c) => void shards.respec(c).catch((e: unknown) => log(`node ${nodeId}: cannot restart shards on the new spec: ${(e as Error).message}`)));
  }
  catalog.subscribe(() => void feeds.reconcile());

  const sourceStats: SourceStats = { fireAndForgetFailures: 0 };
  // One batch per (producer id, seq): see gateway/pairs.ts.
  const digestAt = o.unsafeSkipProducerPairCheck === true ? undefined : jetstreamDigestAt(js);
  const local = new LocalIngress();
  // Batches without a producer pair get one (gateway/mint.ts), so the gateway's own retries store them once.
  local.mint = o.unsafeNoMintedProducer === true ? undefined : new ProducerMint();
  // WAL record buffers: the gateway machine takes them, its wal actor gives them back once JetStream stored them.
  const recordPool = new BytePool(256);
  // Spans of traced batches (a no-op unless tracing was started: src/node/obs/tracing.ts).
  const spans = new BatchSpans();
  const gateway = createActor(
    gatewayMachine.provide({
      actors: {
        source: natsIngestSource(nc, sourceStats, local, undefined, meter, spans),
        wal: jetstreamWal(js, recordPool, { meter, spans, ...(o.seams?.afterAppend === undefined ? {} : { afterAppend: o.seams.afterAppend }), ...(o.seams?.loseWalAck === undefined ? {} : { loseAck: o.seams.loseWalAck }), ...(o.unsafeSkipRecordLimit === true ? { skipRecordLimit: true } : {}), ...(digestAt === undefined ? {} : { digestAt }) }),
        catalog: catalogActor(catalog),
      },
    }),
    { input: { maxInFlight: o.maxInFlight ?? 256, recordPool } },
  );
  gateway.start();
  // px.<t>.ingest._status: a publisher's highest stored seq, read from the WAL.
  const ingestStatus = new IngestStatusServer(nc, js, jsm, log).start();
  // The hotBytes and symbols quotas are measured on this node's shards (src/quota).
  const stopUsage = reportUsage((e) => gateway.send(e), catalog.current, shards);
  // Tenant quotas hold cluster-wide: the nodes tell each other what they admit and use. The query engine starts below.
  const queryQuotas: { current?: QueryQuotas } = {};
  const stopShare =
    o.unsafeLocalQuotas === true ? () => {} : shareIngestQuotas(nc, { nodeId, catalog: catalog.current, state: () => gateway.getSnapshot().context.quota, send: (e) => gateway.send(e), queries: () => queryQuotas.current });
  const state = (): string => String(gateway.getSnapshot().value);
  const walFull = (): string | undefined => gateway.getSnapshot().context.walFull;
  const stats = (): Record<string, number> => ({ ...gateway.getSnapshot().context.stats, fireAndForgetFailures: sourceStats.fireAndForgetFailures });
  const walStreams = (): Promise<WalStreamFigures[]> =>
    Promise.all(
      [...catalog.current().keys()].map(async (tenant) => {
        const i = await jsm.streams.info(walStream(tenant));
        return { tenant, bytes: i.state.bytes, records: i.state.messages, maxBytes: i.config.max_bytes, lastLsn: i.state.last_seq };
      }),
    );
  metrics.watch({
    ingest: stats,
    gatewayState: state,
    walFull,
    shards,
    walStreams,
  });
  metrics.watchFeeds(() => feedViews(feeds));

  const adminGate = httpAdminGate(nc, replicas);
  // POST /v1/query and /v1/ingest/<table>: the engine is set once the API below runs.
  const httpEngine: { current?: QueryEngine } = {};
  const apiNode = { nodeId, nc, ingest: (r: Omit<IngestRequest, "id" | "wantsReply">) => local.submit(r), catalog: catalog.current, state };
  const httpApi = httpApiRoutes({ nc, replicas, node: apiNode, shards, engine: () => httpEngine.current, hasCold: clickhouse !== undefined, log, ...(o.httpMaxConcurrentIngest === undefined ? {} : { maxConcurrentIngest: o.httpMaxConcurrentIngest }) });
  const localShardRoutes = shardRoutes(shards);
  const http = await startHttp(o.httpPort ?? 0, {
    // The web console at / (dist/console) and its cluster page's GET /v1/cluster.
    routes: { ...localShardRoutes, ...feedRoutes(feeds), ...httpApi.routes, "/v1/cluster": clusterRoute({ nc, nodeId, ingestStats: stats, walStreams, localShards: localShardRoutes["/v1/shards"]! }), ...consoleRoutes(o.consoleDir) },
    adminRoutes: new Set(["/v1/snapshot"]),
    authorize: adminGate.authorize,
    ready: () => catalog.loaded() && !nc.isClosed(),
    problems: () => [
      ...(catalog.loaded() ? [] : [catalogNotLoaded(catalog.prepareProblem())]),
      ...(nc.isClosed() ? ["NATS connection closed"] : []),
      ...nodeProblems(walFull(), shards),
    ],
    metrics: () => metrics.text(),
  }, o.httpHost, o.httpTls);
  // "assigned": the node agent starts and stops shards as the leader assigns them; every node contends for the lead.
  const control =
    shardMode === "assigned"
      ? await startNodeControlPlane(nc, {
          nodeId,
          host: shards,
          catalog,
          metadata: store,
          replicas,
          apiPort: o.grpcPort || http.port,
          clickhouseHealth: () => clickhouseDisplay(o.clickhouseUrl),
          log,
          ...(o.control === undefined ? {} : { timings: o.control }),
          // A long synchronous query must not look like a dead node: a thread of its own keeps the heartbeat (up to the grace).
          heartbeatCover: { servers: o.natsUrl, credsPath: o.natsCreds ?? process.env[NATS_CREDS_ENV], caPath: natsCa, graceMs: heartbeatGraceMs() },
        })
      : undefined;
  if (control !== undefined) metrics.watchControl(control);
  // Lag remediation needs sinks. Its move step asks the control plane (px.ctl.move) to place the shard, whose sink runs where
  // it is hosted, on a node owning fewer shards; the leader's reassignment fences this node's sink as a drain does.
  const move: MoveSink = async (h) => {
    if (control === undefined) return { skipped: `node ${nodeId} runs standalone (--shards all): there is no other node to move the sink to` };
    const body: MoveShardRequest = { table: `${h.shard.tenant}.${h.shard.table}`, bucket: h.shard.bucket, from: nodeId, by: "remediation" };
    try {
      return { to: (await controlRequest<MoveShardReply>(nc, MOVE_VERB, body, 5_000)).to };
    } catch (e) {
      return { skipped: (e as Error).message.replace(/^move: /, "") };
    }
  };
  const remediationMs = o.lagRemediation?.intervalMs ?? remediationIntervalMs(process.env);
  const remediation = clickhouse === undefined || remediationMs === 0 ? undefined : new RemediationRuntime({ js, nodeId, shards, intervalMs: remediationMs, move, log }).start();
  // pxctl compact / snapshot / drain: every node answers for itself.
  const ops = serveOpsControl({ nc, js, nodeId, shards, compaction, log, replicas, ...(control === undefined ? {} : { drain: () => control.drain() }) });
  // "all": no controller runs; the node answers pxctl (px.ctl.*) itself, as the one owner of every shard.
  const standalone =
    shardMode === "all"
      ? startStandaloneControl(nc, { nodeId, apiPort: o.grpcPort || http.port, clickhouse: clickhouseDisplay(o.clickhouseUrl), host: shards, metadata: store, log })
      : undefined;
  // Query parts for the shards this node hosts, asked by whichever node coordinates a query.
  const partServer = servePartQueries({ nc, nodeId, catalog: catalog.current, shards, cold: clickhouse === undefined ? undefined : new ClickhouseColdSource(clickhouse.client), log });
  // gRPC + Arrow Flight: queries over this node's shards (stitched with ClickHouse when present), ingest through the gateway.
  const api =
    o.grpcPort === undefined
      ? undefined
      : await startNodeApi({
          nc,
          node: apiNode,
          catalog: catalog.current,
          shards,
          clickhouse: clickhouse?.client,
          grpcPort: o.grpcPort,
          ...(o.grpcHost === undefined ? {} : { host: o.grpcHost }),
          ...(o.grpcTls === undefined ? {} : { tls: o.grpcTls }),
          replicas,
          log,
          meter,
          slow,
          subscriptions,
          ...(natsAuth === undefined ? {} : { creds: credsIssuer(nc, { files: natsAuth, servers: typeof o.natsUrl === "string" ? o.natsUrl.split(",") : o.natsUrl, tlsCa: natsCa }) }),
          // The control plane's own px_assign handle (assigned mode): one set of control stores per node.
          ...(control === undefined ? {} : { parts: natsClusterParts({ nc, nodeId, assignments: control.stores.assignments }) }),
        });
  // One engine per node (gRPC, Flight and HTTP share it): its query quotas are the ones the exchange reports.
  const engine = api?.engine ?? queryEngineOf(catalog.current, shards, clickhouse?.client);
  httpEngine.current = api?.served ?? engine;
  queryQuotas.current = engine.quotas;
  log(`node ${nodeId}: up (nats ${String(o.natsUrl)}, http :${http.port}${api ? `, grpc :${api.server.port}` : ""})`);
  // Said at start: a node with the auth directory holds the operator and account keys.
  if (natsAuth !== undefined) log(`node ${nodeId}: holds the NATS identity in ${natsAuth.dir} (PX_AUTH_DIR): ${api ? "gRPC admins mint and revoke their tenant's NATS credentials here" : "no gRPC API, so nothing uses it"}`);
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
    state,
    shards,
    ingest: (request) => local.submit(request),
    catalog: catalog.current,
    grpcPort: api?.server.port,
    query: api?.engine,
    compaction,
    feeds,
    remediation,
    subscriptions,
    stop: async () => {
      // Tables whose snapshot policy says so get a fresh snapshot first: the restart replays only what comes after.
      const snapped = await shards.snapshotOnShutdown();
      if (snapped > 0) log(`node ${nodeId}: ${snapped} snapshots written on shutdown`);
      ops.stop();
      compaction?.stop();
      await clusterHolds.stop();
      remediation?.stop();
      // First the control plane: its shards stop, the heartbeat goes, the lease is released.
      await control?.stop().catch((e: unknown) => log(`node ${nodeId}: control plane stop failed: ${(e as Error).message}`));
      await standalone?.stop().catch(() => {});
      await api?.stop().catch(() => {});
      await slow?.flush();
      partServer.stop();
      ingestStatus.stop();
      stopUsage();
      stopShare();
      gateway.stop();
      await catalog.stop();
      feeds.stop();
      await shards.stopAll();
      clickhouse?.close();
      await new Promise<void>((resolve) => http.server.close(() => resolve()));
      adminGate.stop();
      httpApi.stop();
      await nc.drain().catch(() => {});
    },
  };
}
