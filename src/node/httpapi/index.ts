// The node's HTTP API (issue 18): POST /v1/query (SQL or JSON; JSON, CSV or
// Arrow answers) and POST /v1/ingest/<table> (JSON lines, CSV, line protocol,
// Arrow), both behind API tokens; POST /v1/chart (a query's answer downsampled
// for a chart). Routes for src/node/http.ts.
import type { NatsConnection } from "@nats-io/transport-node";
import type { ApiNode, QueryEngine } from "../../api/index.js";
import type { Route } from "../http.js";
import type { LocalShardHost } from "../shard/host.js";
import { httpTokens } from "./auth.js";
import { chartRoute } from "./chart.js";
import { ingestRoute } from "./ingest.js";
import { queryRoute } from "./query.js";

export interface HttpApiOptions {
  readonly nc: NatsConnection;
  readonly replicas: number;
  readonly node: ApiNode;
  readonly shards: LocalShardHost;
  /** The query engine once it runs. */
  readonly engine: () => QueryEngine | undefined;
  readonly hasCold: boolean;
  readonly log: (line: string) => void;
  /** HTTP ingest bodies at once before 429 (default 32). */
  readonly maxConcurrentIngest?: number;
}

export function httpApiRoutes(o: HttpApiOptions): { routes: Record<string, Route>; stop(): void } {
  const tokens = httpTokens(o.nc, o.replicas);
  const query = queryRoute({ tokens, engine: o.engine, catalog: () => o.node.catalog(), shards: o.shards, hasCold: o.hasCold, log: o.log });
  return {
    routes: {
      "/v1/query": query,
      // The console's charts: the same query, downsampled on the server.
      "/v1/chart": chartRoute(query),
      "/v1/ingest/*": ingestRoute({ tokens, node: o.node, log: o.log, ...(o.maxConcurrentIngest === undefined ? {} : { maxConcurrent: o.maxConcurrentIngest }) }),
    },
    stop: () => tokens.stop(),
  };
}
