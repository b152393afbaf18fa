// Tenants benchmark (issue 13): what locking NATS and per-tenant quotas cost.
// 1. Noisy neighbour: one node process (gRPC API, every shard) on a locked
//    nats-server; tenant `calm` (no quotas) publishes batches one at a time at a
//    normal rate and asks last-by queries, alone and then while tenant `noisy`
//    floods ingest at 10x its ingestTicksPerSecond and heavy range queries at 10x
//    its concurrentQueries, from another process (so the flood does not share
//    the measuring client's event loop). Rounds alternate alone / flooded; the
//    ratios are calm's p99 (pooled over rounds) flooded / alone. Every refusal
//    the flood got is counted (quota_refusals).
// 2. Auth vs open: bench:ingest's e2e path (a gateway-only node process, a
//    TickPublisher with a window) on an open plaintext nats-server, on a locked
//    one (the node with service credentials, the publisher with a tenant
//    publisher's) and on a locked one that speaks TLS only (both clients
//    trusting its CA), in rounds whose order rotates, same batches; figures =
//    median of the per-round ratios: auth + TLS / open (the issue's
//    auth_ingest_vs_open_ratio) and auth alone / open.
// Writes bench/results/tenants.json. Sizes: BENCH_TENANTS_SECONDS (per phase, 10),
// BENCH_TENANTS_ROUNDS (3), BENCH_TENANTS_BATCHES (auth part, 5000 per side and round),
// BENCH_TENANTS_AUTH_ROUNDS (5).
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import type { NatsServer } from "../src/runtime/servers/nats.js";
import { loadOrCreateNatsAuth, writeSecretFile } from "../src/runtime/servers/natsauth.js";
import type { NatsAuthFiles } from "../src/runtime/servers/natsauth.js";
import { NATS_CREDS_ENV, TLS_CA_ENV, natsCredsOptions, natsTlsOptions } from "../src/runtime/natsclient.js";
import { initCerts } from "../src/runtime/certs.js";
import { MetadataStore } from "../src/control/index.js";
import { createToken, mintUser } from "../src/auth/index.js";
import { IngestRejectedError, TickPublisher } from "../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../src/demo/randomwalk.js";
import { encodeTickIpcByBucket } from "../src/codec/ipcwrite.js";
import { parseClusterSpec } from "../protocols/tablespec.js";
import type { TableSpec } from "../protocols/tablespec.js";
import { spawnNodeProcess } from "../test/helpers/nodeproc.js";
import type { NodeProcess } from "../test/helpers/nodeproc.js";
import { NodeQuerier } from "../test/helpers/nodequery.js";
import { median, percentile, round, writeResult } from "./lib.js";

const SECONDS = Number(process.env.BENCH_TENANTS_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_TENANTS_ROUNDS ?? 3);
const AUTH_BATCHES = Number(process.env.BENCH_TENANTS_BATCHES ?? 5000);
const AUTH_ROUNDS = Number(process.env.BENCH_TENANTS_AUTH_ROUNDS ?? 5);
/** calm's normal load: one batch of CALM_BATCH ticks every CALM_EVERY_MS, one last-by every QUERY_EVERY_MS. */
const CALM_BATCH = 100;
const CALM_EVERY_MS = 20;
const QUERY_EVERY_MS = 50;
/** noisy's quotas; the flood asks 10x each. */
const NOISY_TICKS_PER_S = 20_000;
const NOISY_QUERIES = 2;
const NOISY_QUERY_BYTES = 1 << 20;
const NOISY_RESULT_ROWS = 10_000;
const FLOOD_BATCH = 1_000;
/** noisy's rows before the run: its full-range query is over its result-rows and memory quotas from the start. */
const NOISY_PRELOAD_BATCHES = 100;
/** A flood query worker's pause after a refusal (what a client does on RESOURCE_EXHAUSTED; without it refusals alone would be the load). */
const FLOOD_QUERY_BACKOFF_MS = 100;
/** The flood process's niceness (BENCH_TENANTS_FLOOD_NICE; 0 = same priority as the node and calm). */
const FLOOD_NICE = Number(process.env.BENCH_TENANTS_FLOOD_NICE ?? 10);
/** What noisy floods (BENCH_TENANTS_FLOOD: both, ingest or queries): the parts apart say which one costs calm. */
const FLOOD_KIND = process.env.BENCH_TENANTS_FLOOD ?? "both";
/** How many times its quotas noisy asks (BENCH_TENANTS_FLOOD_X; 10 per issue 13; 1 = a tenant exactly at its limits). */
const FLOOD_X = Number(process.env.BENCH_TENANTS_FLOOD_X ?? 10);
const SYMBOLS = 200;
const WINDOW = 32;

