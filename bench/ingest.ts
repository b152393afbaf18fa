// Ingest benchmark: TypeScript client -> gateway (a separate node process) ->
// JetStream WAL, against the same client publishing the same bytes raw to
// JetStream, in the same run on the same nats-server. Prints ratios and writes
// bench/results/ingest.json.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import { MetadataStore } from "../src/control/index.js";
import { TickPublisher } from "../src/client/publisher.js";
import { tickBatchToIpc } from "../src/codec/arrow.js";
import { RandomWalk, symbolNames } from "../src/demo/randomwalk.js";
import { DEFAULT_CLUSTER_SPEC } from "../protocols/tablespec.js";
import { spawnNodeProcess } from "../test/helpers/nodeproc.js";
import { loadavg } from "node:os";
import { latencies, median, percentile, round, writeResult } from "./lib.js";

const BATCH = 1000;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 2000);
const WINDOW = 32;
const REPEATS = 5;
const WARMUP = 500;
const LAT_SAMPLES = 400;

const trades = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables.find((t) => t.name === "trades")!;

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

async function main(): Promise<void> {
  const loadBefore = round(loadavg()[0]!, 2);
  const nats = await startNatsServer({ auth: "open" });
  const nc: NatsConnection = await connect({ servers: nats.url, noAsyncTraces: true });
  await (await MetadataStore.open(nc)).applyCurrent(DEFAULT_CLUSTER_SPEC);
  // A gateway-only node: this measures the ingest path, not hot-set upkeep (bench:hotset does that).
  const node = await spawnNodeProcess(nats.url, {}, ["--shards", "none"]);
  await new Promise((r) => setTimeout(r, 500));
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "RAW", subjects: ["raw.>"] });
    const js = jetstream(nc);
    const walk = new RandomWalk(symbolNames(1000), 1, 1.7e15);
    const batches = Array.from({ length: 200 }, () => walk.trades(BATCH, 1_000_000));
    const payloads = batches.map((b) => tickBatchToIpc(trades, b));

    // Warm both paths (JIT in the client and the node process) before measuring either.
    const warm = new TickPublisher(nc, { tenant: "default", spec: trades, maxInFlight: WINDOW });
    await pipelined(WARMUP, (i) => warm.publish(batches[i % batches.length]!));
    await pipelined(WARMUP, (i) => js.publish("raw.trades", payloads[i % payloads.length]!, { msgID: `raw-warm-${i}` }));

    const e2e: number[] = [];
    const raw: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const pub = new TickPublisher(nc, { tenant: "default", spec: trades, maxInFlight: WINDOW });
      // End to end includes the client's Arrow encoding (grouped by bucket, TickPublisher's default), as a real publisher pays it.
      const s1 = await pipelined(BATCHES, (i) => pub.publish(batches[i % batches.length]!));
      e2e.push((BATCHES * BATCH) / s1);
      const s2 = await pipelined(BATCHES, (i) => js.publish("raw.trades", payloads[i % payloads.length]!, { msgID: `raw-${r}-${i}` }));
      raw.push((BATCHES * BATCH) / s2);
      console.error(`run ${r + 1}: e2e ${Math.round(e2e.at(-1)!)} ticks/s, raw ${Math.round(raw.at(-1)!)} ticks/s`);
    }

    const pub = new TickPublisher(nc, { tenant: "default", spec: trades, maxInFlight: 1 });
    const one = walk.trades(1, 1);
    const lat1 = await latencies(LAT_SAMPLES, () => pub.publish(one));
    const lat1000 = await latencies(LAT_SAMPLES, () => pub.publish(batches[0]!));
    // The floor under the 1000-tick ack: one raw JetStream publish of the same bytes (one hop instead of three).
    let rawSeq = 0;
    const latRaw = await latencies(LAT_SAMPLES, () => js.publish("raw.trades", payloads[0]!, { msgID: `raw-lat-${rawSeq++}` }));

    const e2eMed = median(e2e);
    const rawMed = median(raw);
    writeResult(
      "ingest",
      {
        e2e_ticks_per_s: Math.round(e2eMed),
        raw_jetstream_ticks_per_s: Math.round(rawMed),
        e2e_vs_raw_ratio: round(e2eMed / rawMed),
        ack_p50_ms_1tick: round(percentile(lat1, 50)),
        ack_p99_ms_1tick: round(percentile(lat1, 99)),
        ack_p50_ms_1000ticks: round(percentile(lat1000, 50)),
        ack_p99_ms_1000ticks: round(percentile(lat1000, 99)),
      },
      {
        setup: `trades (sym, ts, price, size), 4 shards, ${BATCH}-tick batches, ${BATCHES} batches per run, window ${WINDOW}, ${WARMUP} batches of warm-up per path, median of ${REPEATS} runs (e2e and raw alternate); client, gateway (own process, --shards none) and nats-server on this machine; raw = same Arrow IPC bytes js.publish()ed to a plain stream with the same window`,
        runs: { e2e: e2e.map(Math.round), raw: raw.map(Math.round) },
        raw_ack_ms_1000ticks: { p50: round(percentile(latRaw, 50)), p99: round(percentile(latRaw, 99)) },
        // Other work on the machine skews every figure: the 1-minute load average before and after the run.
        load_avg_1m: { before: loadBefore, after: round(loadavg()[0]!, 2) },
      },
    );
  } finally {
    await node.kill("SIGTERM");
    await nc.close();
    await nats.stop();
  }
}

await main();
