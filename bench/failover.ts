// Failover benchmark: a 3-server NATS cluster (R3 WAL and KV) and three Proxist
// nodes in `--shards assigned` mode holding about 1 M ticks in their hot sets.
// Each run SIGKILLs one node (never the leader, so the figure is the node
// timeout plus rebuild, not a leader election) while a publisher keeps
// ingesting, and times the kill until every shard of the dead node is live on a
// survivor. Then every acknowledged batch is checked against the WAL and the
// survivors' hot sets against a replay of the WAL: acked ticks lost or
// duplicated must be 0. The killed node is restarted between runs.
import { TickPublisher } from "../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../src/demo/randomwalk.js";
import { CONTROL_DEFAULTS } from "../src/node/control/index.js";
import { parseClusterSpec } from "../protocols/tablespec.js";
import type { IngestAck } from "../protocols/ingest.js";
import { proxistCluster, waitEachShardLiveOnce, waitSpread } from "../test/helpers/nodecluster.js";
import type { ProxistCluster } from "../test/helpers/nodecluster.js";
import { publishUntilStopped } from "../test/helpers/pump.js";
import { readWal } from "../test/helpers/wal.js";
import { replayDigests } from "../test/helpers/replay.js";
import { median, round, writeResult } from "./lib.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const HOT_TICKS = Number(process.env.BENCH_TICKS ?? 1_000_000);
const BATCH = 5_000;
const SPEC = parseClusterSpec({
  tenants: [{ name: "bench", tables: [{ name: "trades", shards: 12, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
});
const trades = SPEC.tenants[0]!.tables[0]!;
const IDS = ["n1", "n2", "n3"];
const walk = new RandomWalk(symbolNames(500), 3, 1.75e15);
const log = (s: string): void => console.error(s);

async function preload(c: ProxistCluster): Promise<void> {
  const p = new TickPublisher(c.nc, { tenant: "bench", spec: trades, maxInFlight: 8 });
  const pending: Promise<IngestAck>[] = [];
  for (let n = 0; n < HOT_TICKS; n += BATCH) pending.push(p.publish(walk.trades(BATCH, 20_000_000)));
  await Promise.all(pending);
}

/** Waits until every shard is live once on `ids` and has applied the whole WAL. */
async function caughtUp(c: ProxistCluster, ids: readonly string[], timeoutMs = 120_000): Promise<void> {
  const expected = await replayDigests(c.nc, "bench", [trades]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = await waitEachShardLiveOnce(c, ids, timeoutMs);
    if ([...expected].every(([k, e]) => live.get(k)![0]![1].appliedLsn >= e.appliedLsn)) return;
    if (Date.now() > deadline) throw new Error("nodes did not catch up");
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface RunResult {
  readonly toLiveS: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly movedShards: number;
  readonly ackedDuring: number;
}

async function run(c: ProxistCluster, i: number): Promise<RunResult> {
  const ids = [...c.nodes.keys()];
  await caughtUp(c, ids);
  const leader = (await c.stores.lease.read())?.record.holder;
  const before = await c.liveShards(ids);
  const held = (id: string): string[] => [...before].filter(([, o]) => o[0]![0] === id).map(([k]) => k);
  // The non-leader holding the most shards (ties: alternate between runs).
  const candidates = ids.filter((id) => id !== leader).sort((a, b) => held(b).length - held(a).length || (i % 2 === 0 ? a.localeCompare(b) : b.localeCompare(a)));
  const victim = candidates[0]!;
  if (held(victim).length === 0) throw new Error(`no non-leader node holds a shard: ${JSON.stringify([...before].map(([k, o]) => [k, o[0]![0]]))}`);
  const survivors = ids.filter((id) => id !== victim);
  const moved = held(victim);
  const hotRows = [...before.values()].reduce((s, o) => s + o[0]![1].rows, 0);

  // Ingest through the failover; acks are what must survive.
  const acks: IngestAck[] = [];
  const p = new TickPublisher(c.nc, { tenant: "bench", spec: trades, maxInFlight: 4, timeoutMs: 1_000, maxAttempts: 20 });
  const pump = publishUntilStopped(p, () => walk.trades(200, 200_000), acks, 4);
  await new Promise((r) => setTimeout(r, 1_000));
  const killedAt = performance.now();
  await c.signal(victim, "SIGKILL");
  await waitEachShardLiveOnce(c, survivors, 60_000, 20);
  const toLiveS = (performance.now() - killedAt) / 1000;
  await new Promise((r) => setTimeout(r, 1_000));
  await pump.stop();

  // Acked LSNs missing from the WAL are lost; a batch stored twice is duplicated.
  const wal = await readWal(c.nc, "bench");
  const byLsn = new Map(wal.map((r) => [r.lsn, r]));
  let lost = 0;
  for (const a of acks) for (const x of a.appends) if (!byLsn.has(x.lsn)) lost += x.rows;
  const seen = new Set<string>();
  let duplicated = 0;
  for (const r of wal) {
    if (r.msgId !== undefined && seen.has(r.msgId)) duplicated++;
    if (r.msgId !== undefined) seen.add(r.msgId);
  }
  // The survivors' hot sets against the replay: fewer rows is loss, more is duplication.
  await caughtUp(c, survivors);
  const expected = await replayDigests(c.nc, "bench", [trades]);
  const live = await c.liveShards(survivors, true);
  for (const [k, e] of expected) {
    const s = live.get(k)![0]![1];
    if (s.rows < e.rows) lost += e.rows - s.rows;
    if (s.rows > e.rows) duplicated += s.rows - e.rows;
    if (s.rows === e.rows && s.digest !== e.digest) throw new Error(`shard ${k}: digest differs from the WAL replay`);
  }
  log(`run ${i + 1}: killed ${victim} (${moved.length} shards, ${hotRows} hot rows in the cluster): live elsewhere after ${toLiveS.toFixed(3)} s; ${acks.length} batches acked during the run; lost ${lost}, duplicated ${duplicated}`);

  await c.spawn([victim]);
  // Let the leader hand the restarted node its shards back before the next run.
  const deadline = Date.now() + 20_000;
  while (![...(await c.stores.assignments.read()).values()].some((a) => a.node === victim) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return { toLiveS, lost, duplicated, movedShards: moved.length, ackedDuring: acks.length };
}

async function main(): Promise<void> {
  const c = await proxistCluster(SPEC);
  try {
    await c.spawn(IDS);
    await waitSpread(c, IDS, 60_000);
    const t0 = performance.now();
    await preload(c);
    log(`preloaded ${HOT_TICKS} ticks in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const results: RunResult[] = [];
    for (let i = 0; i < RUNS; i++) results.push(await run(c, i));
    const times = results.map((r) => r.toLiveS);
    writeResult(
      "failover",
      {
        failover_to_live_s_p50: round(median(times)),
        failover_to_live_s_max: round(Math.max(...times)),
        acked_lost: results.reduce((s, r) => s + r.lost, 0),
        acked_duplicated: results.reduce((s, r) => s + r.duplicated, 0),
      },
      {
        notes: {
          setup: "3 nats-server processes (cluster, R3 WAL stream and KV buckets) and 3 Proxist node processes (--shards assigned) on one machine, loopback",
          hot_set_ticks: HOT_TICKS,
          table: "bench.trades, 12 shards, 500 symbols",
          runs: RUNS,
          victim: "a non-leader node, SIGKILL, while 4 publisher loops ingest 200-tick batches",
          measured: "SIGKILL until every shard of the killed node reports state live on a survivor (GET /v1/shards polled every 20 ms)",
          node_timeout_ms: CONTROL_DEFAULTS.nodeTimeoutMs,
          heartbeat_ms: CONTROL_DEFAULTS.heartbeatMs,
          reconcile_ms: CONTROL_DEFAULTS.reconcileMs,
          to_live_s: times.map((t) => round(t)),
          moved_shards: results.map((r) => r.movedShards),
          batches_acked_per_run: results.map((r) => r.ackedDuring),
          lost_and_duplicated: "acked LSNs missing from the WAL, batches stored twice (same Nats-Msg-Id), and survivors' hot-set row counts and digests against a replay of the whole WAL",
        },
      },
    );
  } finally {
    await c.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
