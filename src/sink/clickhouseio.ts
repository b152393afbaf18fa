// The sink's ClickHouse side, one per node: the HTTP client, the server's
// capabilities and the tables already ensured (both cached), INSERTs of planned
// bodies, and the questions exactly-once needs: which LSNs and rows of a batch
// landed, the highest LSN of a shard, and whether INSERTs of an earlier owner
// of the shard still run on the server; and the shard's write fence
// (src/clickhouse/fence.ts) that keeps a late INSERT from landing after them.
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { ShardAddress } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import {
  ClickhouseHttp,
  ClickhouseProtocolError,
  LSN_COLUMN,
  ROW_COLUMN,
  SHARD_COLUMN,
  detectServer,
  ensureFenceTable,
  ensureSchema,
  insertRowBinary,
  insertRowBinaryFenced,
  landedLsns,
  nextFenceToken,
  readFence,
  storeFence,
  qualifiedTable,
  quoteIdent,
} from "../clickhouse/index.js";
import type { ClickhouseCapabilities, ClickhouseServerInfo, InsertFence } from "../clickhouse/index.js";
import { TaggedError } from "../../protocols/tagged.js";
import { SinkFencedError } from "./lease.js";

export interface SinkClickhouseOptions {
  /** e.g. `http://127.0.0.1:8123`. */
  readonly url: string;
  readonly user?: string;
  readonly password?: string;
  /** Whole-request timeout of an INSERT or a query (default 60 s). */
  readonly requestTimeoutMs?: number;
}

/**
 * query_id prefix of every INSERT the sink of `shard` sends, whoever runs it:
 * a new owner waits until no query with it is left on the server.
 */
export function sinkQueryPrefix(shard: ShardAddress): string {
  // Owners of every lease revision share it (pxsink-<tenant>-<table>-<bucket>-r<rev>-<n>): a new owner waits for all of them.
  const plain = `pxsink-${shard.tenant}-${shard.table}-${shard.bucket}-`;
  // query ids stay under 128 characters: long names are hashed.
  if (plain.length <= 80) return plain;
  return `pxsink-${createHash("sha256").update(`${shard.tenant}.${shard.table}.${shard.bucket}`).digest("hex").slice(0, 24)}-`;
}

/** The sink writers of a shard did not leave the server in time. */
export class SinkWritersRunningError extends TaggedError("SinkWritersRunningError") {}

