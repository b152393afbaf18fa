// Operations benchmark (issue 15): snapshots off the event loop, recovery, ingest
// during a snapshot, and the WAL's size under a steady feed with compaction.
// Writes bench/results/ops.json. Sizes: BENCH_OPS_TICKS (snapshot and recovery,
// default 10 M; figures are scaled to 10 M), BENCH_OPS_NODE_TICKS (the shard the
// ingest ratio snapshots, default 2 M), BENCH_OPS_STEADY_S (the steady feed,
// default 60 s), BENCH_OPS_RATE (its ticks/s, default 200 k), BENCH_OPS_WAL_LIMIT
// (bytes, default 64 MiB).
// Figures: snapshot_write_s_10m (< 2), snapshot_load_s_10m (< 2),
// snapshot_event_loop_stall_max_ms (< 50), ingest_during_snapshot_vs_idle_ratio
// (>= 0.8), wal_bytes_steady_vs_limit_ratio (<= 1), recovery_s_10m_ticks (< 5).
import { spawnSync } from "node:child_process";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import { startClickhouseServer } from "../src/runtime/servers/clickhouse.js";
import { ensureWalStream } from "../src/wal/index.js";
import { parseClusterSpec, parseTableSpec } from "../protocols/tablespec.js";
import { walStream } from "../protocols/subjects.js";
import { HotTable } from "../src/hotset/index.js";
import { ShardRuntime } from "../src/node/shard/runtime.js";
import { warmSnapshotThread, writeSnapshotOffLoop } from "../src/node/shard/snapshotwriter.js";
import { SnapshotStore } from "../src/snapshot/store.js";
import { MetadataStore } from "../src/control/index.js";
import { startNode } from "../src/node/node.js";
import { TickPublisher } from "../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../src/demo/randomwalk.js";
import { genBatches } from "./gen.js";
import { MALLOC_TUNABLES } from "../src/config/defaults.js";
import { round, writeResult } from "./lib.js";

const TICKS = Number(process.env.BENCH_OPS_TICKS ?? 10_000_000);
const NODE_TICKS = Number(process.env.BENCH_OPS_NODE_TICKS ?? 2_000_000);
const STEADY_S = Number(process.env.BENCH_OPS_STEADY_S ?? 60);
const WAL_LIMIT = Number(process.env.BENCH_OPS_WAL_LIMIT ?? 64 * 1024 * 1024);
// The steady feed's rate: a load the node sustains (the sink keeps up), so the
// WAL's size shows compaction at work rather than the full-WAL refusal.
const STEADY_RATE = Number(process.env.BENCH_OPS_RATE ?? 200_000);
const SCALE = 10_000_000 / TICKS;
/** Idle and snapshot windows of the ingest ratio, alternating. */
const PAIRS = 3;
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spec = parseTableSpec({ name: "trades", shards: 1, maxBatchRows: 1_000_000, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });
const shard = { tenant: "bench", table: "trades", bucket: 0 };

let walFullRefusals = 0;

/**
 * Ticks/s a publisher reaches for `seconds` (batches of 1000, 8 in flight),
 * paced to `rate` ticks/s when given. A full WAL refuses with
 * RESOURCE_EXHAUSTED: that is back-pressure, not a failure, so the batch is
 * counted as refused and the publisher waits 50 ms like a client would.
 */
