// px_system.query_log: one row per slow query (like ClickHouse's own
// system.query_log), written by the node that coordinated it and read by
// `pxctl queries --slow`. Plan, stages and the query itself are JSON text, so
// the table keeps one shape as the planner grows; SQL both 18.16 and current
// ClickHouse accept.
import type { ClickhouseHttp } from "./http.js";

export const QUERY_LOG_TABLE = "px_system.query_log";

export interface QueryLogRow {
  /** Unix seconds. */
  readonly eventTime: number;
  readonly tenant: string;
  readonly node: string;
  readonly durationMs: number;
  /** The query as the client sent it (JSON). */
  readonly query: string;
  /** Shards, hot/cold split, pushed-down SQL, fan-out parts (JSON). */
  readonly plan: string;
  /** Milliseconds per stage (JSON). */
  readonly stages: string;
  readonly rowsCold: number;
  readonly resultRows: number;
  readonly caller: string;
  /** Empty when the query succeeded. */
  readonly error: string;
}

const DDL = [
  "CREATE DATABASE IF NOT EXISTS px_system",
  `CREATE TABLE IF NOT EXISTS ${QUERY_LOG_TABLE} (
    event_time DateTime, tenant String, node String, duration_ms Float64, query String, plan String, stages String,
    rows_cold UInt64, result_rows UInt64, caller String, error String
  ) ENGINE = MergeTree() PARTITION BY toDate(event_time) ORDER BY (tenant, event_time)`,
];

export async function ensureQueryLog(ch: ClickhouseHttp): Promise<void> {
  for (const sql of DDL) await ch.command(sql);
}

export async function insertQueryLog(ch: ClickhouseHttp, rows: readonly QueryLogRow[]): Promise<void> {
  if (rows.length === 0) return;
  const body = rows
    .map((r) =>
      JSON.stringify({
        event_time: Math.floor(r.eventTime),
        tenant: r.tenant,
        node: r.node,
        duration_ms: r.durationMs,
        query: r.query,
        plan: r.plan,
        stages: r.stages,
        rows_cold: r.rowsCold,
        result_rows: r.resultRows,
        caller: r.caller,
        error: r.error,
      }),
    )
    .join("\n");
  await ch.insert(`INSERT INTO ${QUERY_LOG_TABLE} FORMAT JSONEachRow`, new TextEncoder().encode(body + "\n"));
}

/** Rows of the last `sinceSeconds`, newest first (at most `limit`), optionally of one tenant. */
export async function readQueryLog(ch: ClickhouseHttp, o: { sinceSeconds: number; tenant?: string; limit?: number }): Promise<QueryLogRow[]> {
  if (!Number.isFinite(o.sinceSeconds) || o.sinceSeconds <= 0) throw new Error(`since must be a positive number of seconds, got ${o.sinceSeconds}`);
  const tenant = o.tenant === undefined ? "" : ` AND tenant = '${o.tenant.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  const text = await ch.query(
    `SELECT toUnixTimestamp(event_time) AS eventTime, tenant, node, duration_ms AS durationMs, query, plan, stages, rows_cold AS rowsCold, result_rows AS resultRows, caller, error
     FROM ${QUERY_LOG_TABLE} WHERE event_time >= now() - ${Math.ceil(o.sinceSeconds)}${tenant}
     ORDER BY event_time DESC LIMIT ${Math.max(1, Math.floor(o.limit ?? 100))} FORMAT JSONEachRow`,
  );
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const r = JSON.parse(l) as Record<string, unknown>;
      return { ...(r as unknown as QueryLogRow), eventTime: Number(r.eventTime), durationMs: Number(r.durationMs), rowsCold: Number(r.rowsCold), resultRows: Number(r.resultRows) };
    });
}
