// Ingest benchmark: TypeScript client -> gateway (a separate node process) ->
// JetStream WAL, against the same client publishing the same bytes raw to
// JetStream, in the same run on the same nats-server. Prints ratios and writes
// bench/results/ingest.json.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import { MetadataStore } from "../src/runtime/metadata.js";
import { TickPublisher } from "../src/client/publisher.js";
import { tickBatchToIpc } from "../src/codec/arrow.js";
import { RandomWalk, symbolNames } from "../src/demo/randomwalk.js";
import { DEFAULT_CLUSTER_SPEC } from "../protocols/tablespec.js";
import { spawnNodeProcess } from "../test/helpers/nodeproc.js";
import { median, percentile, round, writeResult } from "./lib.js";

const BATCH = 1000;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 2000);
const WINDOW = 32;
const REPEATS = 3;
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

async function latencies(n: number, once: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 50; i++) await once(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await once();
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const nats = await startNatsServer();
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

    const e2e: number[] = [];
    const raw: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const pub = new TickPublisher(nc, { tenant: "default", spec: trades, maxInFlight: WINDOW });
      // End to end includes the client's Arrow encoding, as a real publisher pays it.
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
        setup: `trades (sym, ts, price, size), 4 shards, ${BATCH}-tick batches, ${BATCHES} batches per run, window ${WINDOW}, median of ${REPEATS} runs; client, gateway (own process, --shards none) and nats-server on this machine; raw = same Arrow IPC bytes js.publish()ed to a plain stream with the same window`,
        runs: { e2e: e2e.map(Math.round), raw: raw.map(Math.round) },
      },
    );
  } finally {
    await node.kill("SIGTERM");
    await nc.close();
    await nats.stop();
  }
}

await main();