const log = (s: string): void => console.error(`[bench:tenants ${new Date().toISOString().slice(11, 19)}] ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const table = { name: "trades", shards: 4, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] };
const SPEC = parseClusterSpec({
  tenants: [
    { name: "calm", tables: [table] },
    { name: "noisy", tables: [table], quotas: { ingestTicksPerSecond: NOISY_TICKS_PER_S, concurrentQueries: NOISY_QUERIES, queryMemoryBytes: NOISY_QUERY_BYTES, resultRows: NOISY_RESULT_ROWS } },
    { name: "default", tables: [table] },
  ],
});
const trades: TableSpec = SPEC.tenants[0]!.tables[0]!;

/** A locked nats-server with a fresh identity; the service creds path is set for node processes. */
async function lockedNats(): Promise<{ server: NatsServer; auth: NatsAuthFiles; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "px-bench-auth-"));
  const auth = await loadOrCreateNatsAuth(join(dir, "auth"));
  process.env[NATS_CREDS_ENV] = auth.credsPath("service");
  return { server: await startNatsServer({ auth }), auth, dir };
}

/** A tenant publisher's `.creds` (what a real publisher connects with), written 0600 under `dir`. */
async function publisherCreds(auth: NatsAuthFiles, dir: string, tenant: string): Promise<string> {
  const path = join(dir, `${tenant}-publisher.creds`);
  writeSecretFile(path, (await mintUser(auth.identity, { role: "publisher", tenant, ttlSeconds: 86_400 })).creds);
  return path;
}

/** Runs `f` every `everyMs` (not overlapping itself) until `untilMs` (performance.now()). */
async function paced(everyMs: number, untilMs: number, f: () => Promise<void>): Promise<void> {
  let next = performance.now();
  while (performance.now() < untilMs) {
    await f();
    next += everyMs;
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
  }
}

interface Sides {
  ack: number[];
  query: number[];
}

/** calm's load for SECONDS: paced publishes (ack latency) and paced last-by queries (latency), concurrently. */
async function calmLoad(pub: TickPublisher, q: NodeQuerier, walk: RandomWalk, into: Sides): Promise<void> {
  const until = performance.now() + SECONDS * 1000;
  await Promise.all([
    paced(CALM_EVERY_MS, until, async () => {
      const b = walk.trades(CALM_BATCH, 1_000);
      const t0 = performance.now();
      await pub.publish(b);
      into.ack.push(performance.now() - t0);
    }),
    paced(QUERY_EVERY_MS, until, async () => {
      const t0 = performance.now();
      const a = await q.query({ table: "trades", op: "lastBy" });
      if (a.error !== undefined) throw new Error(`calm's last-by failed: ${a.error.details}`);
      into.query.push(performance.now() - t0);
    }),
  ]);
}

