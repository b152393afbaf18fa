// QueryEngine: validates a query (JSON or parsed), waits for read-after-write,
// loads the stitched series of every shard the query touches (hot + cold under
// the seam rule), runs the operator and returns Arrow record batches. Shaped
// like src/api's QueryEngine (schema / run / tableQuery) so the API can serve it.
import type { RecordBatch, Schema } from "apache-arrow";
import { QueryError } from "../../protocols/errors.js";
import { parseQuery, udfCalls, usesUdf } from "../../protocols/query.js";
import type { Aggregate, Query } from "../../protocols/query.js";
import { NO_QUOTAS } from "../../protocols/tablespec.js";
import type { TableSpec, TenantQuotas } from "../../protocols/tablespec.js";
import { QueryQuotas } from "../quota/index.js";
import type { QueryBudget } from "../quota/index.js";
import { loadSeries } from "./load.js";
import { GroupTable } from "./partials.js";
import type { Loaded } from "./load.js";
import type { LoadRequest } from "./plan.js";
import { asofOp, barAggregates, barsOp, byOp, fastByOp, lastByRows, bySymbolMap, fieldsOf, groupByOp, neededColumns, rangeOp, rollingOp, udfGroupTable, udfRangeOp, udfUses, windowJoinOp } from "./ops/index.js";
import type { UdfRunner, UdfSessions } from "./ops/index.js";
import { arrowSchema, toRecordBatches } from "./output.js";
import type { OutField, OutTable } from "./output.js";
import { lowerBound } from "./series.js";
import type { SymbolSeries } from "./series.js";
import type { ColdSource, HotShard, TableSource } from "./source.js";
import { fastRangeOp } from "./rangefast.js";
import { allLocal, coverageOf, fanGroup, fanLast, fanLoad, refuseIncomplete, shardNote } from "./coverage.js";
import type { PartRows } from "./lastrows.js";
import { groupPartials } from "./grouping.js";
import { localStatuses } from "./part.js";
import type { PartLimit } from "./part.js";
import type { BucketPlace, ClusterParts, Coverage, FanLoadContext } from "./coverage.js";

export interface QueryEngineOptions {
  readonly source: TableSource;
  /** ClickHouse (or another cold store); without it queries answer from RAM and say so in the metadata. */
  readonly cold?: ColdSource;
  /** How long a query naming minLsn waits for the shards to apply it (default 5 s). */
  readonly minLsnTimeoutMs?: number;
  /** Rows per record batch (default 1 Mi). */
  readonly maxBatchRows?: number;
  /** The cluster: shards this node does not host are asked of their owners (absent: this node's shards are the table). */
  readonly parts?: ClusterParts;
  /** Deadline of a query's parts on other nodes (default 30 s). */
  readonly partTimeoutMs?: number;
  /** Pauses before asking again for buckets an owner answered "missing" (a shard moving; default PART_RETRIES_MS; [] never asks again). */
  readonly partRetriesMs?: readonly number[];
  /** The tenant's quotas (concurrentQueries, queryMemoryBytes, resultRows); absent: none. */
  readonly quotas?: (tenant: string) => TenantQuotas;
  /** The tenants' user-defined functions (src/udf); absent: a query calling one is refused. */
  readonly udfs?: UdfSessions;
  /** Clock of the rate quotas (udfQueriesPerSecond); default Date.now (tests pass their own). */
  readonly nowMs?: () => number;
}

export interface QueryResult {
  readonly fields: readonly OutField[];
  readonly table: OutTable;
  /** Caveats (e.g. hot-only because there is no cold store). */
  readonly notes: readonly string[];
  readonly coldRows: number;
}

const TABLE_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** A query's answer as the operators produced it: typed columns, no Arrow (answers that are not Arrow, e.g. the HTTP API's JSON). */
export interface QueryColumns {
  readonly fields: readonly OutField[];
  /** At least one table; their rows in order are the answer. */
  readonly tables: readonly OutTable[];
  /** Caveats: the answer is complete when there are none (run() puts them in the schema metadata). */
  readonly notes: readonly string[];
}

