// Table and tenant specs: the desired state users apply (`pxctl apply -f`),
// validated with effect Schema at the edge. Every other module works on the
// decoded, defaulted `TableSpec`/`TenantSpec` types.
import { Result, Schema } from "effect";
import { SYSTEM_SUBJECT_TOKENS } from "./subjects.js";
import { TaggedError } from "./tagged.js";

/** Value column types a table may declare. Timestamps and symbols are separate. */
export const VALUE_TYPES = ["float64", "float32", "int64", "int32", "bool"] as const;
export type ValueType = (typeof VALUE_TYPES)[number];

const Ident = (what: string, max: number) =>
  Schema.String.check(
    Schema.isPattern(new RegExp(`^[a-z][a-z0-9_]{0,${max - 1}}$`), {
      message: `${what} must be lowercase letters, digits or _ , start with a letter, at most ${max} characters`,
    }),
  );

const PositiveInt = (max: number) => Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: max }));

export const ColumnSpecSchema = Schema.Struct({
  name: Ident("column name", 63),
  type: Schema.Literals(VALUE_TYPES),
  /** NaN and +/-Inf are rejected unless this is true (float columns only). */
  allowNonFinite: Schema.optionalKey(Schema.Boolean),
  /** The value rows written before this column existed read as (required for a column added to an existing table). */
  default: Schema.optionalKey(Schema.Union([Schema.Number, Schema.Boolean])),
  /** The table version that added the column; set by `pxctl apply`, leave it out of spec files. */
  since: Schema.optionalKey(PositiveInt(1_000_000)),
});

export const RetentionSpecSchema = Schema.Struct({
  /** Rows younger than this (by tick time, relative to the newest tick) stay in RAM. */
  hotSeconds: Schema.optionalKey(PositiveInt(10 * 365 * 86_400)),
  /** Soft memory budget of one shard's hot set; older persisted rows go first. */
  maxHotBytes: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /**
   * WAL compaction's safety margin: this many LSNs below the lowest one any
   * reader still needs (P + 1, the newest verified snapshot's LSN + 1, feed
   * holds) stay in the WAL.
   */
  walKeep: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /**
   * The same margin as a time: records the WAL took within this many seconds
   * (by append time) stay too, whatever walKeep allows (e.g. 3600 keeps the
   * last hour for a re-read or an audit). Absent: records only.
   */
  walKeepSeconds: Schema.optionalKey(PositiveInt(365 * 86_400)),
});

export const SnapshotPolicySchema = Schema.Struct({
  /** Write a snapshot this often while live (seconds; 0 = never on a schedule); absent: the node's --snapshot-interval-ms. */
  intervalSeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 7 * 86_400 }))),
  /** Also write one once this many WAL records were applied since the last (a busy shard snapshots sooner). */
  records: Schema.optionalKey(PositiveInt(1_000_000_000)),
  /** Also write one once this many WAL payload bytes were applied since the last (bounds the replay after a crash by size). */
  walBytes: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /** Write one when the node stops gracefully (a restart then replays only what came after). */
  onShutdown: Schema.optionalKey(Schema.Boolean),
});

export const LagSloSchema = Schema.Struct({
  /** The sink's time lag (age of its oldest unpersisted record) stays under this many seconds. */
  seconds: Schema.optionalKey(PositiveInt(86_400)),
  /** The sink's LSN lag (WAL records received and not yet persisted) stays under this many records. */
  records: Schema.optionalKey(PositiveInt(1_000_000_000)),
  /** How long lag must stay above the SLO before the next remediation step (and below half of it before a step back). */
  dwellSeconds: Schema.optionalKey(PositiveInt(3_600)),
  /** false: the lag remediation workflow leaves this table alone (lag is still shown). */
  enabled: Schema.optionalKey(Schema.Boolean),
});

