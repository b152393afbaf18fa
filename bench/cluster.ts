// Cluster benchmark (issue 12): fan-out against one node, leader failover, and
// the fence's negative control, on one machine (CPU shared: ratios matter).
// 1. Query: a 3-server NATS cluster, three Proxist nodes (`--shards assigned`)
//    and a fourth holding every shard (`--shards all`), the bench:query trades
//    day (bench/gen.ts, 1,000 symbols) over 12 shards. Last-by, a 1 M-row range
//    and 1-minute bars are asked over gRPC of an assigned node (which fans out)
//    and of the all-shards node, in the same run.
// 2. Failover: a fresh cluster with ClickHouse; during ingest the control-plane
//    leader is SIGKILLed; time until every shard is live on the survivors, then
//    acked ticks lost and rows duplicated (WAL, ClickHouse by (_lsn, _row)).
// 3. Negative control: the fence test's frozen owner with PX_FENCE_OFF=1 must
//    leave duplicates in ClickHouse.
// Writes bench/results/cluster.json. Sizes: BENCH_CLUSTER_TICKS (trades,
// default 10 M), BENCH_CLUSTER_RANGE_ROWS (1 M), BENCH_CLUSTER_FAILOVER_TICKS
// (preloaded before each kill, 200 k), BENCH_CLUSTER_FAILOVER_RUNS (3).
import { loadavg } from "node:os";
import { TickPublisher } from "../src/client/publisher.js";
import { createToken } from "../src/auth/index.js";
import { RandomWalk, symbolNames as walkSymbols } from "../src/demo/randomwalk.js";
import { CONTROL_DEFAULTS } from "../src/node/control/index.js";
import { parseClusterSpec } from "../protocols/tablespec.js";
import type { ClusterSpec } from "../protocols/tablespec.js";
import type { IngestAck } from "../protocols/ingest.js";
import { frozenOwner } from "../test/helpers/frozenowner.js";
import { proxistCluster, waitEachShardLiveOnce, waitPersistedOn } from "../test/helpers/nodecluster.js";
import type { ProxistCluster } from "../test/helpers/nodecluster.js";
import { spawnNodeProcess } from "../test/helpers/nodeproc.js";
import { publishUntilStopped } from "../test/helpers/pump.js";
import { NodeQuerier } from "../test/helpers/nodequery.js";
import { clickhouseFixture, exactlyOnceReport } from "../test/helpers/sink.js";
import { walTicks } from "../test/helpers/walticks.js";
import { genBatches, sessionMicros } from "./gen.js";
import { median, percentile, round, waitQuiet, writeResult } from "./lib.js";

const TICKS = Number(process.env.BENCH_CLUSTER_TICKS ?? 10_000_000);
const RANGE_ROWS = Math.min(Number(process.env.BENCH_CLUSTER_RANGE_ROWS ?? 1_000_000), Math.floor(TICKS / 2));
const FAILOVER_TICKS = Number(process.env.BENCH_CLUSTER_FAILOVER_TICKS ?? 200_000);
const FAILOVER_RUNS = Number(process.env.BENCH_CLUSTER_FAILOVER_RUNS ?? 3);
const SYMBOLS = 1000;
const SHARDS = 12;
const TENANT = "bench";
const IDS = ["n1", "n2", "n3"];
const log = (s: string): void => console.error(`[bench:cluster ${new Date().toISOString().slice(11, 19)}] ${s}`);
const loadNow = (): number[] => loadavg().map((x) => round(x, 2));

const specOf = (retention?: { hotSeconds: number }): ClusterSpec =>
  parseClusterSpec({
    tenants: [
      {
        name: TENANT,
        tables: [{ name: "trades", shards: SHARDS, maxBatchRows: 1_000_000, ...(retention ? { retention } : {}), columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }],
      },
    ],
  });

interface Timing {
  readonly p50: number;
  readonly runs: number;
  readonly rows: number;
}

/**
 * The two peers of a comparison, interleaved (a, b, a, b, ...: whatever the machine does meanwhile falls on
 * both alike): two warm-ups each, then pairs until ~6 s are spent (3..30 pairs); every answer must be complete.
 */