async function ingestRate(pub: TickPublisher, walk: RandomWalk, seconds: number, opts: { until?: Promise<unknown>; rate?: number } = {}): Promise<number> {
  let rows = 0;
  let done = false;
  void opts.until?.finally(() => (done = true));
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const inflight = new Set<Promise<void>>();
  let sent = 0;
  while (!done && performance.now() < end) {
    if (opts.rate !== undefined) {
      const ahead = (sent * 1000) / opts.rate - (performance.now() - t0);
      if (ahead > 1) await new Promise((r) => setTimeout(r, ahead));
    }
    sent += 1000;
    const p: Promise<void> = pub
      .publish(walk.trades(1000, 1_000))
      .then(
        (a) => void (rows += a.rows),
        async (e: unknown) => {
          if ((e as { code?: string }).code !== "RESOURCE_EXHAUSTED") throw e;
          walFullRefusals++;
          await new Promise((r) => setTimeout(r, 50));
        },
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 8) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  return rows / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const nats = await startNatsServer({ auth: "open" });
  const ch = await startClickhouseServer();
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await ensureWalStream(jsm, "bench");

    // 1. Snapshot write (off the event loop) and load of TICKS ticks, the loop's longest stall meanwhile.
    console.error(`snapshot of ${TICKS} ticks ...`);
    // As a shard's small snapshots do once it grows: the snapshot thread is running before the big one.
    warmSnapshotThread();
    const table = new HotTable(spec);
    let lsn = 0;
    for (const b of genBatches("trades", { symbols: 1000, ticks: TICKS, batchRows: 10_000, seed: 4 })) table.apply(++lsn, b);
    // As a node opens it: the snapshot thread writes data objects over a connection of its own.
    const snapshots = await SnapshotStore.open(nc, 1, undefined, { servers: nats.url, name: "bench", credsPath: undefined, caPath: undefined });
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    let t0 = performance.now();
    const written = await writeSnapshotOffLoop(snapshots, shard, table);
    const writeS = (performance.now() - t0) / 1000;
    h.disable();
    t0 = performance.now();
    const loaded = await snapshots.loadLatest(shard, spec, (l) => console.error(l));
    const loadS = (performance.now() - t0) / 1000;
    if (loaded?.table.rowCount !== TICKS) throw new Error(`snapshot load returned ${loaded?.table.rowCount} rows`);
    // The hot set's own bytes per row (ts, lsn, rowInRecord, price, size) against what the snapshot stored.
    const rawBytes = TICKS * (8 + 8 + 4 + 8 * spec.columns.length);
    console.error(`  write ${writeS.toFixed(2)} s, load ${loadS.toFixed(2)} s, loop stall max ${(h.max / 1e6).toFixed(1)} ms, ${written.bytes} bytes (${(rawBytes / written.bytes).toFixed(2)}x smaller than the columns)`);

    // 2. Recovery: a shard runtime from that snapshot until live (the WAL after it is empty).
    t0 = performance.now();
    const rt = new ShardRuntime({ shard, spec, js, jsm, snapshots, log: () => {} }).start();
    while (!rt.state.includes("live")) await new Promise((r) => setTimeout(r, 5));
    const recoveryS = (performance.now() - t0) / 1000;
    rt.stop();
    console.error(`  recovery ${recoveryS.toFixed(2)} s`);

    // 3. Ingest rate idle vs during a snapshot of a NODE_TICKS shard, and 4. the WAL under a steady feed with compaction.
    // "quiet" has no scheduled snapshot: the ingest ratio's idle window holds none (its snapshots are the measured ones).
    const columns = [{ name: "price", type: "float64" }, { name: "size", type: "float64" }];
    const cluster = parseClusterSpec({
      tenants: [
        {
          name: "ops",
          tables: [
            { name: "trades", shards: 1, retention: { walKeep: 100, hotSeconds: 60 }, columns },
            { name: "quiet", shards: 1, retention: { walKeep: 100, hotSeconds: 60 }, snapshot: { intervalSeconds: 0 }, columns },
          ],
        },
      ],
    });
    await (await MetadataStore.open(nc)).applyCurrent(cluster);
    const node = await startNode({ natsUrl: nats.url, clickhouseUrl: ch.httpUrl, log: () => {}, snapshotIntervalMs: 2_000, walMaxBytes: WAL_LIMIT, compaction: { intervalMs: 1_000 } });
    const trades = cluster.tenants[0]!.tables[0]!;
    const walk = new RandomWalk(symbolNames(1000), 7, Date.now() * 1000);
    const pub = new TickPublisher(nc, { tenant: "ops", spec: trades, maxInFlight: 8 });
    let walMax = 0;
    const sampler = setInterval(() => void jsm.streams.info(walStream("ops")).then((i) => (walMax = Math.max(walMax, i.state.bytes)), () => {}), 250);
    try {
      console.error(`steady feed of ${STEADY_RATE} ticks/s for ${STEADY_S} s (WAL limit ${WAL_LIMIT} bytes, snapshot every 2 s, compaction every 1 s) ...`);
      const steady = await ingestRate(pub, walk, STEADY_S, { rate: STEADY_RATE });
      const steadyRefusals = walFullRefusals;
      // The steady phase's largest WAL: the limit is raised below, for the ingest ratio.
      const steadyWalMax = walMax;
      console.error(`  ${Math.round(steady)} ticks/s, WAL at most ${walMax} bytes, ${steadyRefusals} batches refused (WAL full)`);
      // The ingest ratio is about the snapshot, not the full-WAL back-pressure of the steady phase: room for it first.
      const info = await jsm.streams.info(walStream("ops"));
      await jsm.streams.update(walStream("ops"), { ...info.config, max_bytes: 16 * WAL_LIMIT });
      const refusedBefore = walFullRefusals;
      // The steady table at rest: once its last records are in a snapshot, its schedule writes none (nothing new).
      const h1 = node.shards.get({ tenant: "ops", table: "trades", bucket: 0 })!;
      for (const end = performance.now() + 60_000; performance.now() < end; ) {
        if (h1.runtime.state === "running.live" && h1.runtime.stats.lastSnapshotLsn === h1.runtime.stats.appliedLsn) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const quiet = cluster.tenants[0]!.tables[1]!;
      const pubQ = new TickPublisher(nc, { tenant: "ops", spec: quiet, maxInFlight: 8 });
      const h2 = node.shards.get({ tenant: "ops", table: "quiet", bucket: 0 })!;
      while (h2.runtime.stats.rows < NODE_TICKS) await ingestRate(pubQ, walk, 5);
      // Idle and snapshot windows alternate, PAIRS of each: the node's own drift (ClickHouse merges, the hot set's
      // chunks filling all at once, GC) lands on both sides instead of on one window.
      const idleRates: number[] = [];
      const duringRates: number[] = [];
      let idleWindowSnapshots = 0;
      let snapshotsDuring = 0;
      for (let pair = 0; pair < PAIRS; pair++) {
        const idleSnapshots = h1.runtime.stats.snapshots + h2.runtime.stats.snapshots;
        idleRates.push(await ingestRate(pubQ, walk, 5));
        // Checked, not assumed: no snapshot of either table during an idle window.
        idleWindowSnapshots += h1.runtime.stats.snapshots + h2.runtime.stats.snapshots - idleSnapshots;
        // Snapshots back to back for as long as the idle measure (one snapshot of this shard takes about a second: too short a window to rate).
        const snapshotting = (async () => {
          const end = performance.now() + 5_000;
          do {
            await h2.runtime.snapshotNow(120_000);
            snapshotsDuring++;
          } while (performance.now() < end);
        })();
        duringRates.push(await ingestRate(pubQ, walk, 30, { until: snapshotting }));
        console.error(`  pair ${pair + 1}: idle ${Math.round(idleRates[pair]!)} ticks/s, during snapshots ${Math.round(duringRates[pair]!)} (${round(duringRates[pair]! / idleRates[pair]!)})`);
      }
      const idle = median(idleRates);
      const during = median(duringRates);
      clearInterval(sampler);
      writeResult(
        "ops",
        {
          snapshot_write_s_10m: round(writeS * SCALE),
          snapshot_load_s_10m: round(loadS * SCALE),
          snapshot_event_loop_stall_max_ms: round(h.max / 1e6, 1),
          ingest_during_snapshot_vs_idle_ratio: round(during / idle),
          wal_bytes_steady_vs_limit_ratio: round(steadyWalMax / WAL_LIMIT),
          recovery_s_10m_ticks: round(recoveryS * SCALE),
        },
        {
          setup: `snapshot/recovery: ${TICKS} ticks over 1000 symbols in one shard (figures scaled to 10 M), staged off the hot set's chunks in slices into recycled buffers, framed, compressed and hashed on the snapshot thread (started before, as a growing shard's small snapshots start it), streamed to the JetStream object store (60 KiB chunks), loaded and verified, then a shard runtime from that snapshot until live, all in this process with GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES} (a node's); the stall is monitorEventLoopDelay's max during the write. Node: in-process with ClickHouse, steady feed of 1000-tick batches at ${STEADY_RATE} ticks/s for ${STEADY_S} s with a ${WAL_LIMIT}-byte WAL, snapshots every 2 s and compaction every 1 s (walKeep 100); ingest ratio (unpaced, 8 batches in flight, the WAL's limit raised 16x first so that it measures the snapshot, not a full WAL): on a table of its own without scheduled snapshots, once the steady table's last records were in a snapshot (so its schedule writes none), ${PAIRS} pairs of 5 s idle (runs.idle_window_snapshots: snapshots in them, 0) then 5 s of back-to-back snapshots of a ${NODE_TICKS}+ tick shard (runs.snapshots_during), the median idle rate vs the median rate during; the background snapshot thread at PX_SNAPSHOT_NICE=${process.env.PX_SNAPSHOT_NICE ?? "idle"}`,
          runs: { snapshot_bytes_10m: Math.round(written.bytes * SCALE), snapshot_compression_ratio: round(rawBytes / written.bytes), snapshot_data_format: loaded.manifest.dataFormat, ratio_phase_wal_full_refusals: walFullRefusals - refusedBefore, steady_rate_target: STEADY_RATE, steady_wal_full_refusals: steadyRefusals, wal_full_refusals_total: walFullRefusals, steady_ticks_per_s: Math.round(steady), idle_ticks_per_s: Math.round(idle), idle_ticks_per_s_windows: idleRates.map(Math.round), during_ticks_per_s_windows: duringRates.map(Math.round), idle_window_snapshots: idleWindowSnapshots, during_snapshot_ticks_per_s: Math.round(during), snapshots_during: snapshotsDuring, wal_max_bytes: steadyWalMax, event_loop_p99_ms: round(h.percentile(99) / 1e6, 1) },
        },
      );
    } finally {
      clearInterval(sampler);
      await node.stop();
    }
  } finally {
    await nc.close();
    await nats.dispose();
    await ch.dispose();
  }
}

// The snapshot and recovery run in this process: with the malloc settings a node process gets (./proxist, the Dockerfile, the test helpers), set before start.
if (process.env.GLIBC_TUNABLES === undefined) {
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit", env: { ...process.env, GLIBC_TUNABLES: MALLOC_TUNABLES } });
  process.exit(child.status ?? 1);
} else {
  await main();
  // A push consumer's heartbeat timer can outlive the closed connection (seen once: ClosedConnectionError every few seconds, the process never ending).
  process.exit(0);
}
