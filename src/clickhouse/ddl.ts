// ClickHouse schema of Proxist tables: one database per tenant (`px_<tenant>`),
// one MergeTree table per table spec, partitioned by UTC day and sorted by
// (symbol, ts, _lsn, _row). The DDL is idempotent and accepted by 18.16 and by
// current releases; `ensureSchema` runs it and checks what is there.
import type { TableSpec, ValueType } from "../../protocols/tablespec.js";
import type { ClickhouseHttp } from "./http.js";
import { ClickhouseQueryError } from "./errors.js";
import { TaggedError } from "../../protocols/tagged.js";

export type ClickhouseType = "String" | "Int64" | "Float64" | "Float32" | "Int32" | "UInt8" | "UInt64" | "UInt32" | "UInt16";

export type ColumnRole = "symbol" | "time" | "value" | "lsn" | "row" | "shard";

export interface ClickhouseColumn {
  readonly name: string;
  readonly type: ClickhouseType;
  readonly role: ColumnRole;
}

/** Names of the bookkeeping columns every table has. */
export const LSN_COLUMN = "_lsn";
export const ROW_COLUMN = "_row";
export const SHARD_COLUMN = "_shard";

const MICROS_PER_DAY = 86_400_000_000;

/** Thrown when an existing table does not match the spec and cannot be made to. */
export class ClickhouseSchemaMismatchError extends TaggedError("ClickhouseSchemaMismatchError") {}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Backtick-quoted identifier; rejects names Proxist specs cannot produce. */
export function quoteIdent(name: string): string {
  if (!IDENT.test(name) || name.length > 127) {
    throw new Error(`ClickHouse identifier "${name}" must be letters, digits or _ and not start with a digit`);
  }
  return `\`${name}\``;
}

export function valueColumnType(type: ValueType): ClickhouseType {
  switch (type) {
    case "float64":
      return "Float64";
    case "float32":
      return "Float32";
    case "int64":
      return "Int64";
    case "int32":
      return "Int32";
    case "bool":
      return "UInt8";
  }
}

/** An integer in [min, max] as SQL; anything else throws (values go into SQL text: 18.16 has no query parameters). */
export function sqlInteger(what: string, v: number, min: number, max: number): string {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`${what} must be an integer in ${min}..${max}, got ${v}`);
  return String(v);
}

/** The tenant's database: `px_<tenant>`. */
export function databaseName(tenant: string): string {
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(tenant)) {
    throw new Error(`tenant "${tenant}" must be lowercase letters, digits or _ , start with a letter, at most 32 characters`);
  }
  return `px_${tenant}`;
}

/** `` `px_<tenant>`.`<table>` `` */
export function qualifiedTable(tenant: string, table: string): string {
  return `${quoteIdent(databaseName(tenant))}.${quoteIdent(table)}`;
}

/** Columns in table (and RowBinary) order: symbol, time, value columns in spec order, _lsn, _row, _shard. */
export function tableColumns(spec: TableSpec): readonly ClickhouseColumn[] {
  return [
    { name: spec.symbolColumn, type: "String", role: "symbol" },
    { name: spec.timeColumn, type: "Int64", role: "time" },
    ...spec.columns.map((c): ClickhouseColumn => ({ name: c.name, type: valueColumnType(c.type), role: "value" })),
    { name: LSN_COLUMN, type: "UInt64", role: "lsn" },
    { name: ROW_COLUMN, type: "UInt32", role: "row" },
    { name: SHARD_COLUMN, type: "UInt16", role: "shard" },
  ];
}

/**
 * The partition key. toDateTime(seconds, 'UTC') makes the day a UTC day
 * whatever the server's timezone; 18.16 needs the explicit toDateTime
 * (toDate of a plain integer means different things across releases).
 */
export function partitionExpression(spec: TableSpec): string {
  return `toDate(toDateTime(intDiv(${quoteIdent(spec.timeColumn)}, 1000000), 'UTC'))`;
}