export const TimeBoundsSpecSchema = Schema.Struct({
  /** The earliest plausible tick time, an ISO date or date-time in UTC ("1990-01-01"); lower it for backfills. */
  minTs: Schema.optionalKey(Schema.String),
  /** How far ahead of the gateway's clock a tick may be; raise it for scheduled or simulated times. */
  maxFutureSeconds: Schema.optionalKey(PositiveInt(200 * 365 * 86_400)),
});

export const TableSpecSchema = Schema.Struct({
  name: Ident("table name", 63),
  /** Bumped by the user when columns change; WAL records carry it. */
  version: Schema.optionalKey(PositiveInt(1_000_000)),
  symbolColumn: Schema.optionalKey(Ident("symbol column", 63)),
  timeColumn: Schema.optionalKey(Ident("time column", 63)),
  columns: Schema.Array(ColumnSpecSchema).check(Schema.isMinLength(1)),
  shards: Schema.optionalKey(PositiveInt(256)),
  maxBatchRows: Schema.optionalKey(PositiveInt(1_000_000)),
  retention: Schema.optionalKey(RetentionSpecSchema),
  /** When the shards of this table write snapshots (absent: on the node's schedule only). */
  snapshot: Schema.optionalKey(SnapshotPolicySchema),
  /** The sink lag the table tolerates; above it the lag remediation workflow steps in (absent: LAG_SLO_DEFAULTS). */
  lagSlo: Schema.optionalKey(LagSloSchema),
  /** Plausibility window of the time column at ingest (catches a wrong unit: seconds or milliseconds sent as microseconds). */
  timeBounds: Schema.optionalKey(TimeBoundsSpecSchema),
});

/** A materialized feed (issue 14): a standing query (query JSON, see src/feed) computed once and published to px.<tenant>.feed.<name>. */
export const FeedSpecSchema = Schema.Struct({
  name: Ident("feed name", 63),
  query: Schema.Record(Schema.String, Schema.Unknown),
  /** How late a tick may be and still get the batch query's values ("60s" default). */
  lateness: Schema.optionalKey(Schema.Union([Schema.Int, Schema.String])),
  /** Publish the feed's whole state as one "snapshot" message this often (seconds; 0 = never). */
  snapshotSeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 86_400 }))),
  /** Checkpoint the operator state this often (seconds; default 60; 0 = never: a restart folds the whole history again, reading what compaction purged back from ClickHouse). */
  checkpointSeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 86_400 }))),
});

/** The kinds of user-defined function (issue 17): a scalar maps row values to a value; an aggregate folds rows into one value per group or window. */
export const FUNCTION_KINDS = ["scalar", "aggregate"] as const;
export const FUNCTION_LANGUAGES = ["javascript", "assemblyscript"] as const;

/** Per-function sandbox limits; absent ones take the node's defaults (src/udf/limits.ts), and none may exceed the node's caps. */
export const FunctionLimitsSchema = Schema.Struct({
  /** Heap of the function's sandbox (bytes). */
  memoryBytes: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /** CPU time of one call into the sandbox (one batch of rows), milliseconds. */
  cpuMsPerCall: Schema.optionalKey(PositiveInt(3_600_000)),
  /** CPU time of all the function's calls in one query, milliseconds. */
  cpuMsPerQuery: Schema.optionalKey(PositiveInt(3_600_000)),
});

/** A user-defined function (issue 17): source run in a sandbox; `version` and `hash` are set by pxctl apply (leave them out). */
export const FunctionSpecSchema = Schema.Struct({
  name: Ident("function name", 63),
  kind: Schema.Literals(FUNCTION_KINDS),
  language: Schema.optionalKey(Schema.Literals(FUNCTION_LANGUAGES)),
  /** JavaScript defining `function <name>(...)` (scalar) or `const <name> = { init, accumulate, merge, finish }` (aggregate); AssemblyScript: see src/udf/asglue.ts. */
  source: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256 * 1024)),
  limits: Schema.optionalKey(FunctionLimitsSchema),
  version: Schema.optionalKey(PositiveInt(1_000_000_000)),
  hash: Schema.optionalKey(Schema.String),
  /** AssemblyScript: the compiled module (base64), set by pxctl apply so that nodes do not compile (leave it out). */
  wasm: Schema.optionalKey(Schema.String),
});