/** The flood, in a child process: `noisy` at 10x its quotas until SIGTERM; prints its counts as JSON on exit. */
async function flood(natsUrl: string, creds: string, grpcPort: number, token: string): Promise<void> {
  const nc = await connect({ servers: natsUrl, noAsyncTraces: true, ...natsCredsOptions(creds) });
  const pub = new TickPublisher(nc, { tenant: "noisy", spec: trades, maxAttempts: 1, maxInFlight: 256 });
  const q = new NodeQuerier(grpcPort, token);
  const walk = new RandomWalk(symbolNames(SYMBOLS), 2, 1.7e15);
  const counts = { ingestAcked: 0, ingestRefused: 0, ingestOtherErrors: 0, queriesAnswered: 0, queriesRefused: 0, queryOtherErrors: 0 };
  let stop = false;
  process.on("SIGTERM", () => (stop = true));
  // Encoded once (as TickPublisher.publish would, grouped by bucket): the flood's client costs no CPU per batch.
  const payload = encodeTickIpcByBucket(trades, walk.trades(FLOOD_BATCH, 1_000), trades.shards);
  // Connected and about to flood: the parent starts measuring now.
  process.send?.("flooding");
  // 10x the tick quota, paced in 10 ms steps; a refused batch is counted and dropped (not retried: it is the flood).
  const batchesPerStep = (FLOOD_X * NOISY_TICKS_PER_S) / FLOOD_BATCH / 100;
  const ingest = (async () => {
    let next = performance.now();
    let owed = 0;
    while (!stop && FLOOD_KIND !== "queries") {
      // Fractional batches carry over to the next step: the offered rate is exact at any multiple.
      owed += batchesPerStep;
      for (; owed >= 1; owed--) {
        pub.publishIpc(payload).then(
          () => counts.ingestAcked++,
          (e: unknown) => (e instanceof IngestRejectedError && e.code === "RESOURCE_EXHAUSTED" ? counts.ingestRefused++ : counts.ingestOtherErrors++),
        );
      }
      next += 10;
      const wait = next - performance.now();
      if (wait > 0) await sleep(wait);
    }
  })();
  // 10x its concurrentQueries, each a range over everything it has (refused by its row, memory or concurrency quota, or answered).
  const queries = Array.from({ length: FLOOD_X * NOISY_QUERIES }, async () => {
    while (!stop && FLOOD_KIND !== "ingest") {
      const a = await q.query({ table: "trades" });
      if (a.error === undefined) counts.queriesAnswered++;
      else if (a.error.details.includes("quota")) counts.queriesRefused++;
      else counts.queryOtherErrors++;
      if (a.error !== undefined) await sleep(FLOOD_QUERY_BACKOFF_MS);
    }
  });
  await Promise.all([ingest, ...queries]);
  await sleep(500);
  process.stdout.write(JSON.stringify(counts) + "\n");
  await nc.close();
  process.exit(0);
}

interface FloodCounts {
  ingestAcked: number;
  ingestRefused: number;
  ingestOtherErrors: number;
  queriesAnswered: number;
  queriesRefused: number;
  queryOtherErrors: number;
}

async function startFlood(natsUrl: string, creds: string, grpcPort: number, token: string): Promise<{ child: ChildProcess; done: Promise<FloodCounts> }> {
  const child = fork(fileURLToPath(import.meta.url), ["--flood", natsUrl, creds, String(grpcPort), token], { execArgv: ["--import", "tsx"], stdio: ["ignore", "pipe", "inherit", "ipc"] });
  // The flood client's own CPU (encoding batches, decoding refusals) must not stand for the node's on a small machine.
  if (FLOOD_NICE > 0 && child.pid !== undefined) setPriority(child.pid, FLOOD_NICE);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const done = new Promise<FloodCounts>((resolve, reject) =>
    child.once("exit", () => {
      try {
        resolve(JSON.parse(out.trim().split("\n").at(-1)!) as FloodCounts);
      } catch {
        reject(new Error(`the flood process printed no counts: ${out}`));
      }
    }),
  );
  // Measure only once it floods (tsx start-up and the connection take a while on a loaded machine).
  await new Promise<void>((resolve, reject) => {
    child.once("message", () => resolve());
    void done.then(() => reject(new Error("the flood process exited before it started")), reject);
  });
  return { child, done };
}

