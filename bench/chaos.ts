// Chaos benchmark (issue 19): seeded chaos runs (test/faults/run.ts: a 3-server
// NATS cluster, ClickHouse, 3 Proxist node processes, faults one at a time
// while 3 producers ingest, a reader queries and one subscribes; the independent checker
// after each run) for --minutes, then the negative controls
// (test/faults/controls.ts). Writes bench/results/chaos.json.
//   npm run bench:chaos -- --minutes 30 --seed 7
// Run i uses seed S + i; a run with violations prints its seed and schedule,
// and the process exits 1 after writing the results.
import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { violations } from "../test/faults/checker.js";
import { Controls, detected, runControls, startControlsHarness } from "../test/faults/controls.js";
import type { ControlResult } from "../test/faults/controls.js";
import { assertClean, chaosRun } from "../test/faults/run.js";
import type { RunResult } from "../test/faults/run.js";
import { FAULT_KINDS } from "../test/faults/schedule.js";
import type { FaultKind } from "../test/faults/schedule.js";
import { writeResult } from "./lib.js";

const log = (l: string): void => console.log(`[${new Date().toISOString()}] ${l}`);

function args(): { minutes: number; seed: number; faults: number; controls: boolean; kinds: readonly FaultKind[] } {
  const { values } = parseArgs({ options: { minutes: { type: "string" }, seed: { type: "string" }, faults: { type: "string" }, kinds: { type: "string" }, "no-controls": { type: "boolean" } } });
  // A subset of the kinds (e.g. --kinds nats-disk-full) to replay one fault's effect on its own.
  const kinds = values.kinds === undefined ? FAULT_KINDS : values.kinds.split(",").map((k) => k.trim());
  const unknown = kinds.filter((k) => !(FAULT_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0 || kinds.length === 0) throw new Error(`--kinds ${values.kinds}: unknown kind ${unknown.join(", ") || "(none given)"}; name some of ${FAULT_KINDS.join(", ")}, comma separated`);
  const num = (name: string, v: string | undefined, fallback: number): number => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} ${v}: must be a non-negative number (e.g. --${name} ${fallback})`);
    return n;
  };
  const seed = num("seed", values.seed, Date.now() % 100_000);
  if (!Number.isInteger(seed)) throw new Error(`--seed ${values.seed}: must be an integer`);
  // 10 faults a run: every kind once, then 5 more at random (about 1 min of faults on top of ~1.5 min setup and checks).
  return { minutes: num("minutes", values.minutes, 5), seed, faults: Math.max(kinds.length, Math.round(num("faults", values.faults, 10))), controls: values["no-controls"] !== true, kinds: kinds as FaultKind[] };
}

async function main(): Promise<void> {
  const a = args();
  const uptimeAtStart = execFileSync("uptime", { encoding: "utf8" }).trim();
  const loadAtStart = loadavg().map((x) => Number(x.toFixed(2)));
  // As in the int tests (vitest.config.ts): the servers reserve every stream's max_bytes against a store sized
  // from the free disk by default, and on a nearly full disk streams were refused.
  process.env.PX_NATS_MAX_FILE_STORE ??= "1T";
  log(`chaos: ${a.minutes} min from seed ${a.seed}, ${a.faults} faults a run${a.kinds.length < FAULT_KINDS.length ? ` of kinds ${a.kinds.join(", ")}` : ""}`);
  const end = Date.now() + a.minutes * 60_000;
  const runs: RunResult[] = [];
  const failures: string[] = [];
  // At least one run, however short --minutes is.
  for (let i = 0; runs.length === 0 || Date.now() < end; i++) {
    const seed = a.seed + i;
    try {
      const r = await chaosRun({ seed, faults: a.faults, kinds: a.kinds, log });
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
      chaos_feed_rows: sum((r) => r.feedRows),
      chaos_feed_resubscriptions: sum((r) => r.feedResubscribes),
      chaos_stale_watermarks: sum((r) => r.staleWatermarks),
    },
    {
      notes: {
        setup: "3 nats-server processes (cluster, R3 WAL and KV; each in a network namespace of its own; with PX_FAULTS_DISK_FULL=enospc its directory on a 768 MiB tmpfs), 1 clickhouse-server (root namespace, reached through a TCP relay on the bridge), 3 Proxist node processes (--shards assigned, sinks on; each in a network namespace of its own, libfaketime preloaded), one machine; table chaos.trades, 6 shards, rows older than 1 s of data time leave RAM once persisted",
        uptime_at_start: uptimeAtStart,
        uptime_at_end: execFileSync("uptime", { encoding: "utf8" }).trim(),
        load_avg_at_start: loadAtStart,
        machine_shared: "other helpers' builds, tests and benchmarks ran on the same 2 cores during this run (load above): a correctness run, not a speed figure",
        minutes: a.minutes,
        first_seed: a.seed,
        seeds: runs.map((r) => r.seed),
        faults_per_run: a.faults,
        fault_kinds_covered: [...kinds].sort(),
        fault_kinds_available: FAULT_KINDS,
        workload: "3 producers (own symbols, one batch of 200 rows in flight each, producer ids, retries with the same seq), 1 reader querying the running nodes every 250 ms, 1 reader subscribed to a raw-tick feed (gRPC Subscribe from the first WAL record, moving to the next running node from its last offset when its node dies, stops, is cut off or is silent 8 s)",
        fault_injection: {
          "node-kill": "SIGKILL of a node process, restarted after the hold",
          "node-pause": "SIGSTOP/SIGCONT of a node process",
          "nats-leader-kill": "SIGKILL of the NATS server leading the WAL stream, restarted; the next fault waits until the stream is whole",
          "nats-kill": "SIGKILL of any NATS server, restarted",
          "clickhouse-pause": "SIGSTOP/SIGCONT of clickhouse-server",
          "partition-node-nats": "iptables DROP in a node's network namespace of every NATS server's address, both ways",
          "partition-nats": "iptables DROP in a NATS server's namespace of its two peers' addresses (its clients still reach it)",
          "clock-jump": "a node's wall clock (CLOCK_REALTIME via libfaketime's re-read offset file) 3-15 s ahead or behind; its HTTP Date header checked; monotonic clock untouched",
          "clickhouse-refuse": "the ClickHouse default profile made readonly=2 (users.xml, reloaded by the server): every INSERT refused with 164 READONLY",
          "nats-disk-full":
            process.env.PX_FAULTS_DISK_FULL === "enospc"
              ? "a NATS server's tmpfs filled to the last 64 KiB with fallocate; freed after the hold (restarted if its JetStream does not recover in 20 s)"
              : "the WAL's store full: its max_bytes lowered to what it holds plus 8 MiB and that margin filled with filler records on the anchor subject (JetStream refuses appends, discard new); fillers deleted and the limit put back after the hold",
        },
        checker: "ledger of every ack (producer id, seq, LSNs, row ids) against ClickHouse read with plain SQL over HTTP and every node's complete answer and the feed reader's rows; lost (feed: an acked row that never arrived), duplicated, out of order per symbol, watermark decreased (among those readers accept: the highest lease revision wins; an older revision's after it is counted as stale, not judged) or ahead of ClickHouse, corrupt rows, shards not live once 2 min after healing",
        controls: controls.map((c) => ({ name: c.name, detected: detected(c), lost: c.findings.lost.length, duplicated: c.findings.duplicated.length })),
        runs: runs.map((r) => ({ seed: r.seed, seconds: Math.round(r.seconds), acked_rows: r.ackedRows, injected: r.injected, reads: r.readerQueries, feed_rows: r.feedRows, feed_resubscriptions: r.feedResubscribes, watermarks: r.watermarks, stale_watermarks: r.staleWatermarks, violations: violations(r.findings) })),
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