/**
 * Per-tenant quotas (issue 13): each is off when absent. Enforced where the cost
 * is spent (src/quota): the gateway for ingest rate, hot bytes and symbols, the
 * query engine for concurrency, memory and result rows.
 */
export const QuotasSpecSchema = Schema.Struct({
  /** Ticks per second the gateway admits for the tenant (token bucket, burst = ingestBurstSeconds of it). */
  ingestTicksPerSecond: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /** Batch payload bytes per second the gateway admits for the tenant. */
  ingestBytesPerSecond: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /** Seconds of the ingest rates a bucket holds (how long a burst may run at full speed; default 1). */
  ingestBurstSeconds: Schema.optionalKey(PositiveInt(3_600)),
  /** Queries of the tenant running at the same time across the cluster (counted on the node coordinating each). */
  concurrentQueries: Schema.optionalKey(PositiveInt(1_000_000)),
  /** Bytes one query may hold (rows it loaded and rows of its result). */
  queryMemoryBytes: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /** Rows one query result may have. */
  resultRows: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /** Hot-set bytes of all the tenant's shards across the cluster; over it, ingest is refused until eviction frees memory. */
  hotBytes: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /** Distinct symbols summed over the tenant's tables across the cluster; a batch bringing new symbols past it is refused. */
  symbols: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
  /** Queries calling a user-defined function the tenant may start per second on one node (burst: one second of it). */
  udfQueriesPerSecond: Schema.optionalKey(PositiveInt(1_000_000)),
});

const TenantName = Ident("tenant name", 32).check(
  Schema.isPattern(new RegExp(`^(?!(${SYSTEM_SUBJECT_TOKENS.join("|")})$)`), {
    message: `tenant name must not be ${SYSTEM_SUBJECT_TOKENS.join(", ")}: those are Proxist's own subjects (px.<name>.*); choose another name`,
  }),
);

export const TenantSpecSchema = Schema.Struct({
  name: TenantName,
  tables: Schema.Array(TableSpecSchema),
  feeds: Schema.optionalKey(Schema.Array(FeedSpecSchema)),
  /** User-defined functions its queries may call (issue 17). */
  functions: Schema.optionalKey(Schema.Array(FunctionSpecSchema)),
  quotas: Schema.optionalKey(QuotasSpecSchema),
});

/** A tenant's quotas: an absent one is off. Same shape as the input (specs round-trip through KV as JSON). */
export type TenantQuotas = Schema.Schema.Type<typeof QuotasSpecSchema>;

/** The quota names, as users write them in the spec and as refusals name them. */
export type QuotaName = keyof TenantQuotas;

/** No quota set: nothing is limited. */
export const NO_QUOTAS: TenantQuotas = {};

export const ClusterSpecSchema = Schema.Struct({
  tenants: Schema.Array(TenantSpecSchema),
});

export interface ColumnSpec {
  readonly name: string;
  readonly type: ValueType;
  readonly allowNonFinite: boolean;
  /** What rows written before the column existed read as (0/false when absent). */
  readonly default?: number | boolean;
  /** The table version that added the column (absent: every version has it). */
  readonly since?: number;
}

