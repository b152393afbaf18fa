// Chaos benchmark (issue 19): seeded chaos runs (test/faults/run.ts: a 3-server
// NATS cluster, ClickHouse, 3 Proxist node processes, faults one at a time
// while 3 producers ingest and a reader queries; the independent checker
// after each run) for --minutes, then the negative controls
// (test/faults/controls.ts). Writes bench/results/chaos.json.
//   npm run bench:chaos -- --minutes 30 --seed 7
// Run i uses seed S + i; a run with violations prints its seed and schedule,
// and the process exits 1 after writing the results.
import { parseArgs } from "node:util";
import { violations } from "../test/faults/checker.js";
import { Controls, detected, runControls, startControlsHarness } from "../test/faults/controls.js";
import type { ControlResult } from "../test/faults/controls.js";
import { assertClean, chaosRun } from "../test/faults/run.js";
import type { RunResult } from "../test/faults/run.js";
import { FAULT_KINDS } from "../test/faults/schedule.js";
import { writeResult } from "./lib.js";

const log = (l: string): void => console.log(`[${new Date().toISOString()}] ${l}`);

function args(): { minutes: number; seed: number; faults: number; controls: boolean } {
  const { values } = parseArgs({ options: { minutes: { type: "string" }, seed: { type: "string" }, faults: { type: "string" }, "no-controls": { type: "boolean" } } });
  const num = (name: string, v: string | undefined, fallback: number): number => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} ${v}: must be a non-negative number (e.g. --${name} ${fallback})`);
    return n;
  };
  const seed = num("seed", values.seed, Date.now() % 100_000);
  if (!Number.isInteger(seed)) throw new Error(`--seed ${values.seed}: must be an integer`);
  // 10 faults a run: every kind once, then 5 more at random (about 1 min of faults on top of ~1.5 min setup and checks).
  return { minutes: num("minutes", values.minutes, 5), seed, faults: Math.max(FAULT_KINDS.length, Math.round(num("faults", values.faults, 10))), controls: values["no-controls"] !== true };
}

async function main(): Promise<void> {
  const a = args();
  // As in the int tests (vitest.config.ts): the servers reserve every stream's max_bytes against a store sized
  // from the free disk by default, and on a nearly full disk streams were refused.
  process.env.PX_NATS_MAX_FILE_STORE ??= "1T";
  log(`chaos: ${a.minutes} min from seed ${a.seed}, ${a.faults} faults a run`);
  const end = Date.now() + a.minutes * 60_000;
  const runs: RunResult[] = [];
  const failures: string[] = [];
  // At least one run, however short --minutes is.
  for (let i = 0; runs.length === 0 || Date.now() < end; i++) {
    const seed = a.seed + i;
    try {
      const r = await chaosRun({ seed, faults: a.faults, log });
      runs.push(r);
      try {
        assertClean(r);
      } catch (e) {
        failures.push((e as Error).message);
        log((e as Error).message);
      }
    } catch (e) {
      failures.push(`seed ${seed}: ${(e as Error).message.split("\n").slice(0, 8).join("\n")}`);
      log(`chaos run with seed ${seed} did not complete: ${(e as Error).message}`);
      if (runs.length === 0 && Date.now() >= end) break;
    }
  }
  const controls: ControlResult[] = [];
  if (a.controls) {
    const h = await startControlsHarness(log);
    try {
      await h.waitSettled(90_000);
      controls.push(...(await runControls(new Controls(h, log))));
    } finally {
      await h.close();
    }
  }
  const sum = (f: (r: RunResult) => number): number => runs.reduce((n, r) => n + f(r), 0);
  const kinds = new Set(runs.flatMap((r) => Object.keys(r.injected)));
  writeResult(
    "chaos",
    {
      chaos_runs: runs.length,
      chaos_faults_injected: sum((r) => Object.values(r.injected).reduce((n, x) => n + x, 0)),
      chaos_acked_ticks: sum((r) => r.ackedRows),
      chaos_lost: sum((r) => r.findings.lost.length),
      chaos_duplicated: sum((r) => r.findings.duplicated.length),
      chaos_order_violations: sum((r) => r.findings.outOfOrder.length),
      chaos_watermark_violations: sum((r) => r.findings.watermark.length),
      chaos_corrupt_rows: sum((r) => r.findings.corrupt.length),
      chaos_stuck_shards: sum((r) => r.findings.stuck.length),
      chaos_runs_not_completed: failures.length - runs.filter((r) => violations(r.findings) > 0).length,
      negative_controls: controls.length,
      negative_controls_detected: controls.filter(detected).length,
      fault_kinds_covered: kinds.size,
    },
    {
      notes: {
        setup: "3 nats-server processes (cluster, R3 WAL and KV), 1 clickhouse-server, 3 Proxist node processes (--shards assigned, sinks on), one machine, loopback; table chaos.trades, 6 shards, rows older than 1 s of data time leave RAM once persisted",
        minutes: a.minutes,
        first_seed: a.seed,
        seeds: runs.map((r) => r.seed),
        faults_per_run: a.faults,
        fault_kinds_covered: [...kinds].sort(),
        fault_kinds_available: FAULT_KINDS,
        workload: "3 producers (own symbols, one batch of 200 rows in flight each, producer ids, retries with the same seq), 1 reader querying the running nodes every 250 ms",
        checker: "ledger of every ack (producer id, seq, LSNs, row ids) against ClickHouse read with plain SQL over HTTP and every node's complete answer; lost, duplicated, out of order per symbol, watermark decreased or ahead of ClickHouse, corrupt rows, shards not live once 2 min after healing",
        controls: controls.map((c) => ({ name: c.name, detected: detected(c), lost: c.findings.lost.length, duplicated: c.findings.duplicated.length })),
        runs: runs.map((r) => ({ seed: r.seed, seconds: Math.round(r.seconds), acked_rows: r.ackedRows, injected: r.injected, reads: r.readerQueries, watermarks: r.watermarks, violations: violations(r.findings) })),
        failures,
      },
    },
  );
  if (failures.length > 0 || controls.some((c) => !detected(c))) process.exitCode = 1;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