async function noisyNeighbour(): Promise<{ figures: Record<string, number>; notes: Record<string, unknown> }> {
  const { server, auth, dir } = await lockedNats();
  const nc = await connect({ servers: server.url, noAsyncTraces: true, ...natsCredsOptions(auth.credsPath("service")) });
  let node: NodeProcess | undefined;
  try {
    await (await MetadataStore.open(nc)).applyCurrent(SPEC);
    node = await spawnNodeProcess(server.url, { [NATS_CREDS_ENV]: auth.credsPath("service") });
    const calmCreds = await publisherCreds(auth, dir, "calm");
    const noisyCreds = await publisherCreds(auth, dir, "noisy");
    const calmNc = await connect({ servers: server.url, noAsyncTraces: true, ...natsCredsOptions(calmCreds) });
    const calmPub = new TickPublisher(calmNc, { tenant: "calm", spec: trades, maxInFlight: 1 });
    const calmQ = new NodeQuerier(node.grpcPort, await createToken(nc, { tenant: "calm", role: "reader" }));
    const noisyToken = await createToken(nc, { tenant: "noisy", role: "reader" });
    const walk = new RandomWalk(symbolNames(SYMBOLS), 1, 1.7e15);
    // Both tenants hold data before anything is measured; calm warms its path.
    const noisyNc = await connect({ servers: server.url, noAsyncTraces: true, ...natsCredsOptions(noisyCreds) });
    const noisyPub = new TickPublisher(noisyNc, { tenant: "noisy", spec: trades });
    for (let i = 0; i < NOISY_PRELOAD_BATCHES; i++) await noisyPub.publish(walk.trades(FLOOD_BATCH, 1_000));
    await noisyNc.close();
    const warm: Sides = { ack: [], query: [] };
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      await calmPub.publish(walk.trades(CALM_BATCH, 1_000));
      warm.ack.push(performance.now() - t0);
      await calmQ.query({ table: "trades", op: "lastBy" });
    }
    const alone: Sides = { ack: [], query: [] };
    const flooded: Sides = { ack: [], query: [] };
    const rounds: Record<string, unknown>[] = [];
    const totals: FloodCounts = { ingestAcked: 0, ingestRefused: 0, ingestOtherErrors: 0, queriesAnswered: 0, queriesRefused: 0, queryOtherErrors: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      const a: Sides = { ack: [], query: [] };
      await calmLoad(calmPub, calmQ, walk, a);
      const f = await startFlood(server.url, noisyCreds, node.grpcPort, noisyToken);
      await sleep(500); // the flood is under way
      const b: Sides = { ack: [], query: [] };
      await calmLoad(calmPub, calmQ, walk, b);
      f.child.kill("SIGTERM");
      const counts = await f.done;
      for (const k of Object.keys(totals) as (keyof FloodCounts)[]) totals[k] += counts[k];
      alone.ack.push(...a.ack);
      alone.query.push(...a.query);
      flooded.ack.push(...b.ack);
      flooded.query.push(...b.query);
      const p99 = (xs: number[]) => round(percentile([...xs].sort((x, y) => x - y), 99));
      const row = { alone: { ack_p99_ms: p99(a.ack), query_p99_ms: p99(a.query), acks: a.ack.length, queries: a.query.length }, flooded: { ack_p99_ms: p99(b.ack), query_p99_ms: p99(b.query), acks: b.ack.length, queries: b.query.length }, flood: counts, load_avg_1m: round(loadavg()[0]!, 2) };
      rounds.push(row);
      log(`round ${r + 1}: ${JSON.stringify(row)}`);
    }
    await calmNc.close();
    const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
    const stat = (xs: number[]) => ({ p50: round(percentile(sorted(xs), 50)), p99: round(percentile(sorted(xs), 99)), n: xs.length });
    const ackRatio = percentile(sorted(flooded.ack), 99) / percentile(sorted(alone.ack), 99);
    const queryRatio = percentile(sorted(flooded.query), 99) / percentile(sorted(alone.query), 99);
    return {
      figures: {
        noisy_neighbor_ack_p99_ratio: round(ackRatio),
        noisy_neighbor_query_p99_ratio: round(queryRatio),
        quota_refusals: totals.ingestRefused + totals.queriesRefused,
      },
      notes: {
        noisy_neighbor: {
          setup: `one node process (gRPC API, all ${trades.shards} shards of each table, no ClickHouse) on a locked nats-server; calm (no quotas) publishes ${CALM_BATCH}-tick batches one at a time every ${CALM_EVERY_MS} ms over NATS with publisher credentials and asks a last-by over gRPC every ${QUERY_EVERY_MS} ms, ${SECONDS} s alone then ${SECONDS} s while noisy (${NOISY_PRELOAD_BATCHES * FLOOD_BATCH} rows preloaded; ingestTicksPerSecond ${NOISY_TICKS_PER_S}, concurrentQueries ${NOISY_QUERIES}, queryMemoryBytes ${NOISY_QUERY_BYTES}, resultRows ${NOISY_RESULT_ROWS}) floods ${FLOOD_X * NOISY_TICKS_PER_S} ticks/s in ${FLOOD_BATCH}-tick batches (refused ones dropped, not retried) and ${FLOOD_X * NOISY_QUERIES} concurrent full-range queries (each worker pausing ${FLOOD_QUERY_BACKOFF_MS} ms after a refusal) from another process (nice ${FLOOD_NICE}; flooding: ${FLOOD_KIND}); ${ROUNDS} rounds; ratios = calm's pooled p99 flooded / alone`,
          calm_alone: { ack_ms: stat(alone.ack), query_ms: stat(alone.query) },
          calm_flooded: { ack_ms: stat(flooded.ack), query_ms: stat(flooded.query) },
          flood_totals: totals,
          rounds,
        },
      },
    };
  } finally {
    await node?.kill("SIGTERM");
    await nc.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function pipelined(n: number, send: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < n) await send(next++);
    }),
  );
  return (performance.now() - t0) / 1000;
}