export interface TableSpec {
  readonly name: string;
  readonly version: number;
  readonly symbolColumn: string;
  readonly timeColumn: string;
  readonly columns: readonly ColumnSpec[];
  readonly shards: number;
  readonly maxBatchRows: number;
  readonly retention: { readonly hotSeconds: number; readonly maxHotBytes: number; readonly walKeep: number; readonly walKeepSeconds?: number };
  /** The table's snapshot policy, when its spec gives one. */
  readonly snapshot?: { readonly intervalSeconds?: number; readonly records?: number; readonly walBytes?: number; readonly onShutdown?: boolean };
  /** The table's lag SLO as its spec gives it (lagSloOf fills in the defaults). */
  readonly lagSlo?: { readonly seconds?: number; readonly records?: number; readonly dwellSeconds?: number; readonly enabled?: boolean };
  /** Ingest refuses a tick before minTs or more than maxFutureSeconds ahead (same shape as the input: specs round-trip through KV as JSON). */
  readonly timeBounds: { readonly minTs: string; readonly maxFutureSeconds: number };
}

export interface FeedSpec {
  readonly name: string;
  readonly query: Readonly<Record<string, unknown>>;
  readonly lateness?: number | string;
  readonly snapshotSeconds?: number;
  readonly checkpointSeconds?: number;
}

/** A user-defined function as stored in px_config (same shape as the input; apply stamps version and hash). */
export type FunctionSpec = Schema.Schema.Type<typeof FunctionSpecSchema>;
export type FunctionKind = (typeof FUNCTION_KINDS)[number];

export interface TenantSpec {
  readonly name: string;
  readonly tables: readonly TableSpec[];
  /** Materialized feeds (absent: none). */
  readonly feeds?: readonly FeedSpec[];
  /** User-defined functions (absent: none). */
  readonly functions?: readonly FunctionSpec[];
  /** Resource quotas (absent: none). */
  readonly quotas?: TenantQuotas;
}

export interface ClusterSpec {
  readonly tenants: readonly TenantSpec[];
}

export const TABLE_DEFAULTS = {
  version: 1,
  symbolColumn: "sym",
  timeColumn: "ts",
  shards: 4,
  maxBatchRows: 100_000,
  hotSeconds: 3_600,
  maxHotBytes: 1 << 30,
  walKeep: 10_000,
  minTs: "1990-01-01",
  maxFutureSeconds: 86_400,
} as const;

/** The lag SLO of a table without one: a minute or 100,000 WAL records behind, 30 s dwell, on. */
export const LAG_SLO_DEFAULTS = { seconds: 60, records: 100_000, dwellSeconds: 30, enabled: true } as const;

export interface LagSlo {
  readonly seconds: number;
  readonly records: number;
  readonly dwellSeconds: number;
  readonly enabled: boolean;
}

/** A table's lag SLO with the defaults filled in. */
export function lagSloOf(spec: Pick<TableSpec, "lagSlo">): LagSlo {
  return { ...LAG_SLO_DEFAULTS, ...spec.lagSlo };
}

/** A spec document that broke a rule; `message` names the path, the rule and the fix. */
export class SpecError extends TaggedError("SpecError") {}

function decodeOrThrow<T>(schema: Schema.Decoder<T>, what: string, input: unknown): T {
  const result = Schema.decodeUnknownResult(schema)(input, { errors: "all", onExcessProperty: "error" });
  if (Result.isFailure(result)) {
    throw new SpecError(`${what} is invalid: ${result.failure.message}. Fix the spec and apply it again.`);
  }
  return result.success;
}

/** "1990-01-01" or "1990-01-01T00:00:00Z" -> microseconds (NaN when unreadable); a date-time without a zone is read as UTC. */
export function isoToMicros(minTs: string): number {
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(minTs) ? `${minTs}T00:00:00Z` : /[zZ]|[+-]\d{2}:?\d{2}$/.test(minTs) ? minTs : `${minTs}Z`;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms * 1000 : NaN;
}

function checkedMinTs(minTs: string, tenant: string, table: string): string {
  const us = isoToMicros(minTs);
  if (!(us >= 0)) {
    throw new SpecError(`tenant ${tenant} table ${table}: timeBounds.minTs "${minTs}" is not an ISO date on or after 1970-01-01; write it as "1990-01-01" or "1990-01-01T00:00:00Z"`);
  }
  return minTs;
}