async function timePair(a: NodeQuerier, b: NodeQuerier, query: unknown): Promise<[Timing, Timing]> {
  const once = async (q: NodeQuerier): Promise<{ ms: number; rows: number }> => {
    const t = performance.now();
    const r = await q.count(query);
    if (!r.complete) throw new Error(`incomplete answer to ${JSON.stringify(query)}: ${r.notes.join("; ")}`);
    return { ms: performance.now() - t, rows: r.rows };
  };
  for (let i = 0; i < 2; i++) {
    await once(a);
    await once(b);
  }
  const xs: number[] = [];
  const ys: number[] = [];
  let rows: [number, number] = [0, 0];
  const start = performance.now();
  while (xs.length < 3 || (xs.length < 30 && performance.now() - start < 6_000)) {
    const x = await once(a);
    const y = await once(b);
    xs.push(x.ms);
    ys.push(y.ms);
    rows = [x.rows, y.rows];
  }
  xs.sort((p, q) => p - q);
  ys.sort((p, q) => p - q);
  return [
    { p50: percentile(xs, 50), runs: xs.length, rows: rows[0] },
    { p50: percentile(ys, 50), runs: ys.length, rows: rows[1] },
  ];
}

async function queryPhase(): Promise<{ figures: Record<string, number>; notes: Record<string, unknown> }> {
  const spec = specOf();
  const trades = spec.tenants[0]!.tables[0]!;
  const c = await proxistCluster(spec);
  try {
    await c.spawn(IDS);
    const local = await spawnNodeProcess(c.nats.urls, { PX_REPLICAS: "3" }, ["--shards", "all", "--node-id", "local"]);
    try {
      await waitEachShardLiveOnce(c, IDS, 120_000);
      const t0 = performance.now();
      const p = new TickPublisher(c.nc, { tenant: TENANT, spec: trades, maxInFlight: 8, timeoutMs: 60_000 });
      const pending: Promise<IngestAck>[] = [];
      let maxLsn = 0;
      for (const b of genBatches("trades", { symbols: SYMBOLS, ticks: TICKS, batchRows: 10_000, seed: 42 })) {
        pending.push(p.publish(b).then((a) => ((maxLsn = Math.max(maxLsn, a.lastLsn)), a)));
        if (pending.length >= 64) await pending.shift();
      }
      await Promise.all(pending);
      log(`ingested ${TICKS} trades in ${((performance.now() - t0) / 1000).toFixed(1)} s (last LSN ${maxLsn})`);
      const token = await createToken(c.nc, { tenant: TENANT, role: "reader", replicas: 3 });
      const fan = new NodeQuerier(c.nodes.get("n1")!.grpcPort, token);
      const one = new NodeQuerier(local.grpcPort, token);
      try {
        // Read-after-write on both: every shard has applied the whole day before timing starts.
        // (Each owner waits at most 5 s for minLsn: asked again until the replay caught up.)
        for (const q of [fan, one]) {
          const deadline = Date.now() + 300_000;
          for (;;) {
            const ok = await q.count({ op: "lastBy", table: "trades", minLsn: maxLsn, consistency: "complete" }).then(() => true, (e: unknown) => (Date.now() > deadline ? Promise.reject(e as Error) : false));
            if (ok) break;
            await new Promise((r) => setTimeout(r, 1_000));
          }
        }
        const { openMicros, closeMicros } = sessionMicros();
        const mid = Math.floor((openMicros + closeMicros) / 2);
        const r0 = openMicros + Math.floor((closeMicros - openMicros) / 4);
        const r1 = r0 + Math.ceil(((closeMicros - openMicros) * RANGE_ROWS) / TICKS);
        const queries = {
          lastby: { op: "lastBy", table: "trades", at: mid },
          range: { op: "range", table: "trades", t0: r0, t1: r1 },
          bars: { op: "bars", table: "trades", t0: openMicros, t1: closeMicros, bucket: "1m" },
        };
        const figures: Record<string, number> = {};
        const rows: Record<string, number> = {};
        // The nodes persist and snapshot the day for a while after it is read back: time the queries after that.
        const quiet = await waitQuiet();
        log(`quiet after ${quiet.waitedMs} ms (${quiet.busyCores} cores busy)`);
        for (const [name, q] of Object.entries(queries)) {
          const [f, l] = await timePair(fan, one, q);
          if (f.rows !== l.rows) throw new Error(`${name}: fan-out answered ${f.rows} rows, the all-shards node ${l.rows}`);
          rows[name] = f.rows;
          log(`${name}: fan-out p50 ${f.p50.toFixed(2)} ms (${f.runs} runs), one node ${l.p50.toFixed(2)} ms (${l.runs} runs), ${f.rows} rows`);
          if (name === "range") {
            figures.fanout_range_rows_per_s = Math.round(f.rows / (f.p50 / 1000));
            figures.local_range_rows_per_s = Math.round(l.rows / (l.p50 / 1000));
            figures.fanout_vs_local_range_ratio = round(figures.fanout_range_rows_per_s / figures.local_range_rows_per_s);
          } else {
            figures[`fanout_${name}_p50_ms`] = round(f.p50);
            figures[`local_${name}_p50_ms`] = round(l.p50);
            figures[`fanout_vs_local_${name}_ratio`] = round(f.p50 / l.p50);
          }
        }
        return { figures, notes: { result_rows: rows, queries, quiet_before_queries: quiet } };
      } finally {
        fan.close();
        one.close();
      }
    } finally {
      await local.kill("SIGKILL");
    }
  } finally {
    await c.close();
  }
}

