// Console benchmark (issue 18), one run:
//   1. sql_parse_plan_p50_us: compiling a typical SQL statement (rolling vwap
//      over a time window with symbol and time filters) to the query model,
//      validation included, in process; each text new (a time literal moves),
//      its shape seen before (literals bound into the shape's parse). The
//      notes give a shape never seen (the whole parse) and the same text again.
//   2. http_ingest_lines_per_s: InfluxDB line protocol over POST /v1/ingest into
//      a gateway-only node process (--shards none), bodies of 10,000 lines
//      (bytes, encoded before the clock starts), 8 in flight; every body acked
//      after the WAL stored it.
//   3. http_query_lastby_p50_ms: SELECT * FROM trades LATEST ON ts PARTITION BY sym
//      over POST /v1/query (JSON answer) on a node process holding the rows,
//      1,000 symbols.
//   4. flightsql_vs_flight_doget_ratio: the same rows (min(rows, 1 M)) read from
//      pyarrow through Flight SQL (GetFlightInfo of a CommandStatementQuery, then
//      DoGet of its ticket) and through plain Flight DoGet of the JSON query, in
//      alternating rounds; plain seconds / Flight SQL seconds (medians), so 1.0
//      means Flight SQL costs nothing extra (bench/flightsql_get.py).
// Writes bench/results/console.json. Scale with BENCH_CONSOLE_ROWS (default 2 M).
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { parseClusterSpec } from "../protocols/tablespec.js";
import { createToken } from "../src/auth/index.js";
import { MALLOC_TUNABLES } from "../src/config/defaults.js";
import { MetadataStore } from "../src/control/index.js";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import { compileSql } from "../src/sql/index.js";
import { spawnNodeProcess } from "../test/helpers/nodeproc.js";
import type { NodeProcess } from "../test/helpers/nodeproc.js";
import { sessionMicros, symbolNames } from "./gen.js";
import { latencies, median, percentile, round, writeResult } from "./lib.js";

const ROWS = Number(process.env.BENCH_CONSOLE_ROWS ?? 2_000_000);
const SYMBOLS = Number(process.env.BENCH_CONSOLE_SYMBOLS ?? 1000);
const BODY_LINES = 10_000;
const IN_FLIGHT = 8;
const PARSE_SAMPLES = 5000;
const LASTBY_SAMPLES = Number(process.env.BENCH_CONSOLE_QUERIES ?? 500);
const TENANT = "bench";
const FLIGHTSQL_ROWS = Math.min(ROWS, 1_000_000);
const FLIGHTSQL_ROUNDS = Number(process.env.BENCH_CONSOLE_FLIGHTSQL_ROUNDS ?? 7);
const PYTHON = fileURLToPath(new URL("../.venv/bin/python", import.meta.url));
const NODE_ARGS = ["--snapshot-interval-ms", String(24 * 3600 * 1000)];
const log = (s: string): void => console.error(`[bench:console ${new Date().toISOString().slice(11, 19)}] ${s}`);

const cluster = parseClusterSpec({
  tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 4, maxBatchRows: 100_000, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] }] }],
});

const TYPICAL_SQL =
  "SELECT sym, ts, price, vwap(price, size) OVER (PARTITION BY sym ORDER BY ts RANGE INTERVAL '5m' PRECEDING) AS vwap5 " +
  "FROM trades WHERE sym IN ('SYM00001', 'SYM00002', 'SYM00003') AND ts >= '2024-01-02T14:30:00Z' AND ts < '2024-01-02T21:00:00Z'";

/**
 * µs per compile. "literals": every call new text (a time literal changes), the
 * statement's shape seen before (a dashboard or an application: its literals
 * are bound into the shape's parse); "shape": every call a shape never seen (an
 * alias changes: the whole PEG parse); "same": the same text again.
 */
function parsePlanMicros(mode: "literals" | "shape" | "same"): number[] {
  const text = (i: number): string =>
    mode === "same"
      ? TYPICAL_SQL
      : mode === "literals"
        ? TYPICAL_SQL.replace("14:30:00Z", `14:30:00.${String(i % 1_000_000).padStart(6, "0")}Z`)
        : TYPICAL_SQL.replace("AS vwap5", `AS vwap_${i}`);
  const samples = mode === "shape" ? PARSE_SAMPLES / 5 : PARSE_SAMPLES;
  for (let i = 0; i < 500; i++) compileSql(text(i + 10 * PARSE_SAMPLES));
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const sql = text(i);
    const t0 = performance.now();
    compileSql(sql);
    out.push((performance.now() - t0) * 1000);
  }
  return out.sort((a, b) => a - b);
}