/**
 * UTC day number (days since 1970-01-01) of a timestamp: rows with the same
 * number go to the same partition. An INSERT is one part only when all its
 * rows share it.
 */
export function partitionDayOf(tsMicros: number): number {
  return Math.floor(tsMicros / MICROS_PER_DAY);
}

export function createDatabaseSql(tenant: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteIdent(databaseName(tenant))}`;
}

export function createTableSql(tenant: string, spec: TableSpec): string {
  const cols = tableColumns(spec)
    .map((c) => `  ${quoteIdent(c.name)} ${c.type}`)
    .join(",\n");
  const order = [spec.symbolColumn, spec.timeColumn, LSN_COLUMN, ROW_COLUMN].map(quoteIdent).join(", ");
  return (
    `CREATE TABLE IF NOT EXISTS ${qualifiedTable(tenant, spec.name)} (\n${cols}\n)\n` +
    `ENGINE = MergeTree\nPARTITION BY ${partitionExpression(spec)}\nORDER BY (${order})`
  );
}

/**
 * Adds a value column with the spec's default, so rows inserted before it
 * existed read as the WAL records of their version do. No IF NOT EXISTS:
 * ensureSchema catches a concurrent add and re-reads the columns, the same on
 * 18.16 and current releases.
 */
export function addColumnSql(tenant: string, spec: TableSpec, name: string): string {
  const c = spec.columns.find((x) => x.name === name);
  if (c === undefined) throw new Error(`table ${spec.name} has no value column ${name}`);
  const dflt = c.default === undefined ? "" : ` DEFAULT ${Number(c.default)}`;
  return `ALTER TABLE ${qualifiedTable(tenant, spec.name)} ADD COLUMN ${quoteIdent(c.name)} ${valueColumnType(c.type)}${dflt}`;
}

/** `name -> type` of an existing table, in table order; empty when it does not exist. */
export async function describeTable(client: ClickhouseHttp, tenant: string, table: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await client.query(`DESCRIBE TABLE ${qualifiedTable(tenant, table)} FORMAT TabSeparated`);
  } catch (err) {
    // 60 UNKNOWN_TABLE, 81 UNKNOWN_DATABASE
    if (err instanceof ClickhouseQueryError && (err.code === 60 || err.code === 81)) return new Map();
    throw err;
  }
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [name, type] = line.split("\t");
    if (name !== undefined && type !== undefined) out.set(name, type);
  }
  return out;
}

/**
 * Creates the tenant database and the table when missing, adds value columns
 * a newer spec declares, and checks every column has the expected type.
 * Safe to run concurrently from several nodes and on every start.
 */
export async function ensureSchema(client: ClickhouseHttp, tenant: string, spec: TableSpec): Promise<void> {
  await client.command(createDatabaseSql(tenant));
  await client.command(createTableSql(tenant, spec));
  let existing = await describeTable(client, tenant, spec.name);
  const expected = tableColumns(spec);
  const missing = expected.filter((c) => !existing.has(c.name));
  for (const c of missing) {
    if (c.role !== "value") {
      throw new ClickhouseSchemaMismatchError(
        `ClickHouse table ${databaseName(tenant)}.${spec.name} has no column ${c.name}; it was created for another spec (symbol/time column renamed?). Drop or rename the table, or restore the column names`,
      );
    }
    try {
      await client.command(addColumnSql(tenant, spec, c.name));
    } catch (err) {
      // Another node may have added it first; the check below decides.
      if (!(err instanceof ClickhouseQueryError)) throw err;
    }
  }
  if (missing.length > 0) existing = await describeTable(client, tenant, spec.name);
  for (const c of expected) {
    const got = existing.get(c.name);
    if (got !== c.type) {
      throw new ClickhouseSchemaMismatchError(
        `ClickHouse table ${databaseName(tenant)}.${spec.name}: column ${c.name} must be ${c.type}, got ${got ?? "nothing"}; ` +
          `change the spec back or migrate the table (ALTER TABLE ... MODIFY COLUMN)`,
      );
    }
  }
}
