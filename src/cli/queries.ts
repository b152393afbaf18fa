// pxctl queries --slow: the slow-query log (ClickHouse px_system.query_log),
// newest first, as a table for people or JSON/YAML for scripts. Reads
// ClickHouse over HTTP directly: the log lives there, not in NATS.
import type { Command, OutputFormat } from "./args.js";
import { ClickhouseHttp, readQueryLog } from "../clickhouse/index.js";
import { clickhouseAuthFromEnv } from "../runtime/clickhouseauth.js";
import type { QueryLogRow } from "../clickhouse/index.js";
import { CliError, EXIT } from "./exitcodes.js";
import { structured } from "./render.js";

type SlowCommand = Extract<Command, { kind: "queries.slow" }>;

/** The rows as a table: when, tenant, ms, result rows, cold rows, caller, the query and its plan on their own lines. */
export function slowQueriesTable(rows: readonly QueryLogRow[]): string {
  if (rows.length === 0) return "no slow queries in this window";
  return rows
    .map((r) => {
      const when = new Date(r.eventTime * 1000).toISOString().replace("T", " ").slice(0, 19);
      const head = `${when}  ${r.tenant}  ${r.durationMs.toFixed(1)} ms  ${r.resultRows} rows (${r.rowsCold} cold)  node ${r.node}  ${r.caller}${r.error ? `  ERROR ${r.error}` : ""}`;
      return `${head}\n  query:  ${r.query}\n  plan:   ${r.plan}\n  stages: ${r.stages}`;
    })
    .join("\n");
}

export async function slowQueries(c: SlowCommand, output: OutputFormat, io: { readonly stdout: (text: string) => void; readonly env?: Readonly<Record<string, string | undefined>> }): Promise<number> {
  // PX_CLICKHOUSE_USER / PX_CLICKHOUSE_PASSWORD_FILE, as a node reads them (compose: infra/secrets/clickhouse_password).
  const ch = new ClickhouseHttp({ url: c.clickhouseUrl, requestTimeoutMs: 10_000, ...clickhouseAuthFromEnv(io.env ?? {}) });
  try {
    let rows: QueryLogRow[];
    try {
      rows = await readQueryLog(ch, { sinceSeconds: c.sinceSeconds, ...(c.tenant === undefined ? {} : { tenant: c.tenant }) });
    } catch (e) {
      const msg = (e as Error).message;
      // No slow query was ever recorded: the table does not exist yet.
      if (/doesn't exist|does not exist|UNKNOWN_TABLE|UNKNOWN_DATABASE|Code: 60|Code: 81/i.test(msg)) rows = [];
      else throw new CliError(EXIT.unreachable, `cannot read px_system.query_log from ClickHouse at ${c.clickhouseUrl} (${msg}); pass --clickhouse URL`, { cause: e });
    }
    io.stdout(output === "table" ? slowQueriesTable(rows) : structured(rows, output));
    return EXIT.ok;
  } finally {
    ch.close();
  }
}