function normalizeTable(t: Schema.Schema.Type<typeof TableSpecSchema>, tenant: string): TableSpec {
  const symbolColumn = t.symbolColumn ?? TABLE_DEFAULTS.symbolColumn;
  const timeColumn = t.timeColumn ?? TABLE_DEFAULTS.timeColumn;
  const version = t.version ?? TABLE_DEFAULTS.version;
  const columns = t.columns.map(
    (c): ColumnSpec => ({
      name: c.name,
      type: c.type,
      allowNonFinite: c.allowNonFinite ?? false,
      ...(c.default === undefined ? {} : { default: c.default }),
      ...(c.since === undefined ? {} : { since: c.since }),
    }),
  );
  const seen = new Set<string>([symbolColumn]);
  if (seen.has(timeColumn)) {
    throw new SpecError(`tenant ${tenant} table ${t.name}: symbolColumn and timeColumn are both "${timeColumn}"; give them different names`);
  }
  seen.add(timeColumn);
  for (const c of columns) {
    if (seen.has(c.name)) {
      throw new SpecError(`tenant ${tenant} table ${t.name}: column "${c.name}" is declared twice (or clashes with the symbol/time column); rename one`);
    }
    if (c.name.startsWith("_")) {
      throw new SpecError(`tenant ${tenant} table ${t.name}: column "${c.name}" starts with _, which is reserved for _lsn, _row, _shard; rename it`);
    }
    if (c.allowNonFinite && c.type !== "float64" && c.type !== "float32") {
      throw new SpecError(`tenant ${tenant} table ${t.name}: column "${c.name}" sets allowNonFinite but is ${c.type}; only float columns can hold NaN/Inf`);
    }
    if (c.default !== undefined) {
      const problem = defaultProblem(c.type, c.default);
      if (problem) throw new SpecError(`tenant ${tenant} table ${t.name}: column "${c.name}" has default ${JSON.stringify(c.default)}, but ${problem}; fix the default`);
    }
    if (c.since !== undefined && c.since > version) {
      throw new SpecError(`tenant ${tenant} table ${t.name}: column "${c.name}" says it was added in version ${c.since}, after the table's version ${version}; leave "since" out (pxctl apply sets it)`);
    }
    seen.add(c.name);
  }
  return {
    name: t.name,
    version,
    symbolColumn,
    timeColumn,
    columns,
    shards: t.shards ?? TABLE_DEFAULTS.shards,
    maxBatchRows: t.maxBatchRows ?? TABLE_DEFAULTS.maxBatchRows,
    retention: {
      hotSeconds: t.retention?.hotSeconds ?? TABLE_DEFAULTS.hotSeconds,
      maxHotBytes: t.retention?.maxHotBytes ?? TABLE_DEFAULTS.maxHotBytes,
      walKeep: t.retention?.walKeep ?? TABLE_DEFAULTS.walKeep,
      ...(t.retention?.walKeepSeconds === undefined ? {} : { walKeepSeconds: t.retention.walKeepSeconds }),
    },
    timeBounds: {
      minTs: checkedMinTs(t.timeBounds?.minTs ?? TABLE_DEFAULTS.minTs, tenant, t.name),
      maxFutureSeconds: t.timeBounds?.maxFutureSeconds ?? TABLE_DEFAULTS.maxFutureSeconds,
    },
    ...(t.snapshot === undefined ? {} : { snapshot: { ...t.snapshot } }),
    ...(t.lagSlo === undefined ? {} : { lagSlo: { ...t.lagSlo } }),
  };
}

/** Why `value` cannot be the default of a `type` column, or undefined when it can. */
function defaultProblem(type: ValueType, value: number | boolean): string | undefined {
  if (type === "bool") return typeof value === "boolean" ? undefined : "a bool column's default is true or false";
  if (typeof value !== "number" || !Number.isFinite(value)) return `a ${type} column's default is a finite number`;
  if (type === "int32" && !(Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31)) return "an int32 column's default is an integer within 32 bits";
  if (type === "int64" && !Number.isSafeInteger(value)) return "an int64 column's default is an integer within +/-2^53";
  return undefined;
}

