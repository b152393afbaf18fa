// A/B benchmark: this tree against a base commit, interleaved, in one run.
// Separate runs of bench:query / bench:api on this 2-core machine differ by
// 20-40% from run to run (DuckDB's own time moves with them), more than the
// changes they are meant to judge. Here both sides get the same data and
// alternate round by round (who goes first alternates too), so drift of the
// machine hits both alike; the figure is the median of the per-round ratios.
//   1. engine: Q1-Q5 of bench:query on the hot set, both engines in this process;
//   2. node: a node process of each tree (own nats-server, `--shards all`, the
//      same day loaded over NATS): Flight DoGet of the day, gRPC lastBy p50,
//      NATS ingest ticks/s.
// BENCH_AB_BASE (commit, default bef2620: before the house refactor),
// BENCH_AB_TICKS (per table, default 2 M), BENCH_AB_ROUNDS (default 7), BENCH_AB_ORDER
// (this-first: build this tree's engine first).
// Ratios are this tree / base: time ratios < 1 and rate ratios > 1 mean this tree is faster.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { connect } from "@nats-io/transport-node";
import { parseClusterSpec } from "../protocols/tablespec.js";
import { FlightClient, LARGE_READS, ProxistClient } from "../src/api/index.js";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import { genBatches, sessionMicros, symbolNames } from "./gen.js";
import { latencies, median, percentile, round, writeResult } from "./lib.js";
import { doGet, natsPublish, query, waitApplied } from "./wire.js";

const BASE = process.env.BENCH_AB_BASE ?? "bef2620";
const TICKS = Number(process.env.BENCH_AB_TICKS ?? 2_000_000);
const ROUNDS = Number(process.env.BENCH_AB_ROUNDS ?? 7);
const SYMBOLS = 1000;
const SHARDS = 4;
const TENANT = "bench";
const log = (s: string): void => console.error(`[bench:ab ${new Date().toISOString().slice(11, 19)}] ${s}`);
const here = fileURLToPath(new URL("..", import.meta.url));

/** The base commit's tree (git archive, no .git), sharing this tree's node_modules. */
function baseTree(commit: string): { root: string; sha: string } {
  const sha = execFileSync("git", ["rev-parse", "--short=12", `${commit}^{commit}`], { cwd: here, encoding: "utf8" }).trim();
  const root = join(tmpdir(), `proxist-ab-${sha}`);
  if (!existsSync(join(root, "package.json"))) {
    mkdirSync(root, { recursive: true });
    execFileSync("sh", ["-c", `git archive ${sha} | tar -x -C ${root}`], { cwd: here });
  }
  if (!existsSync(join(root, "node_modules"))) symlinkSync(join(here, "node_modules"), join(root, "node_modules"));
  return { root, sha };
}

type Side = "this" | "base";
const SIDES: readonly Side[] = ["this", "base"];

/** `f` for both sides, `rounds` times, the side that goes first alternating; per side its values in round order. */
async function alternate(rounds: number, f: (side: Side) => Promise<number>): Promise<Record<Side, number[]>> {
  const out: Record<Side, number[]> = { this: [], base: [] };
  for (let r = 0; r < rounds; r++) for (const side of r % 2 === 0 ? SIDES : [...SIDES].reverse()) out[side].push(await f(side));
  return out;
}

interface Compared {
  readonly this: number;
  readonly base: number;
  readonly ratio: number;
  readonly ratioMin: number;
  readonly ratioMax: number;
}

function compare(v: Record<Side, number[]>): Compared {
  const ratios = v.this.map((x, i) => x / v.base[i]!).sort((a, b) => a - b);
  return { this: round(median(v.this)), base: round(median(v.base)), ratio: round(median(ratios)), ratioMin: round(ratios[0]!), ratioMax: round(ratios.at(-1)!) };
}

// ------------------------------------------------------------- 1. engine

/* eslint-disable @typescript-eslint/no-explicit-any -- the two trees' modules are loaded by path; their types are each tree's own. */
async function engineOf(root: string, data: Record<"trades" | "quotes", readonly any[]>): Promise<{ execute(tenant: string, q: unknown): Promise<unknown> }> {
  const routing = await import(join(root, "protocols/routing.ts"));
  const tablespec = await import(join(root, "protocols/tablespec.ts"));
  const tickbatch = await import(join(root, "src/codec/tickbatch.ts"));
  const hotset = await import(join(root, "src/hotset/index.ts"));
  const q = await import(join(root, "src/query/index.ts"));
  const cols = { trades: ["price", "size"], quotes: ["bid", "ask", "bid_size", "ask_size"] };
  const tables = new Map<string, unknown>();
  let lsn = 0;
  for (const name of ["trades", "quotes"] as const) {
    const spec = tablespec.parseTableSpec({ name, shards: SHARDS, maxBatchRows: 1_000_000, columns: cols[name].map((c) => ({ name: c, type: "float64" })) });
    const shards = Array.from({ length: SHARDS }, (_, bucket) => ({ bucket, table: new hotset.HotTable(spec) }));
    for (const b of data[name]) {
      const idx: number[][] = Array.from({ length: SHARDS }, () => []);
      for (let r = 0; r < b.rows; r++) idx[routing.bucketOf(b.symbols[b.symbolIndex[r]], SHARDS)]!.push(r);
      idx.forEach((rows, bucket) => {
        if (rows.length > 0) shards[bucket]!.table.apply(++lsn, tickbatch.selectRows(b, rows));
      });
    }
    tables.set(name, { spec, shards });
  }
  return new q.ProxistQueryEngine({ source: q.staticSource(new Map([[TENANT, tables]])) });
}
/* eslint-enable @typescript-eslint/no-explicit-any */

