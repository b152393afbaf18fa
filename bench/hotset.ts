// Hot-set benchmark: append throughput and memory (bench/hotset-store.ts, run
// in a fresh process), WAL replay into a shard vs raw consume+decode of the
// same WAL in the same run, and snapshot write/load of 10 M ticks through the
// JetStream object store. Writes bench/results/hotset.json.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import { ensureWalStream, walPull } from "../src/wal/index.js";
import { encodeWalRecord, decodeWalRecord } from "../protocols/codec.js";
import { walStream, walSubject } from "../protocols/subjects.js";
import { parseTableSpec } from "../protocols/tablespec.js";
import { tickBatchToIpc, decodeTickBatch } from "../src/codec/arrow.js";
import { HotTable } from "../src/hotset/index.js";
import { ShardRuntime } from "../src/node/shard/runtime.js";
import { SnapshotStore } from "../src/snapshot/store.js";
import { genBatches } from "./gen.js";
import { median, round, writeResult } from "./lib.js";

const REPLAY_TICKS = Number(process.env.BENCH_REPLAY_TICKS ?? 3_000_000);
const SNAPSHOT_TICKS = Number(process.env.BENCH_SNAPSHOT_TICKS ?? 10_000_000);
const REPEATS = 3;
const spec = parseTableSpec({ name: "trades", shards: 1, maxBatchRows: 1_000_000, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });
const shard = { tenant: "bench", table: "trades", bucket: 0 };

function storeFigures(): Record<string, number> {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const out = execFileSync(process.execPath, ["--import", "tsx", "bench/hotset-store.ts"], { cwd: root, encoding: "utf8", maxBuffer: 1 << 24 });
  return JSON.parse(out.slice(out.indexOf("{"))) as Record<string, number>;
}

async function main(): Promise<void> {
  console.error("append and memory (bench/hotset-store.ts) ...");
  const store = storeFigures();

  const nats = await startNatsServer({ auth: "open" });
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await ensureWalStream(jsm, "bench");
    console.error(`filling the WAL with ${REPLAY_TICKS} ticks ...`);
    let pubs: Promise<unknown>[] = [];
    let filled = 0;
    for (const b of genBatches("trades", { symbols: 1000, ticks: REPLAY_TICKS, batchRows: 1000, seed: 3 })) {
      const record = encodeWalRecord({ tenant: "bench", table: "trades", schemaVersion: 1, producerId: "", producerSeq: 0n, bucket: 0, rows: b.rows, minTsMicros: 0n, maxTsMicros: 0n, payload: tickBatchToIpc(spec, b) });
      pubs.push(js.publish(walSubject("bench", "trades", 0), record));
      if (pubs.length >= 32) {
        await Promise.all(pubs);
        pubs = [];
      }
      if (++filled % 500 === 0) console.error(`  ${filled * 1000} ticks`);
    }
    await Promise.all(pubs);

    const raw: number[] = [];
    const replay: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      // Raw: the same ordered consumer with the shard's pulls (src/wal/pull.ts), decode only (protobuf envelope + Arrow payload).
      let t0 = performance.now();
      const consumer = await js.consumers.get(walStream("bench"), { filter_subjects: walSubject("bench", "trades", 0), deliver_policy: DeliverPolicy.All });
      const msgs = await consumer.consume(await walPull(js, walStream("bench"), 256));
      let rows = 0;
      for await (const m of msgs) {
        rows += decodeTickBatch(spec, decodeWalRecord(m.data).payload, "raw").rows;
        if (m.info.pending === 0) break;
      }
      raw.push(rows / ((performance.now() - t0) / 1000));

      // Replay: the shard actor from LSN 1 (no snapshot) until it is live.
      const snaps = { loadLatest: async () => undefined, write: async () => ({ lsn: 0, rows: 0, bytes: 0 }) } as unknown as SnapshotStore;
      t0 = performance.now();
      const rt = new ShardRuntime({ shard, spec, js, jsm, snapshots: snaps, log: () => {} }).start();
      while (!rt.state.includes("live")) await new Promise((res) => setTimeout(res, 5));
      replay.push(rt.stats.rows / ((performance.now() - t0) / 1000));
      rt.stop();
      console.error(`run ${r + 1}: raw ${Math.round(raw.at(-1)!)} ticks/s, replay ${Math.round(replay.at(-1)!)} ticks/s`);
    }

    console.error(`snapshot of ${SNAPSHOT_TICKS} ticks ...`);
    const table = new HotTable(spec);
    let lsn = 0;
    for (const b of genBatches("trades", { symbols: 1000, ticks: SNAPSHOT_TICKS, batchRows: 10_000, seed: 4 })) table.apply(++lsn, b);
    const snapshots = await SnapshotStore.open(nc);
    const writes: number[] = [];
    const loads: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      let t0 = performance.now();
      await snapshots.write({ ...shard, bucket: 1 }, table);
      writes.push((performance.now() - t0) / 1000);
      t0 = performance.now();
      const loaded = await snapshots.loadLatest({ ...shard, bucket: 1 }, spec, (l) => console.error(l));
      loads.push((performance.now() - t0) / 1000);
      if (loaded?.table.rowCount !== SNAPSHOT_TICKS) throw new Error(`snapshot load returned ${loaded?.table.rowCount} rows`);
    }

    const rawMed = median(raw);
    const replayMed = median(replay);
    writeResult(
      "hotset",
      {
        append_ticks_per_s: store.append_ticks_per_s!,
        append_late1pct_ticks_per_s: store.append_late1pct_ticks_per_s!,
        replay_ticks_per_s: Math.round(replayMed),
        raw_consume_decode_ticks_per_s: Math.round(rawMed),
        replay_vs_raw_ratio: round(replayMed / rawMed),
        snapshot_write_s_10m: round(median(writes) * (10_000_000 / SNAPSHOT_TICKS)),
        snapshot_load_s_10m: round(median(loads) * (10_000_000 / SNAPSHOT_TICKS)),
        bytes_per_tick: store.bytes_per_tick!,
        raw_bytes_per_tick: store.raw_bytes_per_tick!,
        memory_vs_raw_ratio: store.memory_vs_raw_ratio!,
      },
      {
        setup: `trades over 1000 symbols; append: ${store.ticks} ticks in ${store.batch_rows}-row batches (median of ${store.runs} runs); replay: ${REPLAY_TICKS} ticks in 1000-row WAL records on one shard subject, shard actor from LSN 1 vs an ordered consumer that only decodes, same nats-server, median of ${REPEATS}; snapshot: ${SNAPSHOT_TICKS} ticks written to / loaded from the JetStream object store (write includes encode + SHA-256 + put; load includes get + verify + decode + restore), median of ${REPEATS}; raw bytes per tick = ts 8 + lsn 8 + row 4 + values`,
        store,
        runs: { raw: raw.map(Math.round), replay: replay.map(Math.round), snapshot_write_s: writes.map((x) => round(x)), snapshot_load_s: loads.map((x) => round(x)) },
      },
    );
  } finally {
    await nc.close();
    await nats.dispose();
  }
}

await main();
