// GET /v1/cluster: the console's cluster page in one JSON answer. The cluster
// part is what `pxctl status` shows (the control plane's status verb over
// NATS: leader, nodes, shards by state with P and lag); this node adds its own
// hosted shards (the /v1/shards figures, H included), its ingest rate between
// two calls, and each tenant's WAL stream size. Read-only, open like /v1/shards.
import type { NatsConnection } from "@nats-io/transport-node";
import { controlRequest } from "../../control/index.js";
import type { StatusView } from "../../control/index.js";
import type { Route } from "../http.js";
import type { WalStreamFigures } from "../metricsscrape.js";

export interface ClusterRouteOptions {
  readonly nc: NatsConnection;
  readonly nodeId: string;
  /** The gateway's counters (acceptedRows, acceptedBatches, rejectedBatches, ...). */
  readonly ingestStats: () => Record<string, number>;
  readonly walStreams: () => Promise<readonly WalStreamFigures[]>;
  /** This node's /v1/shards route (its hosted shards with P, H, lag, sink). */
  readonly localShards: Route;
  readonly nowMs?: () => number;
}

export function clusterRoute(o: ClusterRouteOptions): Route {
  const now = o.nowMs ?? Date.now;
  // The rate is the difference to the previous call (the console polls every few seconds).
  let prev: { atMs: number; rows: number } | undefined;
  return async (url, method, req) => {
    if (method !== "GET") return { status: 405, body: JSON.stringify({ error: "use GET" }) };
    const atMs = now();
    const stats = o.ingestStats();
    const rows = stats.acceptedRows ?? 0;
    const ingestRowsPerS = prev === undefined || atMs <= prev.atMs ? null : Math.max(0, rows - prev.rows) / ((atMs - prev.atMs) / 1000);
    prev = { atMs, rows };
    const [status, wal, local] = await Promise.all([
      controlRequest<StatusView>(o.nc, "status", {}, 3_000).then(
        (s) => ({ status: s, statusError: null }),
        (e: unknown) => ({ status: null, statusError: (e as Error).message }),
      ),
      o.walStreams().catch(() => [] as const),
      o.localShards(new URL("/v1/shards", url), "GET", req).then((r) => JSON.parse(String(r.body)) as unknown[]),
    ]);
    return {
      status: 200,
      headers: { "cache-control": "no-store" },
      body: JSON.stringify({
        atMs,
        node: { id: o.nodeId, ingest: stats, ingestRowsPerS, wal, shards: local },
        ...status,
      }),
    };
  };
}
