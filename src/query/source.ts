// Where the engine reads from: `TableSource` lists a table's hot shards (the
// node's shard host in production, plain HotTables in tests) and `ColdSource`
// answers the cold half of the seam rule (ClickHouse in production and in the
// integration tests; absent = hot only).
import type { TableSpec } from "../../protocols/tablespec.js";
import type { DecodedRows } from "../clickhouse/index.js";
import type { ClickhouseHttp } from "../clickhouse/index.js";
import { qualifiedTable, quoteIdent, tableColumns, decodeRowBinary } from "../clickhouse/index.js";
import type { HotTable } from "../hotset/index.js";

export interface HotShard {
  /** Bucket = bucketOf(symbol, spec.shards); also the `_shard` column in ClickHouse. */
  readonly bucket: number;
  readonly table: HotTable;
  /** Resolves once every WAL record of this shard up to `lsn` is applied (read-after-write). */
  waitForLsn?(lsn: number, timeoutMs: number): Promise<void>;
  /** Whether this replica is live and caught up; `why` names its state and LSNs when not (completeness notes). */
  readiness?(): Promise<{ readonly kind: "live" | "lagging"; readonly why: string }>;
}

export interface TableSource {
  /** The table's spec in `tenant`, or undefined when it does not exist. */
  spec(tenant: string, table: string): TableSpec | undefined;
  /** The tenant's table names (for error messages). */
  tables(tenant: string): readonly string[];
  /** Hot shards of the table held by this node. */
  shards(tenant: string, table: string): readonly HotShard[];
}

/** The seam-rule slice of one shard: rows with `_shard = shard`, `_lsn <= persistedLsn`, `ts < horizonMicros`. */
export interface ColdSlice {
  readonly tenant: string;
  readonly spec: TableSpec;
  readonly shard: number;
  readonly persistedLsn: number;
  readonly horizonMicros: number;
  /** undefined = every symbol. */
  readonly symbols: readonly string[] | undefined;
}

export interface ColdSource {
  /**
   * Rows of the slices (shards of one table) with ts in [t0, t1), sorted by
   * (symbol, ts, lsn, row): one read for all of them (a symbol lives in one
   * shard). With `maxRows`, at most maxRows + 1 of them: the caller refuses a
   * query past its memory quota, and this keeps that refusal from reading the
   * whole range first.
   */
  range(slices: readonly ColdSlice[], t0: number, t1: number, signal?: AbortSignal, maxRows?: number): Promise<DecodedRows>;
  /**
   * Per symbol, the last `k` rows of the slices with ts < `ts` (side "before") or
   * the first `k` with ts >= `ts` (side "after"), each slice under its own
   * horizon, sorted by (symbol, ts, lsn, row): one read for all of them.
   */
  edge(slices: readonly ColdSlice[], side: "before" | "after", ts: number, k: number, signal?: AbortSignal): Promise<DecodedRows>;
  /** Pushed-down SQL (aggregate partials): the result's RowBinary bytes. */
  sql?(text: string, signal?: AbortSignal): Promise<Uint8Array>;
}

/** A ClickHouse string literal (symbols are arbitrary UTF-8). */
export function sqlString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function int(n: number, what: string): string {
  if (!Number.isSafeInteger(n)) throw new Error(`cold query: ${what} ${n} is not a safe integer`);
  return String(n);
}

/** `sym IN (...)`; no symbols match no row (`IN ()` does not parse). */
const symbolsIn = (spec: TableSpec, symbols: readonly string[]): string => (symbols.length === 0 ? "0" : `${quoteIdent(spec.symbolColumn)} IN (${symbols.map(sqlString).join(", ")})`);

/**
 * The seam rule of several shards of one table in one condition: each shard's
 * own LSN, horizon and symbols, OR-ed, so one scan reads every shard's cold
 * rows (the sort key does not start with `_shard`: a query per shard reads the
 * range once per shard). The slices must be of one table of one tenant.
 */
export function seamWhereAll(slices: readonly ColdSlice[], t0: number, t1: number): string {
  const first = slices[0];
  if (first === undefined) throw new Error("cold query: no shard to read");
  const ts = quoteIdent(first.spec.timeColumn);
  const shards = slices.map((x) => {
    if (x.tenant !== first.tenant || x.spec.name !== first.spec.name) throw new Error(`cold query: shard ${x.shard}'s slice is of another table than shard ${first.shard}'s`);
    const own = [`${quoteIdent("_shard")} = ${int(x.shard, "shard")}`, `${quoteIdent("_lsn")} <= ${int(x.persistedLsn, "persisted LSN")}`, `${ts} < ${int(Math.min(t1, x.horizonMicros), "t1")}`];
    if (x.symbols !== undefined) own.push(symbolsIn(x.spec, x.symbols));
    return `(${own.join(" AND ")})`;
  });
  return `${ts} >= ${int(Math.max(0, t0), "t0")} AND ${shards.length === 1 ? shards[0]! : `(${shards.join(" OR ")})`}`;
}

/**
 * Runs a read, retrying once when the server was unreachable: a SELECT is
 * idempotent, and a keep-alive socket the server closed while this process was
 * busy computing (event loop blocked) fails exactly like that.
 */
async function read<T>(f: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if ((e as { _tag?: unknown })._tag !== "ClickhouseUnavailableError" || signal?.aborted === true) throw e;
    return f();
  }
}