/**
 * Line protocol bodies covering the session: ROWS lines over SYMBOLS symbols, nanosecond timestamps.
 * As bytes, encoded once: the client (this process) shares the machine's two cores with the node and
 * NATS, and fetch() would encode a string body to UTF-8 again for every request (a client elsewhere
 * sends the bytes it has; that work is not the node's).
 */
function bodies(): Buffer[] {
  const { openMicros, closeMicros } = sessionMicros();
  const syms = symbolNames(SYMBOLS);
  const step = Math.max(1, Math.floor((closeMicros - openMicros) / ROWS));
  const out: Buffer[] = [];
  for (let start = 0; start < ROWS; start += BODY_LINES) {
    const lines: string[] = [];
    for (let i = start; i < Math.min(ROWS, start + BODY_LINES); i++) {
      lines.push(`trades,sym=${syms[i % SYMBOLS]} price=${(100 + (i % 997) / 100).toFixed(2)},size=${1 + (i % 500)}i ${openMicros + i * step}000`);
    }
    out.push(Buffer.from(lines.join("\n"), "utf8"));
  }
  return out;
}

async function ingestAll(node: NodeProcess, token: string, all: readonly Buffer[]): Promise<{ seconds: number; retries: number }> {
  let next = 0;
  let retries = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < all.length) {
        const body = all[next++]!;
        for (;;) {
          const r = await fetch(`http://127.0.0.1:${node.httpPort}/v1/ingest/trades`, { method: "POST", body, headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" } });
          const text = await r.text();
          if (r.status === 200) break;
          if (r.status !== 429 && r.status !== 503) throw new Error(`ingest HTTP ${r.status}: ${text}`);
          retries++;
          await new Promise((res) => setTimeout(res, 20));
        }
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, retries };
}

interface FlightSqlReads {
  readonly flightsql_seconds: number[];
  readonly doget_seconds: number[];
  readonly flightsql_rows: number;
  readonly doget_rows: number;
}

/** bench/flightsql_get.py against `port`: the same rows through Flight SQL and plain DoGet, alternating. */
function flightSqlVsDoGet(port: number, token: string): Promise<FlightSqlReads & { sql: string }> {
  // The Flight SQL messages come from the repository's FlightSql.proto, as a descriptor set buf writes.
  const dir = mkdtempSync(join(tmpdir(), "px-bench-flightsql-"));
  const descriptors = join(dir, "flightsql.binpb");
  const protocols = fileURLToPath(new URL("../protocols", import.meta.url));
  execFileSync(fileURLToPath(new URL("../node_modules/.bin/buf", import.meta.url)), ["build", "-o", descriptors, "--path", "proto/arrow/flight/protocol/sql/FlightSql.proto"], { cwd: protocols });
  const sql = `SELECT * FROM trades LIMIT ${FLIGHTSQL_ROWS}`;
  const ticket = JSON.stringify({ op: "range", table: "trades", limit: FLIGHTSQL_ROWS });
  const script = fileURLToPath(new URL("./flightsql_get.py", import.meta.url));
  const argv = [script, "--port", String(port), "--token", token, "--descriptors", descriptors, "--sql", sql, "--ticket", ticket, "--rounds", String(FLIGHTSQL_ROUNDS)];
  return new Promise<FlightSqlReads & { sql: string }>((resolve, reject) => {
    execFile(PYTHON, argv, { timeout: 900_000, maxBuffer: 1 << 20, env: { ...process.env, GLIBC_TUNABLES: MALLOC_TUNABLES } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`flightsql_get.py failed: ${err.message}\n${stderr}`));
      resolve({ ...(JSON.parse(stdout) as FlightSqlReads), sql });
    });
  }).finally(() => rmSync(dir, { recursive: true, force: true }));
}

