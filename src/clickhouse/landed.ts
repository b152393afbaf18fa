// Which WAL records of a shard are already in ClickHouse. 18.16 has no insert
// deduplication for MergeTree, so before retrying an INSERT whose outcome is
// unknown the sink waits for it to finish on the server (waitQueryGone), asks
// this, and sends only the rows that did not land. An interrupted INSERT can
// commit a prefix of its body, so an LSN may have landed partly.
// 18.16 has no query parameters either: every value in the SQL is validated.
import { setTimeout as sleep } from "node:timers/promises";
import type { ClickhouseHttp, RequestOptions } from "./http.js";
import { ClickhouseProtocolError } from "./errors.js";
import { LSN_COLUMN, ROW_COLUMN, SHARD_COLUMN, qualifiedTable, quoteIdent, sqlInteger } from "./ddl.js";

export interface LandedOptions extends RequestOptions {
  /**
   * Bounds (inclusive, microseconds) on the timestamps of the rows looked for,
   * when known: they let ClickHouse skip partitions that cannot hold them.
   */
  readonly tsMinMicros?: number;
  readonly tsMaxMicros?: number;
  /** Name of the table's time column (default `ts`); needed with the ts bounds. */
  readonly timeColumn?: string;
}

const integer = (what: string, v: number, min: number, max: number): string => sqlInteger(`landedLsns: ${what}`, v, min, max);

/**
 * `_lsn -> number of rows` for every LSN in `[lsnFrom, lsnTo]` that has rows
 * of shard `bucket` in `px_<tenant>.<table>`. An LSN absent from the map has
 * no row there; one with fewer rows than its WAL record landed partly (an
 * interrupted INSERT larger than one block), with more it landed twice.
 */
export async function landedLsns(
  client: ClickhouseHttp,
  tenant: string,
  table: string,
  bucket: number,
  lsnFrom: number,
  lsnTo: number,
  opts: LandedOptions = {},
): Promise<Map<number, number>> {
  const conditions = [
    `${quoteIdent(SHARD_COLUMN)} = ${integer("bucket", bucket, 0, 0xffff)}`,
    `${quoteIdent(LSN_COLUMN)} >= ${integer("lsnFrom", lsnFrom, 0, Number.MAX_SAFE_INTEGER)}`,
    `${quoteIdent(LSN_COLUMN)} <= ${integer("lsnTo", lsnTo, 0, Number.MAX_SAFE_INTEGER)}`,
  ];
  const ts = quoteIdent(opts.timeColumn ?? "ts");
  if (opts.tsMinMicros !== undefined) conditions.push(`${ts} >= ${integer("tsMinMicros", opts.tsMinMicros, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)}`);
  if (opts.tsMaxMicros !== undefined) conditions.push(`${ts} <= ${integer("tsMaxMicros", opts.tsMaxMicros, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)}`);
  const out = new Map<number, number>();
  if (lsnFrom > lsnTo) return out;
  const sql =
    `SELECT ${quoteIdent(LSN_COLUMN)}, count() FROM ${qualifiedTable(tenant, table)} ` +
    `WHERE ${conditions.join(" AND ")} GROUP BY ${quoteIdent(LSN_COLUMN)} ORDER BY ${quoteIdent(LSN_COLUMN)} FORMAT TabSeparated`;
  const { tsMinMicros: _min, tsMaxMicros: _max, timeColumn: _tc, ...request } = opts;
  const text = await client.query(sql, request);
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const tab = line.indexOf("\t");
    const lsn = Number(line.slice(0, tab));
    const rows = Number(line.slice(tab + 1));
    if (tab < 0 || !Number.isSafeInteger(lsn) || !Number.isSafeInteger(rows)) {
      throw new ClickhouseProtocolError(`landedLsns: unexpected result line "${line.slice(0, 100)}" from ${sql}`);
    }
    out.set(lsn, rows);
  }
  return out;
}

/**
 * The `_row` values (ascending) of one LSN of shard `bucket`: for an LSN that
 * `landedLsns` reports with fewer rows than its WAL record, so that only the
 * missing rows are sent again. (An interrupted INSERT commits a prefix of its
 * body, so these are usually 0..k-1.)
 */
export async function landedRows(
  client: ClickhouseHttp,
  tenant: string,
  table: string,
  bucket: number,
  lsn: number,
  opts: RequestOptions = {},
): Promise<Uint32Array> {
  const sql =
    `SELECT ${quoteIdent(ROW_COLUMN)} FROM ${qualifiedTable(tenant, table)} ` +
    `WHERE ${quoteIdent(SHARD_COLUMN)} = ${integer("bucket", bucket, 0, 0xffff)} AND ${quoteIdent(LSN_COLUMN)} = ${integer("lsn", lsn, 0, Number.MAX_SAFE_INTEGER)} ` +
    `ORDER BY ${quoteIdent(ROW_COLUMN)} FORMAT TabSeparated`;
  const text = await client.query(sql, opts);
  const lines = text.split("\n").filter((l) => l !== "");
  const out = new Uint32Array(lines.length);
  lines.forEach((l, i) => {
    const v = Number(l);
    if (!Number.isInteger(v) || v < 0) throw new ClickhouseProtocolError(`landedRows: unexpected result line "${l.slice(0, 100)}" from ${sql}`);
    out[i] = v;
  });
  return out;
}

/** True while a query with this `query_id` runs on the server. */
export async function queryRunning(client: ClickhouseHttp, queryId: string, opts: RequestOptions = {}): Promise<boolean> {
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(queryId)) {
    throw new RangeError(`queryRunning: query id "${queryId}" must be 1-128 letters, digits, _ . : -`);
  }
  const text = await client.query(`SELECT count() FROM system.processes WHERE query_id = '${queryId}' FORMAT TabSeparated`, opts);
  return Number(text.trim()) > 0;
}

/**
 * Waits until the query `queryId` has left system.processes: finished,
 * failed or killed. An INSERT whose client timed out or lost its connection
 * keeps running on the server and may still commit (measured on 18.16: a 1M
 * row INSERT committed 2.4 s after its client closed the connection), so a
 * sink must call this before `landedLsns`, or it may retry rows that are
 * about to land. Resolves true when the query is gone, false on timeout.
 * If the server restarted, the query is gone.
 *
 * Caveat: a query the server has not yet started (its bytes still queued,
 * e.g. a server stalled under load or SIGSTOP) is not in system.processes
 * either; a sink should not retry sooner than a few seconds after it gave up.
 */
export async function waitQueryGone(
  client: ClickhouseHttp,
  queryId: string,
  opts: { readonly timeoutMs?: number; readonly pollMs?: number; readonly signal?: AbortSignal } = {},
): Promise<boolean> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const request = opts.signal === undefined ? {} : { signal: opts.signal };
    if (!(await queryRunning(client, queryId, request))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(opts.pollMs ?? 50, undefined, request);
  }
}