function checkedInt(v: number, what: string): string {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative integer, got ${v}`);
  return String(v);
}

export class SinkClickhouse {
  readonly client: ClickhouseHttp;
  private server: Promise<ClickhouseServerInfo> | undefined;
  private readonly schemas = new Map<string, Promise<void>>();

  constructor(options: SinkClickhouseOptions) {
    this.client = new ClickhouseHttp({
      url: options.url,
      requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
      ...(options.user === undefined ? {} : { user: options.user }),
      ...(options.password === undefined ? {} : { password: options.password }),
    });
  }

  get url(): string {
    return this.client.url;
  }

  /** The server's version and capabilities (asked once; asked again after a failure). */
  async serverInfo(): Promise<ClickhouseServerInfo> {
    this.server ??= detectServer(this.client);
    try {
      return await this.server;
    } catch (e) {
      this.server = undefined;
      throw e;
    }
  }

  async capabilities(): Promise<ClickhouseCapabilities> {
    return (await this.serverInfo()).capabilities;
  }

  /** Creates the tenant database and the table of `spec` once per process (idempotent on the server too). */
  async ensureTable(tenant: string, spec: TableSpec): Promise<void> {
    const key = `${tenant}.${spec.name}.${spec.version}.${spec.columns.map((c) => `${c.name}:${c.type}`).join(",")}`;
    let p = this.schemas.get(key);
    if (p === undefined) {
      p = ensureSchema(this.client, tenant, spec).then(() => ensureFenceTable(this.client, tenant));
      this.schemas.set(key, p);
    }
    try {
      await p;
    } catch (e) {
      this.schemas.delete(key);
      throw e;
    }
  }

  /**
   * One INSERT of a RowBinary body of `rows` rows (one part: see plan.ts);
   * with `fence`, only while the shard's fence is still its token (else it
   * fails, `isFenceRefusal`, having written nothing).
   */
  async insert(tenant: string, spec: TableSpec, body: Uint8Array, rows: number, queryId: string, signal?: AbortSignal, fence?: InsertFence): Promise<void> {
    const capabilities = await this.capabilities();
    const opts = { rows, capabilities, queryId, ...(signal === undefined ? {} : { signal }) };
    if (fence === undefined) await insertRowBinary(this.client, tenant, spec, body, opts);
    else await insertRowBinaryFenced(this.client, tenant, spec, body, fence, opts);
  }

  /**
   * Raises the shard's fence for an owner of lease `revision` and returns its
   * new token: from now on an INSERT with an older token fails. Rejects with
   * SinkFencedError when a newer revision holds the fence. (ensureTable first.)
   */
  async raiseFence(shard: ShardAddress, revision: number, signal?: AbortSignal): Promise<number> {
    const opts = signal === undefined ? {} : { signal };
    const current = await readFence(this.client, shard.tenant, shard.table, shard.bucket, opts);
    const next = nextFenceToken(revision, current);
    if ("fencedBy" in next) {
      throw new SinkFencedError(`shard ${shard.tenant}/${shard.table}/${shard.bucket}: ClickHouse's write fence is held by lease revision ${next.fencedBy}, newer than this owner's ${revision}`);
    }
    await storeFence(this.client, shard.tenant, shard.table, shard.bucket, next.token, opts);
    return next.token;
  }

  /** `_lsn -> rows` of the shard in [lsnFrom, lsnTo], pruned to partitions of [tsMin, tsMax]. */
  landedCounts(shard: ShardAddress, spec: TableSpec, lsnFrom: number, lsnTo: number, tsMinMicros: number, tsMaxMicros: number, signal?: AbortSignal): Promise<Map<number, number>> {
    return landedLsns(this.client, shard.tenant, spec.name, shard.bucket, lsnFrom, lsnTo, {
      tsMinMicros,
      tsMaxMicros,
      timeColumn: spec.timeColumn,
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /** `_lsn -> landed _row values (ascending)` for `lsns` of the shard, in one query. */
  async landedRowSets(shard: ShardAddress, spec: TableSpec, lsns: readonly number[], signal?: AbortSignal): Promise<Map<number, Uint32Array>> {
    const out = new Map<number, Uint32Array>();
    if (lsns.length === 0) return out;
    const list = lsns.map((l) => checkedInt(l, "LSN")).join(", ");
    const sql =
      `SELECT ${quoteIdent(LSN_COLUMN)}, ${quoteIdent(ROW_COLUMN)} FROM ${qualifiedTable(shard.tenant, spec.name)} ` +
      `WHERE ${quoteIdent(SHARD_COLUMN)} = ${checkedInt(shard.bucket, "bucket")} AND ${quoteIdent(LSN_COLUMN)} IN (${list}) ` +
      `ORDER BY ${quoteIdent(LSN_COLUMN)}, ${quoteIdent(ROW_COLUMN)} FORMAT TabSeparated`;
    const text = await this.client.query(sql, signal === undefined ? {} : { signal });
    const acc = new Map<number, number[]>();
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const tab = line.indexOf("\t");
      const lsn = Number(line.slice(0, tab));
      const row = Number(line.slice(tab + 1));
      if (tab < 0 || !Number.isSafeInteger(lsn) || !Number.isSafeInteger(row)) {
        throw new ClickhouseProtocolError(`landedRowSets: unexpected result line "${line.slice(0, 100)}"`);
      }
      let rows = acc.get(lsn);
      if (rows === undefined) acc.set(lsn, (rows = []));
      rows.push(row);
    }
    for (const [lsn, rows] of acc) out.set(lsn, Uint32Array.from(rows));
    return out;
  }

  /** Highest `_lsn` of the shard above `afterLsn` (0 when there is none). */
  async maxLsnAbove(shard: ShardAddress, spec: TableSpec, afterLsn: number, signal?: AbortSignal): Promise<number> {
    const sql =
      `SELECT max(${quoteIdent(LSN_COLUMN)}) FROM ${qualifiedTable(shard.tenant, spec.name)} ` +
      `WHERE ${quoteIdent(SHARD_COLUMN)} = ${checkedInt(shard.bucket, "bucket")} AND ${quoteIdent(LSN_COLUMN)} > ${checkedInt(afterLsn, "afterLsn")} FORMAT TabSeparated`;
    const v = Number((await this.client.query(sql, signal === undefined ? {} : { signal })).trim());
    if (!Number.isSafeInteger(v)) throw new ClickhouseProtocolError(`maxLsnAbove: unexpected answer from ${sql}`);
    return v;
  }

  /** Highest `_lsn` of the shard at or below `upTo` (0 when there is none): what verified P is checked against. */
  async maxLsnUpTo(shard: ShardAddress, spec: TableSpec, upTo: number, signal?: AbortSignal): Promise<number> {
    const sql =
      `SELECT max(${quoteIdent(LSN_COLUMN)}) FROM ${qualifiedTable(shard.tenant, spec.name)} ` +
      `WHERE ${quoteIdent(SHARD_COLUMN)} = ${checkedInt(shard.bucket, "bucket")} AND ${quoteIdent(LSN_COLUMN)} <= ${checkedInt(upTo, "upTo")} FORMAT TabSeparated`;
    const v = Number((await this.client.query(sql, signal === undefined ? {} : { signal })).trim());
    if (!Number.isSafeInteger(v)) throw new ClickhouseProtocolError(`maxLsnUpTo: unexpected answer from ${sql}`);
    return v;
  }

  /** Rows of the shard with `_lsn = lsn`. */
  async rowsAtLsn(shard: ShardAddress, spec: TableSpec, lsn: number, signal?: AbortSignal): Promise<number> {
    const sql =
      `SELECT count() FROM ${qualifiedTable(shard.tenant, spec.name)} ` +
      `WHERE ${quoteIdent(SHARD_COLUMN)} = ${checkedInt(shard.bucket, "bucket")} AND ${quoteIdent(LSN_COLUMN)} = ${checkedInt(lsn, "LSN")} FORMAT TabSeparated`;
    const v = Number((await this.client.query(sql, signal === undefined ? {} : { signal })).trim());
    if (!Number.isSafeInteger(v)) throw new ClickhouseProtocolError(`rowsAtLsn: unexpected answer from ${sql}`);
    return v;
  }

  /** Number of queries on the server whose query_id starts with `prefix`. */
  async writersRunning(prefix: string, signal?: AbortSignal): Promise<number> {
    if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(prefix)) throw new RangeError(`query id prefix "${prefix}" must be letters, digits, _ . : -`);
    const sql = `SELECT count() FROM system.processes WHERE substring(query_id, 1, ${prefix.length}) = '${prefix}' FORMAT TabSeparated`;
    return Number((await this.client.query(sql, signal === undefined ? {} : { signal })).trim());
  }

  /**
   * Waits until no INSERT of the shard's sink runs on the server (an earlier
   * owner killed mid-INSERT leaves one that may still commit).
   */
  async waitWritersGone(shard: ShardAddress, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const prefix = sinkQueryPrefix(shard);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.writersRunning(prefix, signal);
      if (n === 0) return;
      if (Date.now() >= deadline) {
        throw new SinkWritersRunningError(
          `${n} INSERT(s) of shard ${shard.tenant}/${shard.table}/${shard.bucket} (query_id ${prefix}...) still run on ${this.url} after ${timeoutMs} ms; ` +
            `the sink waits for them before it asks what landed (KILL QUERY them if they hang)`,
        );
      }
      await sleep(50, undefined, signal === undefined ? {} : { signal });
    }
  }

  close(): void {
    this.client.close();
  }
}