async function main(): Promise<void> {
  log(`rows ${ROWS}, symbols ${SYMBOLS}`);
  const parse = parsePlanMicros("literals");
  const shape = parsePlanMicros("shape");
  const cached = parsePlanMicros("same");
  log(`sql parse+plan p50 ${round(percentile(parse, 50), 1)} us (new shape: ${round(percentile(shape, 50), 1)} us, text seen before: ${round(percentile(cached, 50), 1)} us)`);

  const nats = await startNatsServer({ auth: "open" });
  const nc = await connect({ servers: nats.url });
  const nodes: NodeProcess[] = [];
  try {
    await (await MetadataStore.open(nc)).applyCurrent(cluster);
    const writer = await createToken(nc, { tenant: TENANT, role: "writer" });
    const reader = await createToken(nc, { tenant: TENANT, role: "reader" });
    // Ingest into a gateway-only node: its figure is the HTTP edge and the WAL, not the hot set.
    const gateway = await spawnNodeProcess(nats.url, {}, [...NODE_ARGS, "--shards", "none"]);
    nodes.push(gateway);
    const all = bodies();
    const ing = await ingestAll(gateway, writer, all);
    const linesPerS = ROWS / ing.seconds;
    log(`http ingest ${Math.round(linesPerS)} lines/s (${ing.retries} retried 429/503)`);

    // The query node replays the WAL into its hot set, then answers last-by over HTTP.
    const holder = await spawnNodeProcess(nats.url, {}, NODE_ARGS);
    nodes.push(holder);
    const q = (): Promise<unknown> =>
      fetch(`http://127.0.0.1:${holder.httpPort}/v1/query`, { method: "POST", body: "SELECT * FROM trades LATEST ON ts PARTITION BY sym", headers: { authorization: `Bearer ${reader}` } }).then((r) => r.json());
    const deadline = Date.now() + 600_000;
    for (;;) {
      const r = (await fetch(`http://127.0.0.1:${holder.httpPort}/v1/query`, { method: "POST", body: "SELECT count(*) FROM trades", headers: { authorization: `Bearer ${reader}` } }).then((x) => x.json())) as { rows?: number[][] };
      if (r.rows?.[0]?.[0] === ROWS) break;
      if (Date.now() > deadline) throw new Error(`the query node holds ${JSON.stringify(r)} rows after 10 min, want ${ROWS}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    const lastBy = await latencies(LASTBY_SAMPLES, q);
    log(`http last-by p50 ${round(percentile(lastBy, 50), 2)} ms`);

    const fsql = await flightSqlVsDoGet(holder.grpcPort, reader);
    if (fsql.flightsql_rows !== FLIGHTSQL_ROWS || fsql.doget_rows !== FLIGHTSQL_ROWS) {
      throw new Error(`Flight SQL read ${fsql.flightsql_rows} rows and DoGet ${fsql.doget_rows}, want ${FLIGHTSQL_ROWS} each`);
    }
    const fsqlRatio = median(fsql.doget_seconds) / median(fsql.flightsql_seconds);
    log(`flight sql vs doget ${round(fsqlRatio, 3)} (${round(median(fsql.flightsql_seconds), 3)} s vs ${round(median(fsql.doget_seconds), 3)} s for ${FLIGHTSQL_ROWS} rows)`);

    writeResult(
      "console",
      {
        sql_parse_plan_p50_us: round(percentile(parse, 50), 1),
        http_query_lastby_p50_ms: round(percentile(lastBy, 50), 3),
        http_ingest_lines_per_s: Math.round(linesPerS),
        flightsql_vs_flight_doget_ratio: round(fsqlRatio, 3),
      },
      {
        sql: TYPICAL_SQL,
        sql_parse_plan_p99_us: round(percentile(parse, 99), 1),
        // A statement of a shape never seen: the whole PEG parse (node-sql-parser), then compile and validation.
        sql_parse_plan_new_shape_p50_us: round(percentile(shape, 50), 1),
        sql_parse_plan_new_shape_p99_us: round(percentile(shape, 99), 1),
        // The same text again (dashboards, --watch): the parsed statement is reused, only compile and validation run.
        sql_plan_cached_p50_us: round(percentile(cached, 50), 1),
        http_query_lastby_p99_ms: round(percentile(lastBy, 99), 3),
        rows: ROWS,
        symbols: SYMBOLS,
        ingest: { body_lines: BODY_LINES, in_flight: IN_FLIGHT, seconds: round(ing.seconds, 2), retried_bodies: ing.retries, node: "gateway only (--shards none)", client: "the bench process (not the node's), bodies encoded to bytes once before the timed phase" },
        lastby: { samples: LASTBY_SAMPLES, answer: "JSON", node: "hosts all 4 shards, hot set only" },
        flightsql: {
          rows: FLIGHTSQL_ROWS,
          rounds: FLIGHTSQL_ROUNDS,
          sql: fsql.sql,
          client: "pyarrow.flight, read_all into a Table; Flight SQL round = GetFlightInfo(CommandStatementQuery) + DoGet; plain round = DoGet of the JSON query; alternating",
          flightsql_seconds: fsql.flightsql_seconds.map((x) => round(x, 4)),
          doget_seconds: fsql.doget_seconds.map((x) => round(x, 4)),
        },
      },
    );
  } finally {
    for (const n of nodes) await n.kill();
    await nc.close();
    await nats.dispose();
  }
}

await main();