/** Runs whose results are being read now, and runs that ended because their signal aborted (client cancel, deadline). */
export interface QueryRunStats {
  readonly running: number;
  readonly aborted: number;
}

export class ProxistQueryEngine {
  private running = 0;
  private aborted = 0;
  private partSeq = 0;
  /** Part ids are unique per engine instance (qcancel names the part). */
  private readonly idPrefix = Math.random().toString(36).slice(2, 10);

  /** Per-tenant query quotas: concurrency counters and each query's budget. */
  readonly quotas: QueryQuotas;

  constructor(readonly options: QueryEngineOptions) {
    this.quotas = new QueryQuotas(options.quotas ?? (() => NO_QUOTAS), options.nowMs);
  }

  stats(): QueryRunStats {
    return { running: this.running, aborted: this.aborted };
  }

  /** The JSON query reading a whole table. */
  tableQuery(table: string): unknown {
    return { op: "range", table };
  }

  /** Validates `query` for `tenant` and returns its result schema without reading data. */
  schema(tenant: string, query: unknown): Promise<Schema> {
    try {
      const q = this.parse(tenant, query);
      const { left, right } = this.specs(tenant, q);
      return Promise.resolve(arrowSchema(fieldsOf(q, left, right)));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** Runs `query` and yields its record batches (the schema metadata carries notes). */
  async *run(tenant: string, query: unknown, signal: AbortSignal): AsyncIterable<RecordBatch> {
    const maxRows = this.options.maxBatchRows ?? 1 << 20;
    // Refused before it counts as running: a tenant at its concurrentQueries gets RESOURCE_EXHAUSTED at once.
    const budget = this.quotas.begin(tenant);
    this.running++;
    try {
      const r = await this.compute(tenant, query, signal, maxRows, budget);
      const meta = new Map<string, string>([["proxist.complete", r.notes.length === 0 ? "true" : "false"]]);
      if (r.notes.length > 0) meta.set("proxist.notes", r.notes.join("\n"));
      const schema = arrowSchema(r.fields, meta);
      for (const t of r.tables) {
        for (const b of toRecordBatches(t, schema, maxRows)) {
          if (signal.aborted) throw signal.reason;
          yield b;
        }
      }
    } finally {
      // The consumer left (return()) or the run failed: either way it holds nothing now.
      budget.release();
      this.running--;
      if (signal.aborted) this.aborted++;
    }
  }

  /**
   * Runs `query` like run() (same validation first, then the same quota and
   * accounting) and answers its typed columns instead of record batches.
   */
  async runColumns(tenant: string, query: unknown, signal: AbortSignal): Promise<QueryColumns> {
    // Checked before the quota, as schema() then run() would: a bad query is refused as such, even at the concurrency limit.
    const q = this.parse(tenant, query);
    const { left, right } = this.specs(tenant, q);
    fieldsOf(q, left, right);
    const budget = this.quotas.begin(tenant);
    this.running++;
    try {
      const r = await this.compute(tenant, query, signal, this.options.maxBatchRows ?? 1 << 20, budget, q);
      if (signal.aborted) throw signal.reason;
      return { fields: r.fields, tables: r.tables, notes: r.notes };
    } finally {
      budget.release();
      this.running--;
      if (signal.aborted) this.aborted++;
    }
  }

  /** Parses the JSON form, or passes a parsed Query through; resolves the tenant's table names. */
  parse(tenant: string, query: unknown): Query {
    return parseTenantQuery(tenant, query);
  }

  private spec(tenant: string, table: string): TableSpec {
    const spec = this.options.source.spec(tenant, table);
    if (spec === undefined) {
      const known = [...this.options.source.tables(tenant)].sort().join(", ") || "none";
      throw new QueryError("NOT_FOUND", `tenant ${tenant} has no table ${table} (its tables: ${known})`);
    }
    return spec;
  }

  private specs(tenant: string, q: Query): { left: TableSpec; right: TableSpec | undefined } {
    const left = this.spec(tenant, q.table);
    const right = q.op === "asof" || q.op === "windowJoin" ? this.spec(tenant, q.right.table) : undefined;
    return { left, right };
  }

  /** Runs a query and returns its result as columns (tests and benchmarks use this directly). */
  async execute(tenant: string, query: unknown, signal?: AbortSignal): Promise<QueryResult> {
    const budget = this.quotas.begin(tenant);
    try {
      const { tables, ...r } = await this.compute(tenant, query, signal, Infinity, budget);
      return { ...r, table: tables[0]! };
    } finally {
      budget.release();
    }
  }

  /** The result as tables of at most `chunkRows` rows where an operator can produce it so (the range fast path); at least one table. */
  private async compute(tenant: string, query: unknown, signal: AbortSignal | undefined, chunkRows: number, budget: QueryBudget, parsed?: Query): Promise<Omit<QueryResult, "table"> & { tables: readonly OutTable[] }> {
    const q = parsed ?? this.parse(tenant, query);
    const { left, right } = this.specs(tenant, q);
    const fields = fieldsOf(q, left, right);
    const cols = neededColumns(q, left, right);
    const complete = q.consistency === "complete";
    const covs = new Map<string, Coverage>();
    for (const spec of right === undefined ? [left] : [left, right]) {
      const places = this.options.parts === undefined ? undefined : await this.placement(tenant, spec);
      const c = coverageOf(spec, places, this.options.source.shards(tenant, spec.name));
      if (complete) refuseIncomplete(spec.name, c.missing.map((m) => ({ ...m, kind: "missing" as const })));
      covs.set(spec.name, c);
    }
    const minLsnOf = (table: string): number | undefined => {
      const per = q.minLsnByTable?.[table] ?? q.minLsnByTable?.[`${tenant}.${table}`];
      return per === undefined ? q.minLsn : q.minLsn === undefined ? per : Math.max(per, q.minLsn);
    };
    for (const c of covs.values()) {
      const lsn = minLsnOf(c.spec.name);
      if (lsn !== undefined) await this.waitLsn(c.local, lsn);
    }
    const deadlineAt = Date.now() + (this.options.partTimeoutMs ?? 30_000);
    const fan: Fan = (spec, f) => {
      const ctx = { tenant, parts: this.options.parts, cold: this.options.cold, signal, deadlineAt, minLsn: minLsnOf(spec.name), complete, newId: () => `${this.idPrefix}.${++this.partSeq}`, ...(this.options.partRetriesMs === undefined ? {} : { partRetriesMs: this.options.partRetriesMs }) };
      return f(ctx, covs.get(spec.name)!);
    };
    const load: Load = (spec, wanted, t0, t1, behind, ahead, { limit, shared = false } = {}) => {
      // Hot rows may be views when the op uses them as soon as this load resolves, with no other load in flight.
      const cov = covs.get(spec.name)!;
      if (this.options.parts === undefined) {
        // A cold read past what the memory quota leaves could never be answered: read one row more than fits, then refuse.
        const rowBytes = 24 + 8 * wanted.filter(Boolean).length;
        const left = budget.leftBytes;
        const req: LoadRequest = { tenant, spec, shards: cov.local, symbols: q.symbols, t0, t1, behind, ahead, wanted, views: !shared, ...(Number.isFinite(left) ? { maxColdRows: Math.floor(left / rowBytes) } : {}) };
        return loadSeries(req, this.options.cold, signal);
      }
      return fan(spec, (ctx) => fanLoad(ctx, cov, { symbols: q.symbols, t0, t1, behind, ahead, wanted, views: !shared }, limit));
    };
    const notes: string[] = [];
    let coldRows = 0;
    if (this.options.parts === undefined) {
      // One node holding every shard: still say when one of them is not live and caught up.
      for (const c of covs.values()) {
        const bad = (await localStatuses(c.local)).filter((st) => st.kind !== "live");
        if (complete) refuseIncomplete(c.spec.name, bad);
        notes.push(...bad.map((st) => shardNote(c.spec.name, st)));
      }
    }
    // Rows loaded are held until the result is built: charged to the query's memory budget.
    const charge = (sizes: Iterable<{ readonly n: number; readonly values: readonly unknown[] }>): void => {
      let rows = 0;
      let bytes = 0;
      for (const { n, values } of sizes) {
        rows += n;
        bytes += n * (24 + 8 * values.filter((v) => v !== undefined).length);
      }
      budget.hold(bytes, `loading ${rows} rows`);
    };
    const use: Use = (l, flat) => {
      charge(l.series);
      if (flat !== undefined) charge(flat.map((f) => ({ n: f.ts.length, values: f.values })));
      notes.push(...l.notes);
      coldRows += l.coldRows;
      return l.series;
    };
    const leftCov = covs.get(left.name)!;
    // The local fast paths read hot shards directly: only when the whole table is here and its status needs no probe.
    const direct = this.options.parts === undefined && allLocal(leftCov) ? leftCov.local : undefined;
    const admit = (rows: number, rowBytes: number): void => {
      budget.resultRows(rows);
      budget.hold(rows * rowBytes, `its result of ${rows} rows`);
    };
    const fast = q.op === "range" && direct !== undefined && !usesUdf(q) ? fastRangeOp(q, left, direct, chunkRows, admit) : undefined;
    if (fast !== undefined) return { fields, tables: fast, notes, coldRows };
    const udf = await this.udfSession(tenant, q);
    let table: OutTable;
    try {
      table = await this.runOp(tenant, q, left, right, cols, load, use, signal, direct, fan, udf);
    } finally {
      udf?.close();
    }
    admit(table.rows, 8 * table.columns.length);
    return { fields, tables: [table], notes, coldRows };
  }

  private async runOp(
    tenant: string,
    q: Query,
    left: TableSpec,
    right: TableSpec | undefined,
    cols: { left: boolean[]; right: boolean[] },
    load: Load,
    use: Use,
    signal: AbortSignal | undefined,
    direct: readonly HotShard[] | undefined,
    fan: Fan,
    udf: UdfRunner | undefined,
  ): Promise<OutTable> {
    if (udf !== undefined && (q.op === "groupBy" || q.op === "bars")) {
      // User-defined aggregates fold rows (a user's state cannot be pushed down to ClickHouse as partials).
      const s = use(await load(left, cols.left, q.t0, q.t1, 0, 0));
      const t = udfGroupTable(q.op === "bars" ? barAggregates(q) : q.aggregates, left, s, q.bucketMicros, q.op === "bars" || q.bySymbol, udf);
      return q.op === "bars" ? barsOp(q, left, t, q.symbols) : groupByOp(q, left, t);
    }
    switch (q.op) {
      case "range": {
        // Per-part limit pushed down: no part needs to send more than the merged answer keeps.
        const limit = q.limit === undefined ? undefined : { n: q.limit, sort: q.sort, desc: q.order === "desc" };
        const s = use(await load(left, cols.left, q.t0, q.t1, 0, 0, { limit }));
        return udf === undefined ? rangeOp(q, left, s) : udfRangeOp(q, left, s, udf);
      }
      case "lastBy":
      case "firstBy": {
        const fast = direct === undefined ? undefined : fastByOp(q, left, direct);
        if (fast !== undefined) return fast;
        if (q.op === "firstBy") {
          const s = use(await load(left, cols.left, q.t0, q.t0, 0, 1));
          return byOp(q, left, s);
        }
        // The last row before t1: an empty range at t1 with one row of look-behind.
        if (this.options.parts !== undefined) {
          // Fan-out: flat rows from this node's buckets and the parts (no per-symbol series), when all came so.
          const r = await fan(left, (ctx, cov) => fanLast(ctx, cov, { symbols: q.symbols, t0: q.t1, t1: q.t1, behind: 1, ahead: 0, wanted: cols.left }));
          if (r.rows === undefined) return byOp(q, left, use(r));
          use({ series: [], notes: r.notes, coldRows: r.coldRows }, r.rows);
          return lastByRows(q, left, r.rows);
        }
        const s = use(await load(left, cols.left, q.t1, q.t1, 1, 0));
        return byOp(q, left, s);
      }
      case "asof": {
        const back = q.direction !== "forward" ? 1 : 0;
        const fwd = q.direction !== "backward" ? 1 : 0;
        const [l, r] = await Promise.all([load(left, cols.left, q.t0, q.t1, 0, 0, { shared: true }), load(right!, cols.right, q.t0, q.t1, back, fwd, { shared: true })]);
        return asofOp(q, left, right!, use(l), bySymbolMap(use(r)));
      }
      case "windowJoin": {
        const [l, r] = await Promise.all([
          load(left, cols.left, q.t0, q.t1, 0, 0, { shared: true }),
          load(right!, cols.right, Math.max(0, q.t0 - q.beforeMicros), Math.max(q.t0, q.t1 + q.afterMicros), 0, 0, { shared: true }),
        ]);
        return windowJoinOp(q, left, right!, use(l), bySymbolMap(use(r)));
      }
      case "rolling": {
        if ("rows" in q.window) {
          const s = use(await load(left, cols.left, q.t0, q.t1, q.window.rows - 1, 0));
          return rollingOp(q, left, s, udf);
        }
        const from = Math.max(0, q.t0 - q.window.micros + 1);
        const s = use(await load(left, cols.left, from, q.t1, 0, 0)).map((x) => rebound(x, q.t0));
        return rollingOp(q, left, s, udf);
      }
      case "bars": {
        const t = await this.partials(tenant, q, left, cols.left, barAggregates(q), q.bucketMicros, true, use, fan, signal, direct);
        return barsOp(q, left, t, q.symbols);
      }
      case "groupBy": {
        const t = await this.partials(tenant, q, left, cols.left, q.aggregates, q.bucketMicros, q.bySymbol, use, fan, signal, direct);
        return groupByOp(q, left, t);
      }
    }
  }

  /**
   * Group partials over [t0, t1): hot rows in RAM (synchronously, so P/H and the
   * rows are one consistent read) and, below the horizon, one pushed-down GROUP BY
   * over every shard when the cold store takes SQL; otherwise cold rows are fetched.
   */
  private async partials(
    tenant: string,
    q: Query,
    spec: TableSpec,
    wanted: boolean[],
    aggs: readonly Aggregate[],
    bucket: number | undefined,
    bySymbol: boolean,
    use: Use,
    fan: Fan,
    signal: AbortSignal | undefined,
    direct: readonly HotShard[] | undefined,
  ): Promise<GroupTable> {
    const t = new GroupTable(aggs);
    const g = { aggs, bucketMicros: bucket, bySymbol };
    const range = { symbols: q.symbols, t0: q.t0, t1: q.t1, behind: 0, ahead: 0, wanted };
    if (direct !== undefined) {
      const r = await groupPartials(t, { ...range, tenant, spec, shards: direct }, g, this.options.cold, signal);
      use({ series: [], ...r });
      return t;
    }
    // Across nodes: each owner computes the partials of its shards, the coordinator combines them.
    use({ series: [], ...(await fan(spec, (ctx, cov) => fanGroup(ctx, cov, range, g, t))) });
    return t;
  }

  /** The query's user-defined function session (undefined when it calls none); refused when this engine runs none. */
  private async udfSession(tenant: string, q: Query): Promise<(UdfRunner & { close(): void }) | undefined> {
    const calls = udfCalls(q);
    if (calls.length === 0) return undefined;
    if (this.options.udfs === undefined) throw new QueryError("FAILED_PRECONDITION", `query calls function ${calls[0]!.udf!.name}, but this query engine runs no user-defined functions; query a node (it runs them) or remove the "udf" entries`);
    // udfQueriesPerSecond: counted once per query, on the node that coordinates it.
    this.quotas.admitUdf(tenant);
    return this.options.udfs.session(tenant, udfUses(q, calls));
  }

  /** Where the table's buckets live; an unreadable assignment table is UNAVAILABLE (retryable), not a bug. */
  private async placement(tenant: string, spec: TableSpec): Promise<readonly BucketPlace[]> {
    try {
      return await this.options.parts!.placement(tenant, spec);
    } catch (e) {
      throw new QueryError("UNAVAILABLE", `cannot read where the shards of table ${spec.name} live (px_assign): ${(e as Error).message}; retry`, { cause: e });
    }
  }

  private async waitLsn(shards: readonly HotShard[], lsn: number): Promise<void> {
    const timeout = this.options.minLsnTimeoutMs ?? 5_000;
    const waits = shards.map((s) => s.waitForLsn?.(lsn, timeout) ?? Promise.resolve());
    try {
      await Promise.all(waits);
    } catch (e) {
      throw new QueryError("DEADLINE_EXCEEDED", `the shards did not apply LSN ${lsn} within ${timeout} ms (${(e as Error).message}); retry, or query without minLsn`);
    }
  }
}

/** Runs `f` with the fan-out context and coverage of `spec` for the current query. */
type Fan = <T>(spec: TableSpec, f: (ctx: FanLoadContext, cov: Coverage) => Promise<T>) => Promise<T>;

/**
 * Loads [t0, t1) of a table plus `behind`/`ahead` rows per symbol. `limit`: the most rows a range keeps (pushed
 * down to the parts). `shared`: another load is in flight for the same op (a join), so hot rows must be copies.
 */
type Load = (spec: TableSpec, wanted: boolean[], t0: number, t1: number, behind: number, ahead: number, opts?: { readonly limit?: PartLimit | undefined; readonly shared?: boolean }) => Promise<Loaded>;

/** Takes a load's series (and a fan-out lastBy's flat rows) into the result: charges their memory, keeps their notes. */
type Use = (l: Loaded, flat?: readonly PartRows[]) => SymbolSeries[];

/** The series with lo moved to the first row with ts >= t0 (rows before it stay as window context). */
function rebound(s: SymbolSeries, t0: number): SymbolSeries {
  const lo = lowerBound(s.ts, t0, 0, s.n);
  return { ...s, lo, hi: Math.max(lo, s.hi) };
}

/** A query of `tenant` (JSON or parsed), validated, with its table names resolved (feeds parse their standing query with it too). */
export function parseTenantQuery(tenant: string, query: unknown): Query {
  const q = parseQuery(query);
  const t = (query as { tenant?: unknown }).tenant;
  if (t !== undefined && t !== tenant) throw new QueryError("PERMISSION_DENIED", `query names tenant ${String(t)}, but it runs for tenant ${tenant}; a query reaches only its own tenant's tables`);
  const resolve = (name: string): string => {
    const parts = name.split(".");
    if (parts.length === 2) {
      if (parts[0] !== tenant) throw new QueryError("PERMISSION_DENIED", `table ${name} belongs to tenant ${parts[0]}, not ${tenant}; a query reaches only its own tenant's tables`);
      parts.shift();
    }
    if (parts.length !== 1 || !TABLE_NAME.test(parts[0]!)) throw new QueryError("INVALID_ARGUMENT", `"${name}" is not a table name; name a table as \`trades\` (or \`${tenant}.trades\`)`);
    return parts[0]!;
  };
  const table = resolve(q.table);
  if (q.op === "asof" || q.op === "windowJoin") return { ...q, table, right: { ...q.right, table: resolve(q.right.table) } };
  return { ...q, table };
}
