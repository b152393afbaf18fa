// A shard's write fence, kept in ClickHouse itself. 18.16 cannot deduplicate
// INSERTs, and an INSERT whose client gave up can still run later: its bytes
// queued in the socket of a stalled (SIGSTOPped, overloaded) server, or sent by
// an owner paused between its permit check and the request. Asking what landed
// (landed.ts) is only final if no such INSERT can commit afterwards.
//
// So a fenced INSERT carries a token and runs as
//   INSERT INTO t (cols) SELECT cols FROM <its rows> WHERE throwIf(<fence> != token) = 0
// with its rows as an external table (the HTTP request's multipart body) and
// <fence> the highest token stored for the shard. A writer that is about to ask
// what landed (a new owner at recovery, a sink retrying an INSERT whose outcome
// is unknown) first raises the fence, then waits until no INSERT of the shard
// runs. An INSERT that starts after the raise reads the new fence and fails
// having written nothing; one that started before it is in system.processes
// until it ends, and the writer waits for it. No clock is involved, and the
// same SQL works on 18.16 and on current releases.
//
// Tokens: revision * 2^21 + epoch. A newer lease revision always raises past
// every older one; an owner raises its own epoch for each uncertain retry, and
// finds itself fenced when the fence holds a newer revision's token.
import { ClickhouseProtocolError, ClickhouseQueryError } from "./errors.js";
import type { ClickhouseHttp, RequestOptions } from "./http.js";
import { databaseName, quoteIdent, sqlInteger } from "./ddl.js";

/** Per tenant database; table names of specs start with a letter, so it cannot clash with one. */
export const FENCE_TABLE = "_px_sink_fence";
/** Epochs a lease revision can raise the fence through. */
export const FENCE_EPOCHS = 2 ** 21;
/** ClickHouse's FUNCTION_THROW_IF_VALUE_IS_NON_ZERO: the INSERT met a raised fence. */
export const FENCE_REFUSED_CODE = 395;

const fenceTable = (tenant: string): string => `${quoteIdent(databaseName(tenant))}.${quoteIdent(FENCE_TABLE)}`;

const shardNo = (bucket: number): string => sqlInteger("fence: shard", bucket, 0, 0xffff);
const token = (t: number): string => sqlInteger("fence: token", t, 0, Number.MAX_SAFE_INTEGER);

export function createFenceTableSql(tenant: string): string {
  return `CREATE TABLE IF NOT EXISTS ${fenceTable(tenant)} (\`table\` String, \`shard\` UInt16, \`token\` UInt64, \`at\` DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY (\`table\`, \`shard\`)`;
}

/** The shard's fence as a scalar subquery (0 when never raised). `table` is a validated spec name. */
export function fenceValueSql(tenant: string, table: string, bucket: number): string {
  quoteIdent(table);
  return `(SELECT max(\`token\`) FROM ${fenceTable(tenant)} WHERE \`table\` = '${table}' AND \`shard\` = ${shardNo(bucket)})`;
}

/** The condition a fenced INSERT's SELECT filters on: fails the whole INSERT unless the fence is still `t`. */
export function fenceConditionSql(tenant: string, table: string, bucket: number, t: number): string {
  return `throwIf(${fenceValueSql(tenant, table, bucket)} != ${token(t)}) = 0`;
}

export type NextToken = { readonly token: number } | { readonly fencedBy: number };

/**
 * The token an owner of lease revision `revision` raises the fence to, given
 * the fence now holds `current`: past everything (its revision's first epoch,
 * or the next epoch), unless a newer revision holds it. Revision 0 (a single
 * node without leases) has no rival and just counts up.
 */
export function nextFenceToken(revision: number, current: number): NextToken {
  if (revision === 0) return { token: current + 1 };
  const base = revision * FENCE_EPOCHS;
  if (!Number.isSafeInteger(base + FENCE_EPOCHS)) throw new RangeError(`fence: lease revision ${revision} is too large for a token`);
  if (current < base) return { token: base };
  if (current + 1 < base + FENCE_EPOCHS) return { token: current + 1 };
  return { fencedBy: Math.floor(current / FENCE_EPOCHS) };
}

export async function ensureFenceTable(client: ClickhouseHttp, tenant: string, opts: RequestOptions = {}): Promise<void> {
  await client.command(createFenceTableSql(tenant), opts);
}

/** The shard's fence now (0 when never raised). */
export async function readFence(client: ClickhouseHttp, tenant: string, table: string, bucket: number, opts: RequestOptions = {}): Promise<number> {
  const sql = `SELECT ${fenceValueSql(tenant, table, bucket)} FORMAT TabSeparated`;
  const v = Number((await client.query(sql, opts)).trim());
  if (!Number.isSafeInteger(v) || v < 0) throw new ClickhouseProtocolError(`readFence: unexpected answer from ${sql}`);
  return v;
}

/**
 * Stores `t` as a fence of the shard. The fence is the highest token stored,
 * so a late raise of an older owner changes nothing. Resolves once committed:
 * from then on an INSERT with a lower token fails.
 */
export async function storeFence(client: ClickhouseHttp, tenant: string, table: string, bucket: number, t: number, opts: RequestOptions = {}): Promise<void> {
  quoteIdent(table);
  await client.command(`INSERT INTO ${fenceTable(tenant)} (\`table\`, \`shard\`, \`token\`) VALUES ('${table}', ${shardNo(bucket)}, ${token(t)})`, opts);
}

/** True when `e` is ClickHouse refusing a fenced INSERT because the fence was raised past its token. */
export function isFenceRefusal(e: unknown): boolean {
  return e instanceof ClickhouseQueryError && e.code === FENCE_REFUSED_CODE;
}
