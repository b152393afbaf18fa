// Micro-benchmark of the pure hot-set store: append throughput of generated
// trades (in order, and with 1% late ticks) and memory per tick against the raw
// column bytes. Batches are generated in windows outside the timed region and
// dropped after use, as a shard's input would be. Prints one JSON object.
// Usage: npx tsx bench/hotset-store.ts [ticks=10000000] [symbols=1000]
import { availableParallelism, loadavg } from "node:os";
import { DEFAULT_CLUSTER_SPEC } from "../protocols/tablespec.js";
import type { TableSpec } from "../protocols/tablespec.js";
import type { TickBatch } from "../src/codec/tickbatch.js";
import { valueWidth } from "../src/codec/tickbatch.js";
import { HotTable } from "../src/hotset/index.js";
import { genBatches } from "./gen.js";
import type { GenOptions } from "./gen.js";

const ticks = Number(process.argv[2] ?? 10_000_000);
const symbols = Number(process.argv[3] ?? 1_000);
const batchRows = 1_000;
const windowBatches = 500;
const runs = 3;

const spec: TableSpec | undefined = DEFAULT_CLUSTER_SPEC.tenants[0]?.tables.find((t) => t.name === "trades");
if (spec === undefined) throw new Error("bench: the default cluster spec has no trades table");
const trades: TableSpec = spec;

interface Run {
  readonly wallTicksPerS: number;
  /** Throughput by main-thread CPU time: less sensitive to other processes on a shared machine. */
  readonly cpuTicksPerS: number;
  readonly bytesPerTick: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function cpuMicros(): number {
  const u = process.threadCpuUsage();
  return u.user + u.system;
}

/** Applies the generated day to a fresh table; the table is dropped on return so the next run reuses its memory. */
function run(gen: GenOptions): Run {
  const it = genBatches("trades", gen);
  const table = new HotTable(trades);
  let lsn = 0;
  let wallNs = 0n;
  let cpu = 0;
  for (;;) {
    const window: TickBatch[] = [];
    for (let i = 0; i < windowBatches; i++) {
      const next = it.next();
      if (next.done === true) break;
      window.push(next.value);
    }
    if (window.length === 0) break;
    const c0 = cpuMicros();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < window.length; i++) table.apply(++lsn, window[i]!);
    wallNs += process.hrtime.bigint() - t0;
    cpu += cpuMicros() - c0;
  }
  table.verify();
  if (table.rowCount !== gen.ticks) throw new Error(`bench: table holds ${table.rowCount} rows, expected ${gen.ticks}`);
  return {
    wallTicksPerS: table.rowCount / (Number(wallNs) / 1e9),
    cpuTicksPerS: table.rowCount / (cpu / 1e6),
    bytesPerTick: table.bytes / table.rowCount,
  };
}

/**
 * One cold run first: it pays for faulting fresh memory into the process, which
 * on a VM can cost as much as the appends. Then `runs` timed runs; medians.
 */
function measure(gen: GenOptions): { cold: Run; wall: number; cpu: number; bytesPerTick: number } {
  const cold = run(gen);
  const all: Run[] = [];
  for (let i = 0; i < runs; i++) all.push(run(gen));
  return {
    cold,
    wall: median(all.map((r) => r.wallTicksPerS)),
    cpu: median(all.map((r) => r.cpuTicksPerS)),
    bytesPerTick: all[all.length - 1]!.bytesPerTick,
  };
}

const inOrder = measure({ symbols, ticks, batchRows, seed: 1 });
const late = measure({ symbols, ticks, batchRows, seed: 2, lateFraction: 0.01, maxLatenessMicros: 100_000 });

// Raw: 8 ts + 8 lsn + 4 rowInRecord + the value widths.
const rawBytesPerTick = 20 + trades.columns.reduce((n, c) => n + valueWidth(c.type), 0);
const round = (x: number, digits = 0) => Number(x.toFixed(digits));

console.log(
  JSON.stringify(
    {
      ticks,
      symbols,
      batch_rows: batchRows,
      runs,
      node: process.version,
      // append_*_ticks_per_s are wall clock; *_cpu_* divide by main-thread CPU time, which
      // other processes on a busy machine disturb less. Load is sampled at the end.
      cpus: availableParallelism(),
      loadavg_1m: round(loadavg()[0]!, 2),
      append_ticks_per_s: round(inOrder.wall),
      append_late1pct_ticks_per_s: round(late.wall),
      append_cpu_ticks_per_s: round(inOrder.cpu),
      append_late1pct_cpu_ticks_per_s: round(late.cpu),
      append_cold_first_run_ticks_per_s: round(inOrder.cold.wallTicksPerS),
      append_late1pct_cold_first_run_ticks_per_s: round(late.cold.wallTicksPerS),
      bytes_per_tick: round(inOrder.bytesPerTick, 2),
      late1pct_bytes_per_tick: round(late.bytesPerTick, 2),
      raw_bytes_per_tick: rawBytesPerTick,
      memory_vs_raw_ratio: round(inOrder.bytesPerTick / rawBytesPerTick, 3),
      late1pct_memory_vs_raw_ratio: round(late.bytesPerTick / rawBytesPerTick, 3),
    },
    null,
    2,
  ),
);
