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
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { startTracing } from "../src/node/obs/index.js";
import { latencies, median, mergeResult, percentile, pipelined, round, writeResult } from "./lib.js";

/** An OTLP/HTTP receiver that accepts every export and keeps nothing (counts requests). */
async function otlpSink(received: { requests: number }): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received.requests++;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return server;
}

const BATCH = 1000;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 2000);
const WINDOW = 32;
// BENCH_REPEATS / BENCH_WARMUP / BENCH_LAT_SAMPLES shrink a smoke run; the committed figures use the defaults.
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 500);
const LAT_SAMPLES = Number(process.env.BENCH_LAT_SAMPLES ?? 400);
/** Sampling of the tracing run (issue 16: ingest_with_tracing_vs_off_ratio at 1%). */
const TRACE_SAMPLE = 0.01;

const trades = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables.find((t) => t.name === "trades")!;

async function main(): Promise<void> {
  const loadBefore = round(loadavg()[0]!, 2);
  const nats = await startNatsServer({ auth: "open" });
  const nc: NatsConnection = await connect({ servers: nats.url, noAsyncTraces: true });
  await (await MetadataStore.open(nc)).applyCurrent(DEFAULT_CLUSTER_SPEC);
  // A gateway-only node: this measures the ingest path, not hot-set upkeep (bench:hotset does that).
  let node = await spawnNodeProcess(nats.url, {}, ["--shards", "none"]);
  let otlp: Server | undefined;
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
    await pipelined(WARMUP, (i) => warm.publish(batches[i % batches.length]!), WINDOW);
    await pipelined(WARMUP, (i) => js.publish("raw.trades", payloads[i % payloads.length]!, { msgID: `raw-warm-${i}` }), WINDOW);

    const e2e: number[] = [];
    const raw: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const pub = new TickPublisher(nc, { tenant: "default", spec: trades, maxInFlight: WINDOW });
      // End to end includes the client's Arrow encoding (grouped by bucket, TickPublisher's default), as a real publisher pays it.
      const s1 = await pipelined(BATCHES, (i) => pub.publish(batches[i % batches.length]!), WINDOW);
      e2e.push((BATCHES * BATCH) / s1);
      const s2 = await pipelined(BATCHES, (i) => js.publish("raw.trades", payloads[i % payloads.length]!, { msgID: `raw-${r}-${i}` }), WINDOW);
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

    // Tracing on at 1% (gateway process and this publisher; spans exported over OTLP/HTTP to a local receiver
    // that accepts and drops them) against off, in alternating rounds: each round starts a fresh gateway
    // process per side (who goes first alternates), warms it and publishes the same batches. A sequential
    // comparison (off first, then on) swung with the machine more than tracing costs.
    await node.kill("SIGTERM");
    const received = { requests: 0 };
    otlp = await otlpSink(received);
    const otlpUrl = `http://127.0.0.1:${(otlp.address() as AddressInfo).port}/v1/traces`;
    const rates: Record<"off" | "tracing", number[]> = { off: [], tracing: [] };
    for (let r = 0; r < REPEATS; r++) {
      for (const side of r % 2 === 0 ? (["off", "tracing"] as const) : (["tracing", "off"] as const)) {
        node = await spawnNodeProcess(nats.url, side === "tracing" ? { PX_TRACE_SAMPLE: String(TRACE_SAMPLE), PX_OTLP_URL: otlpUrl } : {}, ["--shards", "none"]);
        const stopTracing = side === "tracing" ? startTracing({ sampleRatio: TRACE_SAMPLE, otlpUrl }) : undefined;
        const p = new TickPublisher(nc, { tenant: "default", spec: trades, maxInFlight: WINDOW });
        await pipelined(WARMUP, (i) => p.publish(batches[i % batches.length]!), WINDOW);
        rates[side].push((BATCHES * BATCH) / (await pipelined(BATCHES, (i) => p.publish(batches[i % batches.length]!), WINDOW)));
        await stopTracing?.();
        await node.kill("SIGTERM");
      }
      console.error(`tracing round ${r + 1}: off ${Math.round(rates.off.at(-1)!)} ticks/s, tracing ${Math.round(rates.tracing.at(-1)!)} ticks/s`);
    }
    // The next step (finally) stops a live process: start one more.
    node = await spawnNodeProcess(nats.url, {}, ["--shards", "none"]);
    const ratios = rates.tracing.map((x, i) => x / rates.off[i]!).sort((a, b) => a - b);
    mergeResult(
      "observability",
      "ingest",
      { ingest_with_tracing_vs_off_ratio: round(median(ratios)) },
      {
        setup: `bench:ingest e2e (same batches, window, gateway flags); tracing on at ${TRACE_SAMPLE * 100}% sampling in the gateway process and the publisher, spans exported with OTLP/HTTP to a local receiver, vs off; ${REPEATS} rounds, each a fresh gateway process per side with ${WARMUP} batches of warm-up, the side going first alternating; figure = median of the per-round tracing/off ratios`,
        e2e_ticks_per_s: { off: rates.off.map(Math.round), tracing: rates.tracing.map(Math.round) },
        ratio_min_max: [round(ratios[0]!), round(ratios.at(-1)!)],
        otlp_requests_received: received.requests,
      },
    );
  } finally {
    await node.kill("SIGTERM");
    otlp?.close();
    await nc.close();
    await nats.dispose();
  }
}

await main();
