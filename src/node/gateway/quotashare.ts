// Cluster-wide tenant quotas (src/quota/share.ts, cluster.ts) over core NATS:
// every `everyMs` this node publishes, for each tenant with a quota that holds
// cluster-wide, what its gateway admitted per second (over the last second),
// the queries it coordinates now and the UDF queries it admitted per second, the hot bytes and symbols of each shard it
// hosts and the symbols it admitted that their shard has not reported yet; it
// hands the gateway machine and the query quotas what the other nodes
// reported. Reports are advisory and fire-and-forget: a lost one costs at
// most a brief over- or under-grant.
import type { NatsConnection } from "@nats-io/transport-node";
import { QUOTA_RATES_SUBJECT } from "../../../protocols/subjects.js";
import type { GatewayEvent } from "../../../actors/gateway.js";
import type { Catalog } from "../../catalog.js";
import { tenantQuotas } from "../../catalog.js";
import { PeerReports, admittedSoFar, parseRateReport, usageReport } from "../../quota/index.js";
import type { IngestQuotaState, QueryQuotas, RateReport, TenantReport } from "../../quota/index.js";

export interface QuotaShareOptions {
  readonly nodeId: string;
  readonly catalog: () => Catalog;
  /** The gateway machine's quota state (its admitted counters, shards and pending symbols). */
  readonly state: () => IngestQuotaState;
  readonly send: (e: GatewayEvent) => void;
  /** The query engine's quotas (undefined until the engine runs). */
  readonly queries?: () => QueryQuotas | undefined;
  readonly everyMs?: number;
  /** Clock of report ages (ms). */
  readonly now?: () => number;
  /** Clock of the gateway's ingest requests (their `atMs`: performance.now()), for pending symbols. */
  readonly ingestNow?: () => number;
}

/** New symbols a report names at most (`table\0symbol`, ~20 bytes each). */
const MAX_NEWS = 2_000;

const sharesCluster = (catalog: Catalog, tenant: string): boolean => {
  const q = tenantQuotas(catalog, tenant);
  return q.ingestTicksPerSecond !== undefined || q.ingestBytesPerSecond !== undefined || q.concurrentQueries !== undefined || q.hotBytes !== undefined || q.symbols !== undefined || q.udfQueriesPerSecond !== undefined;
};

/** Starts the exchange; the returned function stops it. */
export function shareIngestQuotas(nc: NatsConnection, o: QuotaShareOptions): () => void {
  const every = o.everyMs ?? 500;
  const now = o.now ?? Date.now;
  const ingestNow = o.ingestNow ?? (() => performance.now());
  const peers = new PeerReports(o.nodeId, 4 * every);
  const sub = nc.subscribe(QUOTA_RATES_SUBJECT, {
    callback: (err, m) => {
      if (err !== null) return;
      const r = parseRateReport(m.string());
      if (r !== undefined) peers.add(r, now());
    },
  });
  // Admitted counters a second back: rates over the last second, not the last tick.
  const history: { atMs: number; admitted: Map<string, { ticks: number; bytes: number }>; udf: Map<string, number> }[] = [];
  const timer = setInterval(() => {
    const catalog = o.catalog();
    const at = now();
    const queries = o.queries?.();
    // The peers' view first: the gateway takes its share of new symbols from it, and this report announces that share at once.
    const seen = peers.usage(at);
    queries?.setPeers(seen);
    o.send({ type: "peers", peers: peers.rates(at), usage: seen, atMs: ingestNow() });
    const state = o.state();
    const admitted = admittedSoFar(state);
    const udf = new Map([...catalog.keys()].map((t) => [t, queries?.udfAdmittedOf(t) ?? 0]));
    history.push({ atMs: at, admitted, udf });
    while (history.length > 2 && at - history[1]!.atMs >= 1_000) history.shift();
    const from = history[0]!;
    const secs = Math.max(0.001, (at - from.atMs) / 1000);
    const tenants: Record<string, TenantReport> = {};
    // Symbols named in one report, over all tenants: keeps it far below NATS's max_payload (a report too large is not sent at all).
    let newsLeft = MAX_NEWS;
    for (const tenant of catalog.keys()) {
      if (!sharesCluster(catalog, tenant)) continue;
      const a = admitted.get(tenant) ?? { ticks: 0, bytes: 0 };
      const b = from.atMs === at ? a : (from.admitted.get(tenant) ?? { ticks: 0, bytes: 0 });
      // ticks and bytes always: a node of the previous release parses only reports that have them.
      const usage = usageReport(state, tenantQuotas(catalog, tenant), tenant, ingestNow(), newsLeft);
      newsLeft -= usage.news?.length ?? 0;
      const udfNow = udf.get(tenant) ?? 0;
      const udfThen = from.atMs === at ? udfNow : (from.udf.get(tenant) ?? 0);
      tenants[tenant] = { ticks: Math.max(0, a.ticks - b.ticks) / secs, bytes: Math.max(0, a.bytes - b.bytes) / secs, queries: queries?.runningOf(tenant) ?? 0, udf: Math.max(0, udfNow - udfThen) / secs, ...usage };
    }
    if (Object.keys(tenants).length > 0) {
      const report: RateReport = { node: o.nodeId, tenants };
      try {
        nc.publish(QUOTA_RATES_SUBJECT, JSON.stringify(report));
      } catch {
        // A closed or reconnecting connection (or a report over max_payload): the next tick reports again.
      }
    }
  }, every);
  timer.unref();
  return () => {
    clearInterval(timer);
    sub.unsubscribe();
  };
}