interface KillRun {
  readonly toLiveS: number;
  /** Acked rows of this run missing from the WAL. */
  readonly ackedLost: number;
  /** ClickHouse against the whole WAL so far (cumulative over runs): rows missing, rows duplicated. */
  readonly clickhouseMissing: number;
  readonly duplicated: number;
  readonly leader: string;
  readonly movedShards: number;
}

/** One leader kill during ingest; the killed node is restarted afterwards. */
async function leaderKill(c: ProxistCluster, walk: RandomWalk, i: number): Promise<KillRun> {
  const trades = specOf().tenants[0]!.tables[0]!;
  const ids = [...c.nodes.keys()];
  await waitEachShardLiveOnce(c, ids, 120_000);
  const pre = new TickPublisher(c.nc, { tenant: TENANT, spec: trades, maxInFlight: 8 });
  const preload: Promise<IngestAck>[] = [];
  for (let n = 0; n < FAILOVER_TICKS; n += 5_000) preload.push(pre.publish(walk.trades(5_000, 20_000_000)));
  const acks = await Promise.all(preload);
  const leader = (await c.stores.lease.read())!.record.holder;
  const before = await c.liveShards(ids);
  const moved = [...before].filter(([, o]) => o[0]![0] === leader).length;
  const survivors = ids.filter((id) => id !== leader);
  const p = new TickPublisher(c.nc, { tenant: TENANT, spec: trades, maxInFlight: 4, timeoutMs: 1_000, maxAttempts: 20 });
  const pump = publishUntilStopped(p, () => walk.trades(200, 200_000), acks, 4);
  await new Promise((r) => setTimeout(r, 1_000));
  const killedAt = performance.now();
  await c.signal(leader, "SIGKILL");
  await waitEachShardLiveOnce(c, survivors, 60_000, 20);
  const toLiveS = (performance.now() - killedAt) / 1000;
  await new Promise((r) => setTimeout(r, 1_000));
  await pump.stop();

  // Lost: acked rows whose record is not in the WAL, WAL rows ClickHouse never got. Duplicated: batches stored twice, (_lsn, _row) twice in ClickHouse.
  const wal = await walTicks(c.nc, TENANT, [trades]);
  let ackedLost = 0;
  for (const a of acks) for (const x of a.appends) if (!wal.lsns.has(x.lsn)) ackedLost += x.rows;
  await waitPersistedOn(c, TENANT, "trades", survivors, 300_000);
  const report = await exactlyOnceReport(c.clickhouse!.ch, c.nc, TENANT, trades);
  const duplicated = wal.duplicateMsgIds.length + report.duplicates + report.unexpected;
  log(`leader kill ${i + 1}: ${leader} (${moved} shards) live elsewhere after ${toLiveS.toFixed(3)} s; ${acks.length} batches acked; acked lost ${ackedLost}; ClickHouse missing ${report.missing}, duplicated ${duplicated} (whole WAL so far)`);
  await c.spawn([leader]);
  return { toLiveS, ackedLost, clickhouseMissing: report.missing, duplicated, leader, movedShards: moved };
}

async function failoverPhase(): Promise<{ figures: Record<string, number>; notes: Record<string, unknown> }> {
  // Rows older than 60 s of data time leave RAM once persisted: the sinks work as in production.
  const c = await proxistCluster(specOf({ hotSeconds: 60 }), {}, [], { clickhouse: true });
  try {
    await c.spawn(IDS);
    const walk = new RandomWalk(walkSymbols(500), 3, 1.75e15);
    const runs: KillRun[] = [];
    for (let i = 0; i < FAILOVER_RUNS; i++) runs.push(await leaderKill(c, walk, i));
    const times = runs.map((r) => r.toLiveS);
    return {
      figures: {
        failover_leader_kill_live_s: round(median(times)),
        failover_leader_kill_live_s_max: round(Math.max(...times)),
        lost_acked: runs.reduce((s, r) => s + r.ackedLost, 0) + runs.at(-1)!.clickhouseMissing,
        duplicated: runs.at(-1)!.duplicated,
      },
      notes: { to_live_s: times.map((t) => round(t)), killed: runs.map((r) => `${r.leader} (${r.movedShards} shards)`) },
    };
  } finally {
    await c.close();
  }
}

