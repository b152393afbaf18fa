// API benchmark (issue 6), one run, peers on the same data:
//   1. Flight DoGet of a 10 M-row range from a node process (hot set) against
//      ClickHouse's own HTTP read of the same rows in RowBinary; both clients
//      count bytes without decoding; pyarrow.flight read_all() as well.
//   2. last-by of 1,000 symbols over gRPC (proxist.v1 Query) p50/p99, with
//      ClickHouse's argMax over HTTP on the same rows as the peer.
//   3. ingest ticks/s over gRPC Ingest and Flight DoPut against the NATS path
//      (TickPublisher) into a gateway-only node, as bench:ingest measures it.
// Writes bench/results/api.json. Scale with BENCH_API_ROWS.
import { execFile } from "node:child_process";
import { request } from "node:http";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { credentials } from "@grpc/grpc-js";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { connect } from "@nats-io/transport-node";
import { FlightDataSchema, FlightDescriptorSchema, FlightDescriptor_DescriptorType } from "../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightData, PutResult } from "../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { IngestBatchSchema } from "../protocols/gen/proxist/v1/api_pb.js";
import type { IngestAck } from "../protocols/gen/proxist/v1/api_pb.js";
import { parseClusterSpec } from "../protocols/tablespec.js";
import { FlightClient, LARGE_READS, ProxistClient, bearer } from "../src/api/index.js";
import { splitOwnIpcStream } from "../src/api/ipc/index.js";
import { createToken } from "../src/auth/index.js";
import { ClickhouseHttp, detectServer, encodeRowBinarySegments, ensureSchema, insertRowBinary } from "../src/clickhouse/index.js";
import type { RowBinarySegment } from "../src/clickhouse/index.js";
import { tickBatchToIpc } from "../src/codec/arrow.js";
import { encodeTickIpcByBucket } from "../src/codec/ipc.js";
import type { TickBatch } from "../src/codec/tickbatch.js";
import { MetadataStore } from "../src/control/index.js";
import { startClickhouseServer } from "../src/runtime/servers/clickhouse.js";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import { MALLOC_TUNABLES } from "../src/config/defaults.js";
import { spawnNodeProcess } from "../test/helpers/nodeproc.js";
import type { NodeProcess } from "../test/helpers/nodeproc.js";
import { genBatches, sessionMicros } from "./gen.js";
import { doGet, natsPublish, query, waitApplied } from "./wire.js";
import type { Client, Read } from "./wire.js";
import { latencies, median, percentile, round, writeResult } from "./lib.js";

const ROWS = Number(process.env.BENCH_API_ROWS ?? 10_000_000);
const SYMBOLS = 1000;
const TENANT = "bench";
const READ_RUNS = 7;
const LASTBY_SAMPLES = 1000;
const LASTBY_ROUNDS = 3;
const INGEST_BATCH = 1000;
const INGEST_BATCHES = Number(process.env.BENCH_API_INGEST_BATCHES ?? 2000);
const INGEST_REPEATS = 3;
const WINDOW = 32;
// No snapshot may start during a measurement (a 10 M-row snapshot holds the node's event loop for seconds).
const NODE_ARGS = ["--snapshot-interval-ms", String(24 * 3600 * 1000)];
const PYTHON = fileURLToPath(new URL("../.venv/bin/python", import.meta.url));
const log = (s: string): void => console.error(`[bench:api ${new Date().toISOString().slice(11, 19)}] ${s}`);

const cluster = parseClusterSpec({ tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 4, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });
const trades = cluster.tenants[0]!.tables[0]!;


async function loadClickhouse(ch: ClickhouseHttp, batches: readonly TickBatch[]): Promise<void> {
  const info = await detectServer(ch);
  await ensureSchema(ch, TENANT, trades);
  let lsn = 0;
  for (let i = 0; i < batches.length; ) {
    const part: RowBinarySegment[] = [];
    let rows = 0;
    while (i < batches.length && rows < 250_000) {
      part.push({ batch: batches[i]!, meta: { lsn: ++lsn, shard: 0 } });
      rows += batches[i++]!.rows;
    }
    await insertRowBinary(ch, TENANT, trades, encodeRowBinarySegments(trades, part), { rows, capabilities: info.capabilities });
  }
  // One part per day: ClickHouse reads the rows in (sym, ts) order, the order the DoGet below asks for.
  await ch.command(`OPTIMIZE TABLE px_${TENANT}.trades FINAL`);
}

