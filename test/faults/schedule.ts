// The nemesis's plan: a seeded list of faults, one at a time, each with the
// pause before it and how long it lasts. Pure (no IO), so a seed replays the
// same schedule and a unit test can check what a seed covers.
import { rng } from "../../src/demo/randomwalk.js";

/** What the harness can break (see harness.ts for how each is done). */
export const FAULT_KINDS = ["node-kill", "node-pause", "nats-leader-kill", "nats-kill", "clickhouse-pause", "partition-node-nats", "partition-nats", "clock-jump", "clickhouse-refuse", "nats-disk-full"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/**
 * The process faults (kills and pauses): the kinds the short suite in CI runs.
 * The network, clock, insert-refusal and disk-full kinds run in bench:chaos:
 * CI's seed found violations with them (shards stopped on a WAL whose first
 * sequence jumped after a NATS server's disk was full, a shard hosted by no
 * node after a node kill, R3 WAL replicas drifting apart) that are open. On
 * nats-server 2.10.27 (setup's, issue 19) WAL replicas still drifted apart
 * after a NATS server SIGKILL: seeds 19 and 20 with all kinds (before the
 * gateway's sequence-0 fix) and the process kinds plus disk-full and
 * partition-nats (after it); seeds 19, 20 and 21 with all kinds after the fix
 * were clean (README "nats-server 2.10.27"). An all-kinds run of seed 19 also
 * takes about 2 minutes more than the process kinds, past CI's budget.
 */
export const PROCESS_FAULT_KINDS: readonly FaultKind[] = ["node-kill", "node-pause", "nats-leader-kill", "nats-kill", "clickhouse-pause"];

export interface Fault {
  readonly kind: FaultKind;
  /** Quiet time before the fault starts, ms. */
  readonly afterMs: number;
  /** How long the process stays dead or stopped before it is restarted or continued, ms. */
  readonly holdMs: number;
  /** Which node (index into the node ids) or NATS server (index) when the kind picks one; the leader kill ignores it. */
  readonly target: number;
  /** clock-jump only: how far the target node's wall clock jumps, s (either way; its monotonic clock does not move). */
  readonly skewS?: number;
}

export interface ScheduleOptions {
  readonly seed: number;
  /** Faults in all; the first FAULT_KINDS.length are every kind once, in a seeded order. */
  readonly faults: number;
  readonly nodes: number;
  readonly natsServers: number;
  /** The kinds to draw from (default every kind). */
  readonly kinds?: readonly FaultKind[];
}

/** Hold times by kind, [min, max) ms: a node pause longer than the lease TTL makes its shards move. */
const HOLD: Record<FaultKind, readonly [number, number]> = {
  "node-kill": [500, 3_000],
  "node-pause": [2_000, 9_000],
  "nats-leader-kill": [1_000, 5_000],
  "nats-kill": [1_000, 5_000],
  "clickhouse-pause": [2_000, 10_000],
  // Past the sink lease (1.5 s) and, at the long end, past the controller's node timeout: shards move off the cut node.
  "partition-node-nats": [2_000, 10_000],
  "partition-nats": [2_000, 8_000],
  "clock-jump": [3_000, 10_000],
  // Every INSERT refused (ClickHouse read-only): the sinks back off and land everything afterwards. bench:chaos's
  // longer runs see the same spans; minutes-long refusals are the sink's own tests' (test/sink).
  "clickhouse-refuse": [4_000, 12_000],
  "nats-disk-full": [2_000, 8_000],
};

/** clock-jump offsets, s: past the sink lease (1.5 s) and the controller's node timeout, either way. */
const SKEW_S: readonly [number, number] = [3, 15];

export function faultSchedule(o: ScheduleOptions): Fault[] {
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new Error(`seed ${o.seed}: must be a non-negative integer; pass --seed N`);
  if (o.faults < 1) throw new Error(`faults ${o.faults}: must be at least 1`);
  const r = rng(o.seed);
  const pick = (n: number): number => Math.floor(r() * n);
  const between = ([lo, hi]: readonly [number, number]): number => Math.round(lo + r() * (hi - lo));
  // Every kind once first (a short run covers them all), then kinds at random.
  const pool = o.kinds ?? FAULT_KINDS;
  if (pool.length === 0) throw new Error("kinds is empty: name at least one fault kind");
  const first = [...pool];
  for (let i = first.length - 1; i > 0; i--) {
    const j = pick(i + 1);
    [first[i], first[j]] = [first[j]!, first[i]!];
  }
  const kinds = Array.from({ length: o.faults }, (_, i) => first[i] ?? pool[pick(pool.length)]!);
  return kinds.map((kind) => ({
    kind,
    afterMs: between([1_500, 4_000]),
    holdMs: between(HOLD[kind]),
    target: pick(kind === "nats-kill" || kind === "partition-nats" || kind === "nats-disk-full" ? o.natsServers : o.nodes),
    ...(kind === "clock-jump" ? { skewS: (r() < 0.5 ? -1 : 1) * between(SKEW_S) } : {}),
  }));
}

/** One line per fault, for logs and failure messages. */
export function describeSchedule(s: readonly Fault[]): string {
  return s.map((f, i) => `#${i + 1} ${f.kind} target ${f.target}${f.skewS === undefined ? "" : ` skew ${f.skewS} s`} after ${f.afterMs} ms, hold ${f.holdMs} ms`).join("\n");
}
