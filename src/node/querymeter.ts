// Query metrics and the slow-query record around the engine, without touching
// it: the cold source and the cluster parts are wrapped to time each ClickHouse
// read and each part on another node (and note them in the query's plan), and
// the API's engine is wrapped to time each whole query. A query's scope (its
// tiers, cold reads, pushed-down SQL, parts) travels in an AsyncLocalStorage,
// so concurrent queries do not mix.
import { AsyncLocalStorage } from "node:async_hooks";
import type { RecordBatch, Schema } from "apache-arrow";
import { QUERY_OPS } from "../../protocols/query.js";
import type { QueryEngine } from "../api/index.js";
import type { ClusterParts, ColdSlice, ColdSource, QueryColumns } from "../query/index.js";
import type { Meter, QueryTier } from "./meter.js";
import type { SlowQueries } from "./slowlog.js";
import { SpanStatusCode, context, trace } from "@opentelemetry/api";
import type { Span } from "@opentelemetry/api";
import { tracer, tracingOn } from "./obs/index.js";

/** At most this many cold reads / SQL texts / parts are kept per query's plan. */
const PLAN_ITEMS = 64;

interface ColdRead {
  readonly kind: "range" | "edge";
  /** The shards one statement read, each under its own seam (a range reads every shard of the load at once). */
  readonly shards: readonly { readonly bucket: number; readonly persistedLsn: number; readonly horizonMicros: number }[];
  readonly rows: number;
  readonly ms: number;
}

interface PartRun {
  readonly node: string;
  readonly table: string;
  readonly buckets: readonly number[];
  readonly coldRows: number;
  readonly ms: number;
}

/** What one query touched so far. */
interface QueryScope {
  readonly tenant: string;
  cold: boolean;
  fanout: boolean;
  coldMs: number;
  fanoutMs: number;
  rowsCold: number;
  readonly coldReads: ColdRead[];
  readonly sql: string[];
  readonly parts: PartRun[];
}

const scope = new AsyncLocalStorage<QueryScope>();
const push = <T>(list: T[], x: T): void => void (list.length < PLAN_ITEMS ? list.push(x) : undefined);

async function timed<T>(meter: Meter | undefined, tier: QueryTier, tenantOf: string | undefined, f: () => Promise<T>, note?: (s: QueryScope, result: T, ms: number) => void, attrs: Record<string, string | number> = {}): Promise<T> {
  const s = scope.getStore();
  const tenant = tenantOf ?? s?.tenant ?? "unknown";
  const t0 = performance.now();
  // A child of the query's span (tracing on): one per cold read, one per part on another node.
  const span = tracingOn() ? tracer().startSpan(tier === "cold" ? "px.query.cold" : "px.query.part", { attributes: { "px.tenant": tenant, ...attrs } }) : undefined;
  // Active while `f` runs: a fan-out part's request carries it to the owner as its traceparent.
  const run = span === undefined ? f : () => context.with(trace.setSpan(context.active(), span), f);
  const result = await run().finally(() => {
    meter?.queryTier(tenant, tier, (performance.now() - t0) / 1000);
    span?.end();
  });
  if (s !== undefined) {
    const ms = performance.now() - t0;
    if (tier === "cold") {
      s.cold = true;
      s.coldMs += ms;
    } else {
      s.fanout = true;
      s.fanoutMs += ms;
    }
    note?.(s, result, ms);
  }
  return result;
}

export function meteredCold(cold: ColdSource, meter: Meter | undefined): ColdSource {
  const sql = cold.sql?.bind(cold);
  const read =
    (kind: "range" | "edge", slices: readonly ColdSlice[]) =>
    (s: QueryScope, rows: { readonly batch: { readonly rows: number } }, ms: number): void => {
      s.rowsCold += rows.batch.rows;
      push(s.coldReads, { kind, shards: slices.map((x) => ({ bucket: x.shard, persistedLsn: x.persistedLsn, horizonMicros: x.horizonMicros })), rows: rows.batch.rows, ms: round(ms) });
    };
  return {
    range: (slices, t0, t1, signal, maxRows) =>
      timed(meter, "cold", slices[0]?.tenant, () => cold.range(slices, t0, t1, signal, maxRows), read("range", slices), { "px.bucket": slices.map((x) => x.shard).join(","), "px.kind": "range" }),
    edge: (slices, side, ts, k, signal) => timed(meter, "cold", slices[0]?.tenant, () => cold.edge(slices, side, ts, k, signal), read("edge", slices), { "px.bucket": slices.map((x) => x.shard).join(","), "px.kind": "edge" }),
    // Pushed-down SQL names its tenant's database only inside the text: labelled by the query's scope instead.
    ...(sql === undefined ? {} : { sql: (text: string, signal?: AbortSignal) => timed(meter, "cold", undefined, () => sql(text, signal), (s) => push(s.sql, text)) }),
  };
}

export function meteredParts(parts: ClusterParts, meter: Meter | undefined): ClusterParts {
  return {
    placement: (tenant, spec, fresh) => parts.placement(tenant, spec, fresh),
    run: (node, spec, req, signal) => {
      return timed(meter, "fanout", req.tenant, () => parts.run(node, spec, req, signal), (s, reply, ms) => {
        s.rowsCold += reply.coldRows;
        push(s.parts, { node, table: req.table, buckets: req.buckets, coldRows: reply.coldRows, ms: round(ms) });
      }, { "px.node": node, "px.table": req.table, "px.buckets": req.buckets.join(",") });
    },
  };
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

const opOf = (query: unknown): string => {
  const op = typeof query === "object" && query !== null ? (query as { op?: unknown }).op : undefined;
  if (op === undefined) return "range";
  return typeof op === "string" && (QUERY_OPS as readonly string[]).includes(op) ? op : "other";
};

const codeOf = (e: unknown): string => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[A-Z_]{1,40}$/.test(code) ? code : "INTERNAL";
};