/** One side of the auth comparison: a fresh gateway-only node on `server`, warmed, then AUTH_BATCHES timed; ticks/s. */
async function ingestRate(server: NatsServer, nodeEnv: Record<string, string>, clientOpts: object, batches: ReturnType<RandomWalk["trades"]>[]): Promise<number> {
  const node = await spawnNodeProcess(server.url, nodeEnv, ["--shards", "none"]);
  const nc = await connect({ servers: server.url, noAsyncTraces: true, ...clientOpts });
  try {
    const pub = new TickPublisher(nc, { tenant: "default", spec: trades, maxInFlight: WINDOW });
    await pipelined(Math.min(200, AUTH_BATCHES), (i) => pub.publish(batches[i % batches.length]!));
    const s = await pipelined(AUTH_BATCHES, (i) => pub.publish(batches[i % batches.length]!));
    return (AUTH_BATCHES * batches[0]!.rows) / s;
  } finally {
    await nc.close();
    await node.kill("SIGTERM");
  }
}

type Side = "open" | "auth" | "tls";

async function authVsOpen(): Promise<{ figures: Record<string, number>; notes: Record<string, unknown> }> {
  const open = await startNatsServer({ auth: "open" });
  const locked = await lockedNats();
  // The same identity behind TLS: certificates as `pxctl certs init` makes them (its code).
  const certs = initCerts({ dir: join(locked.dir, "tls") }).files;
  const tls = await startNatsServer({ auth: locked.auth, tls: { cert: certs.serverCert, key: certs.serverKey } });
  try {
    const openNc = await connect({ servers: open.url });
    await (await MetadataStore.open(openNc)).applyCurrent(SPEC);
    await openNc.close();
    for (const [server, extra] of [[locked.server, {}], [tls, natsTlsOptions(certs.ca)]] as const) {
      const nc = await connect({ servers: server.url, ...natsCredsOptions(locked.auth.credsPath("service")), ...extra });
      await (await MetadataStore.open(nc)).applyCurrent(SPEC);
      await nc.close();
    }
    const creds = await publisherCreds(locked.auth, locked.dir, "default");
    const walk = new RandomWalk(symbolNames(1000), 3, 1.7e15);
    const batches = Array.from({ length: 100 }, () => walk.trades(1_000, 1_000_000));
    // The open side's node must not pick up the locked sides' service creds (or CA) from the environment.
    const service = { [NATS_CREDS_ENV]: locked.auth.credsPath("service"), [TLS_CA_ENV]: "" };
    const run: Record<Side, () => Promise<number>> = {
      open: () => ingestRate(open, { [NATS_CREDS_ENV]: "", [TLS_CA_ENV]: "" }, {}, batches),
      auth: () => ingestRate(locked.server, service, natsCredsOptions(creds), batches),
      tls: () => ingestRate(tls, { ...service, [TLS_CA_ENV]: certs.ca }, { ...natsCredsOptions(creds), ...natsTlsOptions(certs.ca) }, batches),
    };
    const order: Side[] = ["open", "auth", "tls"];
    const rates: Record<Side, number[]> = { open: [], auth: [], tls: [] };
    for (let r = 0; r < AUTH_ROUNDS; r++) {
      // Each side goes first, second and third in turn.
      for (let k = 0; k < order.length; k++) {
        const side = order[(r + k) % order.length]!;
        rates[side].push(await run[side]());
      }
      log(`auth round ${r + 1}: open ${Math.round(rates.open.at(-1)!)} ticks/s, auth ${Math.round(rates.auth.at(-1)!)}, auth + TLS ${Math.round(rates.tls.at(-1)!)}`);
    }
    const ratios = (side: Side): number[] => rates[side].map((x, i) => x / rates.open[i]!).sort((a, b) => a - b);
    const tlsRatios = ratios("tls");
    const authRatios = ratios("auth");
    return {
      figures: { auth_ingest_vs_open_ratio: round(median(tlsRatios)), auth_plaintext_ingest_vs_open_ratio: round(median(authRatios)) },
      notes: {
        auth_vs_open: {
          setup: `bench:ingest's e2e path: a gateway-only node process (--shards none) per side and round, 1000-tick batches, window ${WINDOW}, ${Math.min(200, AUTH_BATCHES)} batches of warm-up then ${AUTH_BATCHES} timed; three nats-servers: open and plaintext; locked (operator JWT auth, node with service creds, publisher with tenant publisher creds) and plaintext; locked and TLS only (the same identity; node and publisher trust its CA, certificates from pxctl certs init's code); ${AUTH_ROUNDS} rounds, the order of the sides rotating; figures = median of per-round ratios to open: auth_ingest_vs_open_ratio = locked + TLS, auth_plaintext_ingest_vs_open_ratio = locked alone`,
          transport: { open: "plaintext", auth: "plaintext", tls: "TLS (the node and the publisher both speak TLS to NATS)" },
          ticks_per_s: { open: rates.open.map(Math.round), auth: rates.auth.map(Math.round), auth_tls: rates.tls.map(Math.round) },
          ratio_min_max: { auth_tls: [round(tlsRatios[0]!), round(tlsRatios.at(-1)!)], auth: [round(authRatios[0]!), round(authRatios.at(-1)!)] },
        },
      },
    };
  } finally {
    await open.dispose();
    await locked.server.dispose();
    await tls.dispose();
    rmSync(locked.dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const loadBefore = round(loadavg()[0]!, 2);
  log(`noisy neighbour: ${ROUNDS} rounds of ${SECONDS} s alone + ${SECONDS} s flooded`);
  const nn = await noisyNeighbour();
  log(`auth vs open: ${AUTH_ROUNDS} rounds of ${AUTH_BATCHES} batches per side`);
  const av = await authVsOpen();
  writeResult("tenants", { ...nn.figures, ...av.figures }, { ...nn.notes, ...av.notes, load_avg_1m: { before: loadBefore, after: round(loadavg()[0]!, 2) } });
}

if (process.argv[2] === "--flood") await flood(process.argv[3]!, process.argv[4]!, Number(process.argv[5]), process.argv[6]!);
else await main();
