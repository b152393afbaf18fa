// Query metrics around the engine, without touching it: the cold source and the
// cluster parts are wrapped to time each ClickHouse read and each part on
// another node, and the API's engine is wrapped to time each whole query. A
// query's tiers (did it read ClickHouse, did it fan out) travel in an
// AsyncLocalStorage scope, so concurrent queries do not mix.
import { AsyncLocalStorage } from "node:async_hooks";
import type { RecordBatch, Schema } from "apache-arrow";
import { QUERY_OPS } from "../../protocols/query.js";
import type { QueryEngine } from "../api/index.js";
import type { ClusterParts, ColdSource } from "../query/index.js";
import type { Meter, QueryTier } from "./meter.js";

/** What one query touched so far. */
interface QueryScope {
  readonly tenant: string;
  cold: boolean;
  fanout: boolean;
}

const scope = new AsyncLocalStorage<QueryScope>();

async function timed<T>(meter: Meter, tier: QueryTier, tenantOf: string | undefined, f: () => Promise<T>): Promise<T> {
  const s = scope.getStore();
  const tenant = tenantOf ?? s?.tenant ?? "unknown";
  if (s !== undefined) s[tier === "cold" ? "cold" : "fanout"] = true;
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    meter.queryTier(tenant, tier, (performance.now() - t0) / 1000);
  }
}

export function meteredCold(cold: ColdSource, meter: Meter): ColdSource {
  const sql = cold.sql?.bind(cold);
  return {
    range: (slice, t0, t1, signal) => timed(meter, "cold", slice.tenant, () => cold.range(slice, t0, t1, signal)),
    edge: (slice, side, ts, k, signal) => timed(meter, "cold", slice.tenant, () => cold.edge(slice, side, ts, k, signal)),
    // Pushed-down SQL names its tenant's database only inside the text: labelled by the query's scope instead.
    ...(sql === undefined ? {} : { sql: (text: string, signal?: AbortSignal) => timed(meter, "cold", undefined, () => sql(text, signal)) }),
  };
}

export function meteredParts(parts: ClusterParts, meter: Meter): ClusterParts {
  return {
    placement: (tenant, spec) => parts.placement(tenant, spec),
    run: (node, spec, req, signal) => timed(meter, "fanout", req.tenant, () => parts.run(node, spec, req, signal)),
  };
}

const opOf = (query: unknown): string => {
  const op = typeof query === "object" && query !== null ? (query as { op?: unknown }).op : undefined;
  if (op === undefined) return "range";
  return typeof op === "string" && (QUERY_OPS as readonly string[]).includes(op) ? op : "other";
};

const codeOf = (e: unknown): string => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[A-Z_]{1,40}$/.test(code) ? code : "INTERNAL";
};

/** The engine the API serves, timing each query from its first batch asked to its last read (or its failure). */
export function meteredEngine(engine: QueryEngine, meter: Meter): QueryEngine {
  return {
    schema: (tenant: string, query: unknown): Promise<Schema> => engine.schema(tenant, query),
    tableQuery: (table: string): unknown => engine.tableQuery(table),
    run: async function* (tenant: string, query: unknown, signal: AbortSignal): AsyncIterable<RecordBatch> {
      const s: QueryScope = { tenant, cold: false, fanout: false };
      const it = engine.run(tenant, query, signal)[Symbol.asyncIterator]();
      const t0 = performance.now();
      let ok = false;
      try {
        for (;;) {
          // Each step runs inside the query's scope: the cold and fan-out wrappers mark it.
          const r = await scope.run(s, () => it.next());
          if (r.done === true) break;
          yield r.value;
        }
        ok = true;
      } catch (e) {
        meter.queryFailed(tenant, codeOf(e));
        throw e;
      } finally {
        if (!ok) await it.return?.().catch(() => {});
        else meter.queryRan(tenant, opOf(query), s.fanout ? "fanout" : s.cold ? "cold" : "hot", (performance.now() - t0) / 1000);
      }
    },
  };
}