export interface QueryWatch {
  readonly meter?: Meter | undefined;
  readonly slow?: SlowQueries | undefined;
  /** The buckets of a table this node holds (the plan's hot part). */
  readonly localBuckets?: (tenant: string, table: string) => readonly number[];
}

const tableOf = (query: unknown): string => {
  const t = typeof query === "object" && query !== null ? (query as { table?: unknown }).table : undefined;
  return typeof t === "string" ? t.split(".").at(-1)! : "";
};

/** One query being watched: its scope (and span) around each step the engine takes, then its metrics and slow-query record. */
interface Watched {
  step<T>(f: () => Promise<T>): Promise<T>;
  /** The first answer (a batch, or the whole columns) arrived. */
  first(): void;
  failed(e: unknown): void;
  end(ok: boolean, rows: number, error: unknown): void;
}

function watchQuery(w: QueryWatch, tenant: string, query: unknown, caller: string | undefined): Watched {
  const s: QueryScope = { tenant, cold: false, fanout: false, coldMs: 0, fanoutMs: 0, rowsCold: 0, coldReads: [], sql: [], parts: [] };
  const t0 = performance.now();
  let firstMs: number | undefined;
  const span: Span | undefined = tracingOn() ? tracer().startSpan("px.query", { attributes: { "px.tenant": tenant, "px.op": opOf(query), "px.table": tableOf(query) } }) : undefined;
  const ctx = span === undefined ? undefined : trace.setSpan(context.active(), span);
  return {
    // Each step runs inside the query's scope (and span): the cold and fan-out wrappers note themselves in it.
    step: (f) => scope.run(s, () => (ctx === undefined ? f() : context.with(ctx, f))),
    first: () => void (firstMs ??= performance.now() - t0),
    failed: (e) => w.meter?.queryFailed(tenant, codeOf(e)),
    end: (ok, rows, error) => {
      const totalMs = performance.now() - t0;
      const tier: QueryTier = s.fanout ? "fanout" : s.cold ? "cold" : "hot";
      if (span !== undefined) {
        span.setAttributes({ "px.tier": tier, "px.result_rows": rows, "px.cold_rows": s.rowsCold });
        if (!ok) span.setStatus({ code: SpanStatusCode.ERROR, message: error === undefined ? "cancelled" : String((error as Error).message ?? error) });
        span.end();
      }
      if (ok) w.meter?.queryRan(tenant, opOf(query), tier, totalMs / 1000);
      if (w.slow !== undefined && totalMs >= w.slow.thresholdMs(tenant)) {
        const table = tableOf(query);
        w.slow.record({
          eventTime: Date.now() / 1000,
          tenant,
          durationMs: round(totalMs),
          query: safeJson(query),
          plan: JSON.stringify({
            table,
            tier,
            hotBuckets: w.localBuckets?.(tenant, table) ?? [],
            coldReads: s.coldReads,
            pushedDownSql: s.sql,
            fanout: s.parts,
          }),
          // The engine runs hot reads, the merge and the operator between the cold and fan-out awaits: what is left of the total.
          stages: JSON.stringify({
            firstBatchMs: round(firstMs ?? totalMs),
            coldMs: round(s.coldMs),
            fanoutMs: round(s.fanoutMs),
            hotAndOperatorMs: round(Math.max(0, totalMs - s.coldMs - s.fanoutMs)),
            totalMs: round(totalMs),
          }),
          rowsCold: s.rowsCold,
          resultRows: rows,
          caller: caller ?? "in-process",
          error: ok ? "" : error === undefined ? "cancelled" : String((error as Error).message ?? error),
        });
      }
    },
  };
}

/** The engine the API serves, timing each query from its first batch asked to its last read (or its failure). */
export function meteredEngine(engine: QueryEngine, w: QueryWatch): QueryEngine {
  const columns = engine.runColumns?.bind(engine);
  return {
    schema: (tenant: string, query: unknown): Promise<Schema> => engine.schema(tenant, query),
    tableQuery: (table: string): unknown => engine.tableQuery(table),
    run: async function* (tenant: string, query: unknown, signal: AbortSignal, caller?: string): AsyncIterable<RecordBatch> {
      const q = watchQuery(w, tenant, query, caller);
      const it = engine.run(tenant, query, signal, caller)[Symbol.asyncIterator]();
      let rows = 0;
      let error: unknown;
      let ok = false;
      try {
        for (;;) {
          const r = await q.step(() => it.next());
          q.first();
          if (r.done === true) break;
          rows += r.value.numRows;
          yield r.value;
        }
        ok = true;
      } catch (e) {
        error = e;
        q.failed(e);
        throw e;
      } finally {
        if (!ok) await it.return?.().catch(() => {});
        q.end(ok, rows, error);
      }
    },
    ...(columns === undefined
      ? {}
      : {
          runColumns: async (tenant: string, query: unknown, signal: AbortSignal, caller?: string): Promise<QueryColumns> => {
            const q = watchQuery(w, tenant, query, caller);
            let rows = 0;
            let error: unknown;
            let ok = false;
            try {
              const r = await q.step(() => columns(tenant, query, signal, caller));
              q.first();
              for (const t of r.tables) rows += t.rows;
              ok = true;
              return r;
            } catch (e) {
              error = e;
              q.failed(e);
              throw e;
            } finally {
              q.end(ok, rows, error);
            }
          },
        }),
  };
}

function safeJson(query: unknown): string {
  try {
    return JSON.stringify(query, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)) ?? "null";
  } catch {
    return String(query);
  }
}
