// Cluster-wide ingest rate quotas (src/quota/share.ts) over core NATS: every
// `everyMs` this node publishes what its gateway admitted per second for each
// tenant with a rate quota (over the last second), and hands the gateway
// machine what the other nodes reported. Reports are advisory and
// fire-and-forget: a lost one costs at most a brief over- or under-grant.
import type { NatsConnection } from "@nats-io/transport-node";
import { QUOTA_RATES_SUBJECT } from "../../../protocols/subjects.js";
import type { GatewayEvent } from "../../../actors/gateway.js";
import type { Catalog } from "../../catalog.js";
import { tenantQuotas } from "../../catalog.js";
import { PeerReports, admittedSoFar, parseRateReport } from "../../quota/index.js";
import type { IngestQuotaState, RateReport } from "../../quota/index.js";

export interface QuotaShareOptions {
  readonly nodeId: string;
  readonly catalog: () => Catalog;
  /** The gateway machine's quota state (its admitted counters). */
  readonly state: () => IngestQuotaState;
  readonly send: (e: GatewayEvent) => void;
  readonly everyMs?: number;
  readonly now?: () => number;
}

const hasRateQuota = (catalog: Catalog, tenant: string): boolean => {
  const q = tenantQuotas(catalog, tenant);
  return q.ingestTicksPerSecond !== undefined || q.ingestBytesPerSecond !== undefined;
};

/** Starts the exchange; the returned function stops it. */
export function shareIngestQuotas(nc: NatsConnection, o: QuotaShareOptions): () => void {
  const every = o.everyMs ?? 500;
  const now = o.now ?? Date.now;
  const peers = new PeerReports(o.nodeId, 4 * every);
  const sub = nc.subscribe(QUOTA_RATES_SUBJECT, {
    callback: (err, m) => {
      if (err !== null) return;
      const r = parseRateReport(m.string());
      if (r !== undefined) peers.add(r, now());
    },
  });
  // Admitted counters a second back: rates over the last second, not the last tick.
  const history: { atMs: number; admitted: Map<string, { ticks: number; bytes: number }> }[] = [];
  const timer = setInterval(() => {
    const catalog = o.catalog();
    const at = now();
    const admitted = admittedSoFar(o.state());
    history.push({ atMs: at, admitted });
    while (history.length > 2 && at - history[1]!.atMs >= 1_000) history.shift();
    const from = history[0]!;
    const secs = Math.max(0.001, (at - from.atMs) / 1000);
    const tenants: Record<string, { ticks: number; bytes: number }> = {};
    for (const tenant of catalog.keys()) {
      if (!hasRateQuota(catalog, tenant)) continue;
      const a = admitted.get(tenant) ?? { ticks: 0, bytes: 0 };
      const b = from.atMs === at ? a : (from.admitted.get(tenant) ?? { ticks: 0, bytes: 0 });
      tenants[tenant] = { ticks: Math.max(0, a.ticks - b.ticks) / secs, bytes: Math.max(0, a.bytes - b.bytes) / secs };
    }
    if (Object.keys(tenants).length > 0) {
      const report: RateReport = { node: o.nodeId, tenants };
      try {
        nc.publish(QUOTA_RATES_SUBJECT, JSON.stringify(report));
      } catch {
        // A closed or reconnecting connection: the next tick reports again.
      }
    }
    o.send({ type: "peers", peers: peers.rates(at) });
  }, every);
  timer.unref();
  return () => {
    clearInterval(timer);
    sub.unsubscribe();
  };
}