async function main(): Promise<void> {
  const loadAtStart = loadNow();
  log(`sizes: ${TICKS} trades over ${SHARDS} shards, range ${RANGE_ROWS} rows, failover ${FAILOVER_RUNS} runs with ${FAILOVER_TICKS} preloaded ticks each; load ${loadAtStart.join(" ")}`);
  const q = await queryPhase();
  const f = await failoverPhase();
  const chf = await clickhouseFixture();
  let negative: number;
  try {
    negative = (await frozenOwner(chf, "fenceoff", true)).report.duplicates;
    log(`negative control (PX_FENCE_OFF=1): ${negative} duplicated rows in ClickHouse`);
  } finally {
    await chf.close();
  }
  const figures: Record<string, number> = {
    fanout_lastby_p50_ms: q.figures.fanout_lastby_p50_ms!,
    local_lastby_p50_ms: q.figures.local_lastby_p50_ms!,
    fanout_vs_local_lastby_ratio: q.figures.fanout_vs_local_lastby_ratio!,
    fanout_range_rows_per_s: q.figures.fanout_range_rows_per_s!,
    fanout_vs_local_range_ratio: q.figures.fanout_vs_local_range_ratio!,
    fanout_bars_p50_ms: q.figures.fanout_bars_p50_ms!,
    local_bars_p50_ms: q.figures.local_bars_p50_ms!,
    fanout_vs_local_bars_ratio: q.figures.fanout_vs_local_bars_ratio!,
    failover_leader_kill_live_s: f.figures.failover_leader_kill_live_s!,
    lost_acked: f.figures.lost_acked!,
    duplicated: f.figures.duplicated!,
    negative_control_duplicates: negative,
  };
  writeResult("cluster", figures, {
    load: { at_start: loadAtStart, at_end: loadNow() },
    sizes: { trades: TICKS, symbols: SYMBOLS, shards: SHARDS, range_rows: RANGE_ROWS, failover_runs: FAILOVER_RUNS, failover_preload_ticks: FAILOVER_TICKS, scaled_down: TICKS < 10_000_000 },
    more: { local_range_rows_per_s: q.figures.local_range_rows_per_s, failover_leader_kill_live_s_max: f.figures.failover_leader_kill_live_s_max },
    query: q.notes,
    failover: f.notes,
    notes: [
      "One machine: 3 nats-server processes (cluster, R3 WAL and KV), 3 Proxist nodes (--shards assigned) and, for the query phase, a 4th node holding every shard (--shards all) reading the same WAL; all share the CPU.",
      "Query timings are gRPC Query calls from this process (answer read to its end, rows counted, values not converted), fan-out asked of n1, local asked of the all-shards node, interleaved (fan-out, local, fan-out, ...); each p50 over 3..30 pairs after 2 warm-ups each; every answer complete. Timing starts once the machine is quiet (under 0.15 cores busy over two 2 s windows, at most 180 s: quiet_before_queries) after the day was read back: the nodes persist and snapshot it meanwhile.",
      "Data: bench/gen.ts trades day (seed 42, 1,000 symbols) over 12 shards; quotes are not loaded (no figure reads them). lastBy at mid-day, range over a quarter-day window of ~range_rows rows, bars 1 minute over the day.",
      `Failover: a fresh cluster with ClickHouse (sinks on, hot 60 s of data time); each run preloads ticks, ingests with 4 publisher loops, SIGKILLs the control-plane leader; live = every shard live once on the survivors (GET /v1/shards every 20 ms). Node timeout ${CONTROL_DEFAULTS.nodeTimeoutMs} ms, leader lease ${CONTROL_DEFAULTS.leaseMs} ms.`,
      "lost_acked: acked rows missing from the WAL plus WAL rows missing in ClickHouse after the survivors persisted; duplicated: batches stored twice in the WAL plus extra (_lsn, _row) copies and foreign rows in ClickHouse.",
      "negative_control_duplicates: test/helpers/frozenowner.ts with PX_FENCE_OFF=1 (owner SIGSTOPped holding an unsent batch, INSERTs stalled 1 s, SIGCONT): rows ClickHouse holds twice.",
    ],
  });
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
