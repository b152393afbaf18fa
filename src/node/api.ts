// The node's client-facing API: the query engine over every shard of the
// cluster (this node's own, stitched with ClickHouse when it has one, and the
// others' through fan-out parts when shards are assigned) and the gRPC server
// that serves proxist.v1 and Arrow Flight behind tenant-scoped tokens.
import { readFileSync } from "node:fs";
import { ServerCredentials } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { startApiServer } from "../api/index.js";
import type { ApiLimits, ApiNode, ApiServer, CredsIssuer, QueryEngine } from "../api/index.js";
import { TokenVerifier } from "../auth/index.js";
import { tenantFunctions, tenantQuotas } from "../catalog.js";
import type { Catalog } from "../catalog.js";
import type { ClickhouseHttp } from "../clickhouse/index.js";
import { ClickhouseColdSource, ProxistQueryEngine, shardHostSource } from "../query/index.js";
import { historyOf } from "./feed/runtime.js";
import type { ClusterParts } from "../query/index.js";
import type { Meter } from "./meter.js";
import { retryOnTimeout } from "./startup.js";
import { UdfHost } from "../udf/index.js";
import { meteredCold, meteredEngine, meteredParts } from "./querymeter.js";
import type { SlowQueries } from "./slowlog.js";
import type { SubscriptionHolds } from "../feed/index.js";
import type { LocalShardHost } from "./shard/host.js";

export interface NodeApiOptions {
  readonly nc: NatsConnection;
  readonly node: ApiNode;
  readonly catalog: () => Catalog;
  readonly shards: LocalShardHost;
  readonly clickhouse: ClickhouseHttp | undefined;
  readonly grpcPort: number;
  readonly replicas: number;
  readonly log: (line: string) => void;
  /** TLS certificate and key (PEM files) of the gRPC/Flight server; absent: plaintext. */
  readonly tls?: ApiTlsFiles;
  /** Interface to listen on (default: loopback in plaintext, all with TLS), the API limits and the token cache TTL (defaults in src/api and src/auth). */
  readonly host?: string;
  readonly limits?: Partial<ApiLimits>;
  readonly tokenCacheTtlMs?: number;
  /** Shards assigned across nodes: queries fan out to the owners (absent: this node holds every shard). */
  readonly parts?: ClusterParts;
  /** Query latency per operator and tier (absent: PX_METRICS=off). */
  readonly meter?: Meter | undefined;
  /** Queries over their tenant's threshold go to px_system.query_log. */
  readonly slow?: SlowQueries | undefined;
  /** Open subscriptions register what they still need of the WAL here (the node's compaction holds it). */
  readonly subscriptions?: SubscriptionHolds;
  /** The deployment's NATS identity (PX_AUTH_DIR): the admin credentials calls mint and revoke with it; absent: they are refused. */
  readonly creds?: CredsIssuer;
}

export interface ApiTlsFiles {
  readonly cert: string;
  readonly key: string;
}

/** Server credentials from PEM files; a file that cannot be read is named with the fix. */
export function apiServerCredentials(tls: ApiTlsFiles): ServerCredentials {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`gRPC TLS ${what} ${path}: ${(e as Error).message}; run pxctl certs init (it writes server.crt and server.key) or fix PX_TLS_CERT / PX_TLS_KEY`, { cause: e });
    }
  };
  // No client certificate is asked for: callers authenticate with bearer tokens.
  return ServerCredentials.createSsl(null, [{ cert_chain: read("certificate", tls.cert), private_key: read("key", tls.key) }], false);
}

export interface NodeApi {
  readonly engine: ProxistQueryEngine;
  /** The engine as clients are served (metered and slow-logged when metrics or the slow-query log watch): the HTTP API runs on it too. */
  readonly served: QueryEngine;
  readonly server: ApiServer;
  stop(): Promise<void>;
}

export function queryEngineOf(catalog: () => Catalog, shards: LocalShardHost, clickhouse: ClickhouseHttp | undefined, parts?: ClusterParts, meter?: Meter, watched = meter !== undefined): ProxistQueryEngine {
  const cold = clickhouse === undefined ? undefined : new ClickhouseColdSource(clickhouse);
  return new ProxistQueryEngine({
    source: shardHostSource(catalog, shards),
    quotas: (tenant) => tenantQuotas(catalog(), tenant),
    // User-defined functions of px_config, each in its own sandbox (issue 17).
    udfs: new UdfHost({ functions: (tenant) => tenantFunctions(catalog(), tenant) }),
    // Wrapped when metrics or the slow-query log watch queries (they note cold reads and parts in the query's scope).
    ...(cold === undefined ? {} : { cold: watched ? meteredCold(cold, meter) : cold }),
    ...(parts === undefined ? {} : { parts: watched ? meteredParts(parts, meter) : parts }),
  });
}

export async function startNodeApi(o: NodeApiOptions): Promise<NodeApi> {
  const watched = o.meter !== undefined || o.slow !== undefined;
  const engine = queryEngineOf(o.catalog, o.shards, o.clickhouse, o.parts, o.meter, watched);
  const localBuckets = (tenant: string, table: string): number[] => o.shards.all().flatMap((h) => (h.shard.tenant === tenant && h.shard.table === table ? [h.shard.bucket] : []));
  const tokens = await retryOnTimeout("opening the token store", () => TokenVerifier.open(o.nc, { replicas: o.replicas, ...(o.tokenCacheTtlMs === undefined ? {} : { cacheTtlMs: o.tokenCacheTtlMs }) }), o.log);
  // Feeds report each shard's H with their messages when this node hosts the shard.
  const horizon = (tenant: string, table: string, bucket: number): number | undefined => o.shards.all().find((h) => h.shard.tenant === tenant && h.shard.table === table && h.shard.bucket === bucket)?.runtime.table.horizonMicros;
  const tuning = { ...(o.host === undefined ? {} : { host: o.host }), ...(o.limits === undefined ? {} : { limits: o.limits }) };
  const served = watched ? meteredEngine(engine, { meter: o.meter, slow: o.slow, localBuckets }) : engine;
  const credentials = o.tls === undefined ? {} : { credentials: apiServerCredentials(o.tls) };
  // A raw feed resuming below the WAL's start reads the compacted records back from ClickHouse.
  const history = o.clickhouse === undefined ? undefined : new ClickhouseColdSource(o.clickhouse);
  const walHistory = history === undefined ? {} : { walHistory: historyOf(history) };
  const server = await startApiServer({ node: o.node, tokens, queryEngine: served, port: o.grpcPort, log: o.log, ...tuning, ...credentials, horizon, ...walHistory, ...(o.subscriptions === undefined ? {} : { subscriptions: o.subscriptions }), ...(o.creds === undefined ? {} : { creds: o.creds }) });
  return {
    engine,
    served,
    server,
    stop: async () => {
      await server.stop(1000);
      tokens.close();
    },
  };
}
