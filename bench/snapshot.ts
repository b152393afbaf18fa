// Snapshot write/load only (the first part of bench/ops.ts), for iterating on
// the snapshot path: BENCH_OPS_TICKS ticks (default 10 M) over 1000 symbols,
// written off the event loop, loaded and verified. Prints the figures (scaled
// to 10 M), the CPU seconds spent by this process and by nats-server (a noisy
// machine's wall times say little), the encoded bytes and the load average;
// writes no result file.
import { readFileSync, rmSync, mkdtempSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { connect } from "@nats-io/transport-node";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import { parseTableSpec } from "../protocols/tablespec.js";
import { HotTable } from "../src/hotset/index.js";
import { writeSnapshotOffLoop } from "../src/node/shard/snapshotwriter.js";
import { SnapshotStore } from "../src/snapshot/store.js";
import { genBatches } from "./gen.js";

const TICKS = Number(process.env.BENCH_OPS_TICKS ?? 10_000_000);
const ROUNDS = Number(process.env.BENCH_SNAPSHOT_ROUNDS ?? 1);
const SCALE = 10_000_000 / TICKS;
const spec = parseTableSpec({ name: "trades", shards: 1, maxBatchRows: 1_000_000, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });
const shard = { tenant: "bench", table: "trades", bucket: 0 };

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "px-snapbench-"));
  const nats = await startNatsServer({ auth: "open", dir });
  const nc = await connect({ servers: nats.url });
  try {
    const table = new HotTable(spec);
    let lsn = 0;
    for (const b of genBatches("trades", { symbols: 1000, ticks: TICKS, batchRows: 10_000, seed: 4 })) table.apply(++lsn, b);
    const snapshots = await SnapshotStore.open(nc);
    for (let round = 0; round < ROUNDS; round++) {
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      // CPU seconds of this process (every thread) and of nats-server: what a quiet machine's wall time is bounded by.
      const natsCpu = (): number => {
        const f = readFileSync(`/proc/${nats.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
        return (Number(f[11]) + Number(f[12])) / 100;
      };
      const cpu = (): number => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      };
      let c0 = [cpu(), natsCpu()];
      let t0 = performance.now();
      const w = await writeSnapshotOffLoop(snapshots, shard, table);
      const writeS = (performance.now() - t0) / 1000;
      const writeCpu = [cpu() - c0[0]!, natsCpu() - c0[1]!];
      h.disable();
      c0 = [cpu(), natsCpu()];
      t0 = performance.now();
      const loaded = await snapshots.loadLatest(shard, spec, (l) => console.error(l));
      const loadS = (performance.now() - t0) / 1000;
      const loadCpu = [cpu() - c0[0]!, natsCpu() - c0[1]!];
      if (loaded?.table.rowCount !== table.rowCount) throw new Error(`snapshot load returned ${loaded?.table.rowCount} rows, the table has ${table.rowCount}`);
      const raw = TICKS * (8 + 8 + 4 + 8 + 8);
      console.log(
        `ticks ${TICKS}: write ${(writeS * SCALE).toFixed(2)} s/10M, load ${(loadS * SCALE).toFixed(2)} s/10M, stall max ${(h.max / 1e6).toFixed(1)} ms, ` +
          `cpu s/10M (node, nats-server) write ${writeCpu.map((c) => (c * SCALE).toFixed(2)).join(", ")} load ${loadCpu.map((c) => (c * SCALE).toFixed(2)).join(", ")}, ` +
          `bytes ${w.bytes} (${((raw / w.bytes) || 0).toFixed(2)}x of ${raw} raw), load avg ${loadavg().map((x) => x.toFixed(2)).join(" ")}`,
      );
      // The next round writes a newer snapshot.
      table.apply(++lsn, genBatches("trades", { symbols: 1, ticks: 1, seed: round }).next().value!);
    }
  } finally {
    await nc.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