/** ClickHouse HTTP read to the end, streaming, counting bytes. */
function clickhouseRead(url: string, sql: string, rows: number): Promise<Read> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytes = 0;
    const req = request(`${url}/?query=${encodeURIComponent(sql)}`, (res) => {
      if (res.statusCode !== 200) reject(new Error(`clickhouse read: HTTP ${res.statusCode}`));
      res.on("data", (b: Buffer) => (bytes += b.length));
      res.on("end", () => resolve({ seconds: (performance.now() - t0) / 1000, rows, bytes }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** ClickHouse HTTP read by curl into /dev/null; the time is curl's own (no process start). */
function curlRead(url: string, sql: string, rows: number): Promise<Read> {
  const argv = ["-sS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", `${url}/?query=${encodeURIComponent(sql)}`];
  return new Promise((resolve, reject) => {
    execFile("curl", argv, { timeout: 600_000 }, (err, stdout) => {
      if (err) return reject(new Error(`curl read failed: ${err.message}`));
      const [bytes, seconds] = stdout.trim().split(" ").map(Number);
      resolve({ seconds: seconds!, rows, bytes: bytes! });
    });
  });
}

interface PyarrowReads {
  readonly stream_seconds: number[];
  readonly stream_rows: number;
  readonly table_seconds: number[];
  readonly rows: number;
}

function pyarrowGet(port: number, token: string, q: unknown, runs: number): Promise<PyarrowReads> {
  const script = fileURLToPath(new URL("./flight_get.py", import.meta.url));
  const argv = [script, "--port", String(port), "--token", token, "--ticket", JSON.stringify(q), "--runs", String(runs)];
  return new Promise((resolve, reject) => {
    // gRPC core in the client allocates each message with malloc: the same tuning as the node keeps its pages warm.
    execFile(PYTHON, argv, { timeout: 600_000, maxBuffer: 1 << 20, env: { ...process.env, GLIBC_TUNABLES: MALLOC_TUNABLES } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`flight_get.py failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout) as PyarrowReads);
    });
  });
}

/**
 * Streams `n` batches on one client-streaming call with at most WINDOW unacked;
 * resolves with the seconds from the first write to the last ack.
 */
function windowed<A>(call: ClientDuplexStream<unknown, A>, n: number, message: (i: number) => unknown[], first: unknown[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let sent = 0;
    let acked = 0;
    const pump = (): void => {
      while (sent < n && sent - acked < WINDOW) for (const m of message(sent++)) call.write(m);
      if (sent === n) call.end();
    };
    call.on("data", () => {
      if (++acked === n) resolve((performance.now() - t0) / 1000);
      else pump();
    });
    call.on("error", reject);
    for (const m of first) call.write(m);
    pump();
  });
}

/** gRPC Ingest; `grouped`: each batch's rows grouped by shard bucket, one record batch per bucket (what TickPublisher sends). */
function grpcIngest(client: Client, token: string, batches: readonly TickBatch[], n: number, grouped: boolean): Promise<number> {
  const call = client.ingest!(bearer(token)) as ClientDuplexStream<unknown, IngestAck>;
  const encode = (b: TickBatch): Uint8Array => (grouped ? encodeTickIpcByBucket(trades, b, trades.shards) : tickBatchToIpc(trades, b));
  return windowed(call, n, (i) => [create(IngestBatchSchema, { table: "trades", arrowIpc: encode(batches[i % batches.length]!) })]);
}

/** Flight DoPut: the descriptor with the schema message, then per batch its dictionary and the record batch. */
function flightPut(client: Client, token: string, batches: readonly TickBatch[], n: number): Promise<number> {
  const call = client.doPut!(bearer(token)) as ClientDuplexStream<unknown, PutResult>;
  const descriptor = create(FlightDescriptorSchema, { type: FlightDescriptor_DescriptorType.PATH, path: ["trades"] });
  const [schema] = splitOwnIpcStream(tickBatchToIpc(trades, batches[0]!));
  const data = (i: number): FlightData[] =>
    splitOwnIpcStream(tickBatchToIpc(trades, batches[i % batches.length]!))
      .slice(1)
      .map((m) => create(FlightDataSchema, { dataHeader: m.header, dataBody: m.body }));
  return windowed(call, n, data, [create(FlightDataSchema, { flightDescriptor: descriptor, dataHeader: schema!.header, dataBody: schema!.body })]);
}

async function main(): Promise<void> {
  const loadBefore = round(loadavg()[0]!, 2);
  const { openMicros, closeMicros } = sessionMicros();
  log(`generating ${ROWS} trades over ${SYMBOLS} symbols`);
  const day = Array.from(genBatches("trades", { symbols: SYMBOLS, ticks: ROWS, batchRows: 10_000, seed: 42 }));
  const nats = await startNatsServer({ auth: "open" });
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  await (await MetadataStore.open(nc)).applyCurrent(cluster);
  const token = await createToken(nc, { tenant: TENANT, role: "writer" });
  const chServer = await startClickhouseServer();
  const ch = new ClickhouseHttp({ url: chServer.httpUrl, requestTimeoutMs: 600_000 });
  let node: NodeProcess | undefined;
  const clients: Client[] = [];
  try {
    // BENCH_API_PROF=DIR: CPU profile of the query node (written when it stops).
    const prof = process.env.BENCH_API_PROF;
    node = await spawnNodeProcess(nats.url, prof ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${prof}` } : {}, ["--shards", "all", ...NODE_ARGS]);
    const address = `127.0.0.1:${node.grpcPort}`;
    const px = new ProxistClient(address, credentials.createInsecure(), LARGE_READS);
    const fl = new FlightClient(address, credentials.createInsecure(), LARGE_READS);
    clients.push(px, fl);

    log("loading the node over NATS");
    // 16 batches in flight while loading.
    const { lastLsn } = await natsPublish(nc, TENANT, trades, day, day.length, 16);
    await waitApplied(px, token, "trades", lastLsn);
    log(`node: ${ROWS} rows applied (last LSN ${lastLsn}); loading ClickHouse`);
    await loadClickhouse(ch, day);
    const chVersion = (await ch.query("SELECT version() FORMAT TabSeparated")).trim();
    day.length = 0;

    // 1. The whole day, symbol by symbol: the order ClickHouse stores it in.
    const range = { table: "trades", t0: openMicros, t1: closeMicros, sort: "symbol" };
    const chSql = `SELECT sym, ts, price, size FROM px_${TENANT}.trades WHERE ts >= ${openMicros} AND ts < ${closeMicros} FORMAT RowBinary`;
    const chRows = Number((await ch.query(`SELECT count() FROM px_${TENANT}.trades WHERE ts >= ${openMicros} AND ts < ${closeMicros}`)).trim());
    if (chRows !== ROWS) throw new Error(`clickhouse holds ${chRows} rows of the day, expected ${ROWS}`);
    const warm = await doGet(fl, token, range);
    if (warm.rows !== ROWS) throw new Error(`DoGet returned ${warm.rows} rows, expected ${ROWS}`);
    await clickhouseRead(chServer.httpUrl, chSql, ROWS);
    const gets: Read[] = [];
    const chReads: Read[] = [];
    for (let r = 0; r < READ_RUNS; r++) {
      gets.push(await doGet(fl, token, range));
      chReads.push(await clickhouseRead(chServer.httpUrl, chSql, ROWS));
      log(`read ${r + 1}: DoGet ${gets.at(-1)!.seconds.toFixed(2)} s (${gets.at(-1)!.bytes} B), ClickHouse ${chReads.at(-1)!.seconds.toFixed(2)} s (${chReads.at(-1)!.bytes} B)`);
    }
    const py = await pyarrowGet(node.grpcPort, token, range, READ_RUNS);
    if (py.rows !== ROWS || py.stream_rows !== ROWS) throw new Error(`pyarrow DoGet read ${py.stream_rows} / ${py.rows} rows, expected ${ROWS}`);
    for (let w = 0; w < 2; w++) await curlRead(chServer.httpUrl, chSql, ROWS);
    const curls: Read[] = [];
    for (let r = 0; r < READ_RUNS; r++) curls.push(await curlRead(chServer.httpUrl, chSql, ROWS));
    log(`native clients: pyarrow stream ${py.stream_seconds.map((s) => s.toFixed(2)).join(" ")} s, read_all ${py.table_seconds.map((s) => s.toFixed(2)).join(" ")} s, curl ${curls.map((c) => c.seconds.toFixed(2)).join(" ")} s`);

    // 2. last-by of every symbol over the wire, and ClickHouse's answer to the same question.
    const lastRows = await query(px, token, { op: "lastBy", table: "trades" });
    if (lastRows !== SYMBOLS) throw new Error(`lastBy returned ${lastRows} rows, expected ${SYMBOLS}`);
    // Rounds of samples: one p50/p99 per round, the median of the rounds reported (a burst of other work moves one round only).
    const lastByRounds: number[][] = [];
    for (let r = 0; r < LASTBY_ROUNDS; r++) {
      lastByRounds.push(await latencies(LASTBY_SAMPLES, () => query(px, token, { op: "lastBy", table: "trades" })));
      log(`lastBy round ${r + 1}: p50 ${percentile(lastByRounds.at(-1)!, 50).toFixed(2)} ms, p99 ${percentile(lastByRounds.at(-1)!, 99).toFixed(2)} ms`);
    }
    const chLastBy = await latencies(200, () => ch.query(`SELECT sym, argMax(ts, ts), argMax(price, ts), argMax(size, ts) FROM px_${TENANT}.trades GROUP BY sym FORMAT RowBinary`));
    log(`ClickHouse last-by p50 ${percentile(chLastBy, 50).toFixed(2)} ms`);
    await node.kill("SIGTERM");
    node = undefined;

    // 3. Ingest into a gateway-only node (no hot-set upkeep), next day's timestamps.
    node = await spawnNodeProcess(nats.url, {}, ["--shards", "none", ...NODE_ARGS]);
    const address2 = `127.0.0.1:${node.grpcPort}`;
    const px2 = new ProxistClient(address2, credentials.createInsecure());
    const fl2 = new FlightClient(address2, credentials.createInsecure());
    clients.push(px2, fl2);
    const batches = Array.from(genBatches("trades", { symbols: SYMBOLS, ticks: 200 * INGEST_BATCH, batchRows: INGEST_BATCH, seed: 7, day: "2024-01-03" }));
    const paths = {
      grpc: (n: number) => grpcIngest(px2, token, batches, n, false),
      grpc_grouped: (n: number) => grpcIngest(px2, token, batches, n, true),
      flight: (n: number) => flightPut(fl2, token, batches, n),
      nats: async (n: number) => (await natsPublish(nc, TENANT, trades, batches, n, WINDOW)).seconds,
    };
    for (const f of Object.values(paths)) await f(300);
    const rates: Record<keyof typeof paths, number[]> = { grpc: [], grpc_grouped: [], flight: [], nats: [] };
    for (let r = 0; r < INGEST_REPEATS; r++) {
      for (const [name, f] of Object.entries(paths) as [keyof typeof paths, (n: number) => Promise<number>][]) {
        rates[name].push((INGEST_BATCHES * INGEST_BATCH) / (await f(INGEST_BATCHES)));
      }
      log(`ingest ${r + 1}: grpc ${Math.round(rates.grpc.at(-1)!)}, grpc grouped ${Math.round(rates.grpc_grouped.at(-1)!)}, flight ${Math.round(rates.flight.at(-1)!)}, nats ${Math.round(rates.nats.at(-1)!)} ticks/s`);
    }

    const rowsPerS = (xs: readonly Read[]) => median(xs.map((x) => x.rows / x.seconds));
    const mbPerS = (xs: readonly Read[]) => median(xs.map((x) => x.bytes / x.seconds / 1e6));
    const pyReads = py.table_seconds.map((seconds): Read => ({ seconds, rows: py.rows, bytes: gets[0]!.bytes }));
    const doget = rowsPerS(pyReads);
    const pyLoop = median(py.stream_seconds.map((s) => py.stream_rows / s));
    const chRead = rowsPerS(curls);
    const natsRate = median(rates.nats);
    writeResult(
      "api",
      {
        doget_rows_per_s: Math.round(doget),
        clickhouse_read_rows_per_s: Math.round(chRead),
        doget_vs_clickhouse_ratio: round(doget / chRead),
        doget_mb_per_s: round(mbPerS(pyReads), 1),
        clickhouse_read_mb_per_s: round(mbPerS(curls), 1),
        pyarrow_batch_loop_rows_per_s: Math.round(pyLoop),
        node_doget_rows_per_s: Math.round(rowsPerS(gets)),
        node_clickhouse_read_rows_per_s: Math.round(rowsPerS(chReads)),
        node_doget_vs_clickhouse_ratio: round(rowsPerS(gets) / rowsPerS(chReads)),
        grpc_lastby_p50_ms: round(median(lastByRounds.map((xs) => percentile(xs, 50)))),
        grpc_lastby_p99_ms: round(median(lastByRounds.map((xs) => percentile(xs, 99)))),
        clickhouse_lastby_p50_ms: round(percentile(chLastBy, 50)),
        clickhouse_lastby_p99_ms: round(percentile(chLastBy, 99)),
        grpc_ingest_ticks_per_s: Math.round(median(rates.grpc)),
        grpc_grouped_ingest_ticks_per_s: Math.round(median(rates.grpc_grouped)),
        flight_ingest_ticks_per_s: Math.round(median(rates.flight)),
        nats_ingest_ticks_per_s: Math.round(natsRate),
        grpc_vs_nats_ingest_ratio: round(median(rates.grpc) / natsRate),
        flight_vs_nats_ingest_ratio: round(median(rates.flight) / natsRate),
      },
      {
        setup: [
          `tenant ${TENANT}, trades (sym, ts, price, size), 4 shards, ${ROWS} rows over ${SYMBOLS} symbols in one day; node, nats-server, clickhouse-server ${chVersion} and the clients on this machine`,
          `read: Flight DoGet of the whole day sorted by symbol (the node's hot set) vs SELECT sym, ts, price, size ... FORMAT RowBinary of the same rows over ClickHouse HTTP (one part, stored in (sym, ts) order). Headline pair, native clients: pyarrow.flight do_get().read_all() into a pyarrow Table vs curl into /dev/null (curl's time_total), median of ${READ_RUNS} each after two warm-up reads, the Python process with the node's GLIBC_TUNABLES; MB/s counts the bytes on the wire (Arrow IPC vs RowBinary). pyarrow_batch_loop: the same DoGet read by a Python loop over the batches, dropping each (slower than read_all: the loop runs in Python, read_all in C++). node_* pair: Node clients in this process (grpc-js FlightClient with a 16 MiB window, node:http), both counting bytes without decoding, median of ${READ_RUNS} alternating runs`,
          `last-by: proxist.v1 Query {op: lastBy} of all ${SYMBOLS} symbols over ${ROWS} hot rows, one call at a time, ${LASTBY_ROUNDS} rounds of ${LASTBY_SAMPLES} samples (50 warm-up each), median of the rounds' p50 and p99; ClickHouse peer: argMax ... GROUP BY sym over HTTP, 200 samples`,
          `node processes run with GLIBC_TUNABLES=${MALLOC_TUNABLES} (as ./proxist and the Dockerfile start them); this process with GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? "(unset)"}`,
          `ingest: ${INGEST_BATCH}-tick batches, ${INGEST_BATCHES} per run, ${WINDOW} unacked at most, median of ${INGEST_REPEATS} rounds (paths alternate); a gateway-only node (--shards none) as in bench:ingest; gRPC and Flight clients send plain Arrow IPC per batch (as pyarrow would: the gateway decodes, splits by bucket and re-encodes), grpc_grouped sends each batch's rows grouped by bucket as TickPublisher does over NATS (its default; the gateway forwards each bucket's bytes)`,
        ],
        runs: {
          doget_s: gets.map((x) => round(x.seconds)),
          clickhouse_read_s: chReads.map((x) => round(x.seconds)),
          pyarrow_batch_loop_s: py.stream_seconds.map((s) => round(s)),
          pyarrow_read_all_s: py.table_seconds.map((s) => round(s)),
          curl_clickhouse_read_s: curls.map((x) => round(x.seconds)),
          grpc_lastby_ms: lastByRounds.map((xs) => ({ p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)) })),
          ingest_ticks_per_s: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, v.map(Math.round)])),
        },
        bytes: { doget: gets[0]!.bytes, clickhouse_rowbinary: chReads[0]!.bytes },
        load_avg_1m: { before: loadBefore, after: round(loadavg()[0]!, 2) },
      },
    );
  } finally {
    clients.forEach((c) => c.close());
    await node?.kill("SIGTERM");
    ch.close();
    await chServer.stop();
    await nc.close();
    await nats.dispose();
  }
}

await main();