/** The number a column's default is held as in RAM (bool: 1/0). */
export function columnDefault(c: ColumnSpec): number {
  return c.default === undefined ? 0 : Number(c.default);
}

/**
 * The spec as it was at `version`: the columns added later are left out. Only
 * trailing columns can be added (specdiff refuses anything else), so a record
 * of an older version holds a prefix of today's columns.
 */
export function specAtVersion(spec: TableSpec, version: number): TableSpec {
  if (version === spec.version) return spec;
  let byVersion = olderSpecs.get(spec);
  if (byVersion === undefined) olderSpecs.set(spec, (byVersion = new Map()));
  let old = byVersion.get(version);
  if (old === undefined) byVersion.set(version, (old = { ...spec, version, columns: spec.columns.filter((c) => c.since === undefined || c.since <= version) }));
  return old;
}

// Same object per (spec, version): decoders cache per spec object.
const olderSpecs = new WeakMap<TableSpec, Map<number, TableSpec>>();

function normalizeTenant(t: Schema.Schema.Type<typeof TenantSpecSchema>): TenantSpec {
  const names = new Set<string>();
  for (const table of t.tables) {
    if (names.has(table.name)) throw new SpecError(`tenant ${t.name}: table "${table.name}" is declared twice; keep one`);
    names.add(table.name);
  }
  const feeds = new Set<string>();
  for (const f of t.feeds ?? []) {
    if (feeds.has(f.name)) throw new SpecError(`tenant ${t.name}: feed "${f.name}" is declared twice; keep one`);
    feeds.add(f.name);
  }
  const fns = new Set<string>();
  for (const f of t.functions ?? []) {
    if (fns.has(f.name)) throw new SpecError(`tenant ${t.name}: function "${f.name}" is declared twice; keep one`);
    fns.add(f.name);
  }
  const tables = t.tables.map((table) => normalizeTable(table, t.name));
  const quotas = t.quotas === undefined || Object.keys(t.quotas).length === 0 ? {} : { quotas: t.quotas };
  const functions = t.functions === undefined || t.functions.length === 0 ? {} : { functions: t.functions };
  return t.feeds === undefined || t.feeds.length === 0 ? { name: t.name, tables, ...functions, ...quotas } : { name: t.name, tables, feeds: t.feeds, ...functions, ...quotas };
}

export function parseTableSpec(input: unknown, tenant = "?"): TableSpec {
  return normalizeTable(decodeOrThrow(TableSpecSchema, "table spec", input), tenant);
}

export function parseTenantSpec(input: unknown): TenantSpec {
  return normalizeTenant(decodeOrThrow(TenantSpecSchema, "tenant spec", input));
}

export function parseClusterSpec(input: unknown): ClusterSpec {
  const decoded = decodeOrThrow(ClusterSpecSchema, "cluster spec", input);
  const names = new Set<string>();
  for (const t of decoded.tenants) {
    if (names.has(t.name)) throw new SpecError(`cluster spec: tenant "${t.name}" is declared twice; keep one`);
    names.add(t.name);
  }
  return { tenants: decoded.tenants.map(normalizeTenant) };
}

/** The embedded default: tenant `default` with the example tables. */
export const DEFAULT_CLUSTER_SPEC: ClusterSpec = parseClusterSpec({
  tenants: [
    {
      name: "default",
      tables: [
        {
          name: "trades",
          columns: [
            { name: "price", type: "float64" },
            { name: "size", type: "float64" },
          ],
        },
        {
          name: "quotes",
          columns: [
            { name: "bid", type: "float64" },
            { name: "ask", type: "float64" },
            { name: "bid_size", type: "float64" },
            { name: "ask_size", type: "float64" },
          ],
        },
      ],
    },
  ],
});
