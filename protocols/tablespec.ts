// Table and tenant specs: the desired state users apply (`pxctl apply -f`),
// validated with effect Schema at the edge. Every other module works on the
// decoded, defaulted `TableSpec`/`TenantSpec` types.
import { Result, Schema } from "effect";
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
});

export const RetentionSpecSchema = Schema.Struct({
  /** Rows younger than this (by tick time, relative to the newest tick) stay in RAM. */
  hotSeconds: Schema.optionalKey(PositiveInt(10 * 365 * 86_400)),
  /** Soft memory budget of one shard's hot set; older persisted rows go first. */
  maxHotBytes: Schema.optionalKey(PositiveInt(Number.MAX_SAFE_INTEGER)),
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
  /** Plausibility window of the time column at ingest (catches a wrong unit: seconds or milliseconds sent as microseconds). */
  timeBounds: Schema.optionalKey(TimeBoundsSpecSchema),
});

export const TenantSpecSchema = Schema.Struct({
  name: Ident("tenant name", 32),
  tables: Schema.Array(TableSpecSchema),
});

export const ClusterSpecSchema = Schema.Struct({
  tenants: Schema.Array(TenantSpecSchema),
});

export interface ColumnSpec {
  readonly name: string;
  readonly type: ValueType;
  readonly allowNonFinite: boolean;
}

export interface TableSpec {
  readonly name: string;
  readonly version: number;
  readonly symbolColumn: string;
  readonly timeColumn: string;
  readonly columns: readonly ColumnSpec[];
  readonly shards: number;
  readonly maxBatchRows: number;
  readonly retention: { readonly hotSeconds: number; readonly maxHotBytes: number };
  /** Ingest refuses a tick before minTs or more than maxFutureSeconds ahead (same shape as the input: specs round-trip through KV as JSON). */
  readonly timeBounds: { readonly minTs: string; readonly maxFutureSeconds: number };
}

export interface TenantSpec {
  readonly name: string;
  readonly tables: readonly TableSpec[];
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
  minTs: "1990-01-01",
  maxFutureSeconds: 86_400,
} as const;

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
  const columns = t.columns.map((c) => ({ name: c.name, type: c.type, allowNonFinite: c.allowNonFinite ?? false }));
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
    seen.add(c.name);
  }
  return {
    name: t.name,
    version: t.version ?? TABLE_DEFAULTS.version,
    symbolColumn,
    timeColumn,
    columns,
    shards: t.shards ?? TABLE_DEFAULTS.shards,
    maxBatchRows: t.maxBatchRows ?? TABLE_DEFAULTS.maxBatchRows,
    retention: {
      hotSeconds: t.retention?.hotSeconds ?? TABLE_DEFAULTS.hotSeconds,
      maxHotBytes: t.retention?.maxHotBytes ?? TABLE_DEFAULTS.maxHotBytes,
    },
    timeBounds: {
      minTs: checkedMinTs(t.timeBounds?.minTs ?? TABLE_DEFAULTS.minTs, tenant, t.name),
      maxFutureSeconds: t.timeBounds?.maxFutureSeconds ?? TABLE_DEFAULTS.maxFutureSeconds,
    },
  };
}

function normalizeTenant(t: Schema.Schema.Type<typeof TenantSpecSchema>): TenantSpec {
  const names = new Set<string>();
  for (const table of t.tables) {
    if (names.has(table.name)) throw new SpecError(`tenant ${t.name}: table "${table.name}" is declared twice; keep one`);
    names.add(table.name);
  }
  return { name: t.name, tables: t.tables.map((table) => normalizeTable(table, t.name)) };
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