/** ClickHouse's default max_query_size, less room for what the server adds. */
const MAX_QUERY_SIZE = 256 * 1024 - 1024;

/** ClickHouse-backed cold source (any release from 18.16: plain SELECT ... LIMIT BY, no parameters). */
export class ClickhouseColdSource implements ColdSource {
  constructor(readonly client: ClickhouseHttp) {}

  private bytes(sql: string, signal: AbortSignal | undefined): Promise<Buffer> {
    // One statement names every asked symbol of all its shards: past the server's default max_query_size
    // (256 KiB) for long symbol lists, so such a statement raises it to its own length.
    const size = Buffer.byteLength(sql);
    const opts = { ...(signal === undefined ? {} : { signal }), ...(size < MAX_QUERY_SIZE ? {} : { settings: { max_query_size: size + 1 } }) };
    return read(() => this.client.queryBytes(sql, opts), signal);
  }

  private cols(spec: TableSpec): string {
    return tableColumns(spec)
      .map((c) => quoteIdent(c.name))
      .join(", ");
  }

  private order(spec: TableSpec, dir: "" | " DESC"): string {
    return [spec.symbolColumn, spec.timeColumn, "_lsn", "_row"].map((c) => `${quoteIdent(c)}${dir}`).join(", ");
  }

  async range(slices: readonly ColdSlice[], t0: number, t1: number, signal?: AbortSignal, maxRows?: number): Promise<DecodedRows> {
    const where = seamWhereAll(slices, t0, t1);
    const { spec, tenant } = slices[0]!;
    const limit = maxRows === undefined || !Number.isFinite(maxRows) ? "" : ` LIMIT ${int(Math.max(0, Math.floor(maxRows)) + 1, "max rows")}`;
    const sql = `SELECT ${this.cols(spec)} FROM ${qualifiedTable(tenant, spec.name)} WHERE ${where} ORDER BY ${this.order(spec, "")}${limit} FORMAT RowBinary`;
    return decodeRowBinary(spec, await this.bytes(sql, signal));
  }

  async edge(slices: readonly ColdSlice[], side: "before" | "after", ts: number, k: number, signal?: AbortSignal): Promise<DecodedRows> {
    const where = side === "before" ? seamWhereAll(slices, 0, ts) : seamWhereAll(slices, ts, Number.MAX_SAFE_INTEGER);
    const { spec, tenant } = slices[0]!;
    const sym = quoteIdent(spec.symbolColumn);
    if (k === 1) {
      // One row per symbol: a GROUP BY with argMax/argMin over the (ts, lsn, row) key scans without sorting the slice.
      const rest = tableColumns(spec).filter((c) => c.role !== "symbol");
      const key = `tuple(${[spec.timeColumn, "_lsn", "_row"].map(quoteIdent).join(", ")})`;
      const pick = `${side === "before" ? "argMax" : "argMin"}(tuple(${rest.map((c) => quoteIdent(c.name)).join(", ")}), ${key})`;
      const sql =
        `SELECT ${sym}, ${rest.map((_, i) => `tupleElement(m, ${i + 1})`).join(", ")} FROM ` +
        `(SELECT ${sym}, ${pick} AS m FROM ${qualifiedTable(tenant, spec.name)} WHERE ${where} GROUP BY ${sym}) ORDER BY ${sym} FORMAT RowBinary`;
      return decodeRowBinary(spec, await this.bytes(sql, signal));
    }
    const inner =
      `SELECT ${this.cols(spec)} FROM ${qualifiedTable(tenant, spec.name)} WHERE ${where} ` +
      `ORDER BY ${side === "before" ? [sym, ...[spec.timeColumn, "_lsn", "_row"].map((c) => `${quoteIdent(c)} DESC`)].join(", ") : this.order(spec, "")} LIMIT ${int(k, "k")} BY ${sym}`;
    const sql = `SELECT * FROM (${inner}) ORDER BY ${this.order(spec, "")} FORMAT RowBinary`;
    return decodeRowBinary(spec, await this.bytes(sql, signal));
  }

  /**
   * Rows of `spec` by WAL position: per shard those with after < _lsn < below
   * (`gaps`), past `cursor` (an LSN: rows of later records only), in
   * (_lsn, _row) order, at most `limit` rows. What a feed resuming below the
   * WAL's start reads instead of the compacted records.
   */
  async byLsn(tenant: string, spec: TableSpec, gaps: readonly { readonly bucket: number; readonly after: number; readonly below: number }[], cursor: number, limit: number | undefined, signal?: AbortSignal): Promise<DecodedRows> {
    const shard = gaps.map((g) => `(${quoteIdent("_shard")} = ${int(g.bucket, "shard")} AND ${quoteIdent("_lsn")} > ${int(g.after, "LSN")} AND ${quoteIdent("_lsn")} < ${int(g.below, "LSN")})`).join(" OR ");
    const cap = limit === undefined ? "" : ` LIMIT ${int(limit, "limit")}`;
    const sql = `SELECT ${this.cols(spec)} FROM ${qualifiedTable(tenant, spec.name)} WHERE (${shard}) AND ${quoteIdent("_lsn")} > ${int(cursor, "cursor")} ORDER BY ${quoteIdent("_lsn")}, ${quoteIdent("_row")}${cap} FORMAT RowBinary`;
    return decodeRowBinary(spec, await this.bytes(sql, signal));
  }

  async sql(text: string, signal?: AbortSignal): Promise<Uint8Array> {
    return this.bytes(text, signal);
  }
}