async function engineAb(baseRoot: string): Promise<Record<string, Compared>> {
  const { openMicros, closeMicros } = sessionMicros();
  const mid = Math.floor((openMicros + closeMicros) / 2);
  log(`engine: generating ${TICKS} trades and ${TICKS} quotes`);
  const data = {
    trades: Array.from(genBatches("trades", { symbols: SYMBOLS, ticks: TICKS, batchRows: 10_000, seed: 42 })),
    quotes: Array.from(genBatches("quotes", { symbols: SYMBOLS, ticks: TICKS, batchRows: 10_000, seed: 43 })),
  };
  // Built in the order base, this (BENCH_AB_ORDER=this-first swaps it): which tree's engine is built first
  // showed in Q1 (the one built second was ~1.45x slower on last-by in some runs, whichever tree it was).
  const thisFirst = process.env.BENCH_AB_ORDER === "this-first";
  const first = await engineOf(thisFirst ? here : baseRoot, data);
  const second = await engineOf(thisFirst ? baseRoot : here, data);
  const [base, mine] = thisFirst ? [second, first] : [first, second];
  const engines: Record<Side, typeof mine> = { this: mine, base };
  const names = symbolNames(SYMBOLS);
  const q2Span = Math.floor((closeMicros - openMicros) * Math.min(1, 100_000 / TICKS));
  const queries: Record<string, unknown> = {
    q1: { op: "lastBy", table: "trades", at: mid },
    q2: { op: "asof", table: "trades", t0: mid, t1: mid + q2Span, right: { table: "quotes" }, columns: ["price", "size"] },
    q3one: { op: "rolling", table: "trades", symbols: [names[7]], t0: openMicros, t1: closeMicros, window: "5m", columns: ["price"], aggregates: [{ fn: "vwap", column: "price", weight: "size" }] },
    q3all: { op: "rolling", table: "trades", t0: openMicros, t1: closeMicros, window: "5m", columns: ["price"], aggregates: [{ fn: "vwap", column: "price", weight: "size" }] },
    q4: { op: "bars", table: "trades", t0: openMicros, t1: closeMicros, bucket: "1m" },
    q5: { op: "range", table: "trades", symbols: names.slice(100, 110), t0: mid, t1: mid + 3_600_000_000 },
  };
  const out: Record<string, Compared> = {};
  for (const [name, q] of Object.entries(queries)) {
    // One round: the p50 of `n` calls (more for the sub-millisecond queries).
    const p50 = async (side: Side): Promise<number> => {
      const t0 = performance.now();
      await engines[side].execute(TENANT, q);
      const n = Math.max(3, Math.min(200, Math.floor(300 / Math.max(0.01, performance.now() - t0))));
      const xs: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await engines[side].execute(TENANT, q);
        xs.push(performance.now() - t);
      }
      return median(xs);
    };
    await alternate(1, p50);
    out[name] = compare(await alternate(ROUNDS, p50));
    log(`engine ${name}: this ${out[name].this} ms, base ${out[name].base} ms, ratio ${out[name].ratio} [${out[name].ratioMin}..${out[name].ratioMax}]`);
  }
  return out;
}

// ------------------------------------------------------------- 2. node

const clusterJson = { tenants: [{ name: TENANT, tables: [{ name: "trades", shards: SHARDS, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] };
const trades = parseClusterSpec(clusterJson).tenants[0]!.tables[0]!;

/**
 * The tenant and a writer token, written by the side's own code: the
 * px_config and token formats may differ between the trees.
 */
async function declare(root: string, nc: Awaited<ReturnType<typeof connect>>): Promise<string> {
  const tablespec = await import(join(root, "protocols/tablespec.ts"));
  const auth = await import(join(root, "src/auth/index.ts"));
  // The metadata store moved in the house refactor (issue 11).
  const store = existsSync(join(root, "src/control/metadata.ts")) ? await import(join(root, "src/control/index.ts")) : await import(join(root, "src/runtime/metadata.ts"));
  await (await store.MetadataStore.open(nc)).applyCurrent(tablespec.parseClusterSpec(clusterJson));
  return (await auth.createToken(nc, { tenant: TENANT, role: "writer" })) as string;
}

interface NodeProc {
  readonly grpcPort: number;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

async function nodeAb(baseRoot: string): Promise<Record<string, Compared>> {
  const { openMicros, closeMicros } = sessionMicros();
  log(`node: generating ${TICKS} trades`);
  const day = Array.from(genBatches("trades", { symbols: SYMBOLS, ticks: TICKS, batchRows: 10_000, seed: 42 }));
  const extra = Array.from(genBatches("trades", { symbols: SYMBOLS, ticks: 200_000, batchRows: 1000, seed: 7, day: "2024-01-03" }));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const sides = {} as Record<Side, { px: InstanceType<typeof ProxistClient>; fl: InstanceType<typeof FlightClient>; token: string; nc: Awaited<ReturnType<typeof connect>> }>;
    for (const side of ["base", "this"] as const) {
      const nats = await startNatsServer({ auth: "open" });
      stops.push(() => nats.dispose());
      const nc = await connect({ servers: nats.url, noAsyncTraces: true });
      stops.push(() => nc.close());
      const token = await declare(side === "base" ? baseRoot : here, nc);
      const proc = (await import(join(side === "base" ? baseRoot : here, "test/helpers/nodeproc.ts"))) as { spawnNodeProcess(url: string, env: Record<string, string>, args: string[]): Promise<NodeProc> };
      // No snapshot during a measurement (it would hold the node's event loop).
      const node = await proc.spawnNodeProcess(nats.url, {}, ["--shards", "all", "--snapshot-interval-ms", String(24 * 3600 * 1000)]);
      stops.push(() => node.kill("SIGTERM"));
      const address = `127.0.0.1:${node.grpcPort}`;
      const px = new ProxistClient(address, credentials.createInsecure(), LARGE_READS);
      const fl = new FlightClient(address, credentials.createInsecure(), LARGE_READS);
      stops.push(async () => (px.close(), fl.close()));
      const { lastLsn } = await natsPublish(nc, TENANT, trades, day, day.length, 16);
      await waitApplied(px, token, "trades", lastLsn);
      log(`node ${side}: ${TICKS} rows applied`);
      sides[side] = { px, fl, token, nc };
    }
    const range = { table: "trades", t0: openMicros, t1: closeMicros, sort: "symbol" };
    const out: Record<string, Compared> = {};
    const doget = async (side: Side): Promise<number> => {
      const r = await doGet(sides[side].fl, sides[side].token, range);
      if (r.rows !== TICKS) throw new Error(`DoGet on ${side} returned ${r.rows} rows, expected ${TICKS}`);
      return r.rows / r.seconds;
    };
    await alternate(1, doget);
    out.doget_rows_per_s = compare(await alternate(ROUNDS, doget));
    const lastBy = async (side: Side): Promise<number> => percentile(await latencies(300, () => query(sides[side].px, sides[side].token, { op: "lastBy", table: "trades" })), 50);
    out.grpc_lastby_p50_ms = compare(await alternate(ROUNDS, lastBy));
    // Next day's ticks (outside the DoGet range), 200 batches of 1,000 a round, 32 in flight.
    const ingest = async (side: Side): Promise<number> => 200_000 / (await natsPublish(sides[side].nc, TENANT, trades, extra, extra.length, 32)).seconds;
    await alternate(1, ingest);
    out.nats_ingest_ticks_per_s = compare(await alternate(ROUNDS, ingest));
    for (const [k, v] of Object.entries(out)) log(`node ${k}: this ${v.this}, base ${v.base}, ratio ${v.ratio} [${v.ratioMin}..${v.ratioMax}]`);
    return out;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const loadAtStart = round(loadavg()[0]!, 2);
  const { root, sha } = baseTree(BASE);
  const head = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: here, encoding: "utf8" }).trim();
  log(`this tree (HEAD ${head}) vs base ${sha} in ${root}; load ${loadAtStart}`);
  const engine = await engineAb(root);
  const node = await nodeAb(root);
  const figures: Record<string, number> = {};
  for (const [k, v] of Object.entries(engine)) figures[`${k}_engine_vs_base_ratio`] = v.ratio;
  for (const [k, v] of Object.entries(node)) figures[`${k}_vs_base_ratio`] = v.ratio;
  writeResult("ab", figures, {
    base: sha,
    head,
    engine_build_order: process.env.BENCH_AB_ORDER === "this-first" ? "this, base" : "base, this",
    setup: [
      `engine: bench:query's Q1-Q5 (q3one/q3all rolling VWAP 5m) on ${TICKS} trades + ${TICKS} quotes, ${SYMBOLS} symbols, ${SHARDS} shards, hot only; both trees' HotTable + ProxistQueryEngine in this process; a round = the p50 of up to 200 execute() calls per side; value = p50 ms`,
      `node: one node process per tree (src/main.ts node --shards all, own nats-server, no ClickHouse), the same ${TICKS} trades loaded over NATS; doget = Flight DoGet of the day sorted by symbol, rows/s; lastby = p50 of 300 proxist.v1 Query lastBy calls; ingest = 200,000 ticks (next day) over NATS, 32 batches in flight, ticks/s`,
      `${ROUNDS} rounds after one warm-up round; the side that goes first alternates; ratio = median over rounds of this/base (min..max in detail)`,
    ],
    detail: { engine, node },
    load_avg_1m: { start: loadAtStart, end: round(loadavg()[0]!, 2) },
  });
}

await main();
