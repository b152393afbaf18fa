// Runs the lag remediation workflow (actors/remediation.ts) of a node over the
// shards it hosts with a sink. Readings: the sink's time lag (age of its
// oldest unpersisted record) and LSN lag (WAL records applied or received and
// not persisted), the figures /v1/shards and `pxctl status` show. Steps become knobs, each
// set from the step alone (so a restarted shard or sink gets them again on the
// next reading): >= 1 the sink batches `batchFactor` times larger (fewer,
// larger INSERTs for a ClickHouse that is slow per INSERT); >= 2 eviction by
// age is held (eviction only ever drops rows at or below P, so lag never costs
// query coverage: holding keeps the recent past served from RAM instead of
// sending those reads to the struggling ClickHouse; maxHotBytes still evicts);
// 3 moves the shard, and so its sink, to a node owning fewer shards via `move`
// (a placement override the leader honours; skipped, with the reason, on one
// node, when no node owns fewer shards, when remediation moved the shard once
// already, or when the sink is degraded: another node's sink would write to
// the same failing ClickHouse); >= 4 alert: px_lag_remediation_step (scraped from HostedShard)
// at 4 and an ALERT log line. Each change goes to the event log.
import type { JetStreamClient } from "@nats-io/jetstream";
import { createActor, fromPromise } from "xstate";
import type { Actor } from "xstate";
import { remediationMachine } from "../../actors/remediation.js";
import type { LagObservation, StepResult } from "../../actors/remediation.js";
import { lagSloOf } from "../../protocols/tablespec.js";
import { compactionKey } from "../../protocols/subjects.js";
import { TaggedError } from "../../protocols/tagged.js";
import { LAG_STEP_NAMES } from "../sink/index.js";
import type { LagReading, StepChange } from "../sink/index.js";
import { eventRecorder } from "../wal/index.js";
import { shardLagMs } from "./shard/host.js";
import type { HostedShard, LocalShardHost } from "./shard/host.js";

/** Asks for the shard (and its sink) to move to another node: where it goes, or why it does not. */
export type MoveSink = (h: HostedShard) => Promise<{ readonly to: string } | { readonly skipped: string }>;

export interface RemediationOptions {
  readonly js: JetStreamClient;
  readonly nodeId: string;
  readonly shards: LocalShardHost;
  /** Between lag readings. */
  readonly intervalMs: number;
  /** Step 1's batch size and delay factor (default 4). */
  readonly batchFactor?: number;
  readonly move: MoveSink;
  readonly log: (line: string) => void;
  readonly clock?: () => number;
}

/** A bad remediation setting (names the variable, the value and the form). */
export class RemediationConfigError extends TaggedError("RemediationConfigError") {}

/** PX_LAG_REMEDIATION_INTERVAL_MS (default 5 s; 0: the workflow does not run on this node). */
export function remediationIntervalMs(env: Record<string, string | undefined>): number {
  const v = env.PX_LAG_REMEDIATION_INTERVAL_MS;
  if (v === undefined || v === "") return 5_000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new RemediationConfigError(`PX_LAG_REMEDIATION_INTERVAL_MS=${JSON.stringify(v)}: expected a whole number of milliseconds (0: no lag remediation on this node)`);
  return n;
}

const stepName = (step: number): string => `${step} (${LAG_STEP_NAMES[step] ?? "unknown"})`;

export class RemediationRuntime {
  readonly actor: Actor<typeof remediationMachine>;
  private readonly clock: () => number;

  constructor(private readonly o: RemediationOptions) {
    this.clock = o.clock ?? Date.now;
    this.actor = createActor(
      remediationMachine.provide({
        actors: {
          observe: fromPromise<LagObservation>(async () => this.observe()),
          apply: fromPromise<readonly StepResult[], { changes: readonly StepChange[] }>(async ({ input }) => this.apply(input.changes)),
        },
      }),
      { input: { intervalMs: o.intervalMs } },
    );
    this.actor.on("recorded", eventRecorder(o));
  }

  start(): this {
    this.actor.start();
    return this;
  }

  stop(): void {
    this.actor.send({ type: "stop" });
    this.actor.stop();
  }

  private observe(): LagObservation {
    const planned = this.actor.getSnapshot().context.shards;
    const readings: LagReading[] = [];
    for (const h of this.o.shards.all()) {
      const sink = h.sink;
      if (sink === undefined) continue;
      const key = compactionKey(h.shard);
      // A shard (or sink) started again since its step was set runs with the defaults: set the knobs again.
      const step = planned[key]?.step ?? 0;
      if (h.lagStep !== step) this.setKnobs(h, step);
      const s = sink.status();
      // The sink holds at most its consumer's max-ack-pending records: the shard's count of applied, unpersisted records (pxctl's LAG) goes further.
      readings.push({ key, lagMs: shardLagMs(h, s, this.clock()), lagRecords: Math.max(s.pendingRecords, h.runtime.stats.lagRecords), slo: lagSloOf(h.runtime.spec) });
    }
    return { atMs: this.clock(), readings };
  }

  /** Batches and the eviction hold as `step` wants them; the alert gauge reads h.lagStep. */
  private setKnobs(h: HostedShard, step: number): void {
    // A batch that waits longer than half the SLO would hold the lag above it by itself.
    h.sink?.scaleBatches(step >= 1 ? (this.o.batchFactor ?? 4) : 1, lagSloOf(h.runtime.spec).seconds * 500);
    h.runtime.holdEviction(step >= 2);
    h.lagStep = step;
  }

  private async apply(changes: readonly StepChange[]): Promise<StepResult[]> {
    const byKey = new Map(this.o.shards.all().map((h) => [compactionKey(h.shard), h]));
    const out: StepResult[] = [];
    for (const change of changes) {
      const h = byKey.get(change.key);
      const what = `shard ${change.key}: lag remediation step ${stepName(change.from)} -> ${stepName(change.to)}`;
      if (h === undefined) {
        out.push({ change, applied: false, message: `${what}: the shard is no longer hosted here` });
        continue;
      }
      this.setKnobs(h, change.to);
      const limits = h.sink?.limits;
      const batches = limits === undefined ? "" : ` (sink batches up to ${limits.maxBatchRows} rows / ${limits.maxBatchDelayMs} ms)`;
      if (change.to === 3 && change.from === 2) {
        const moved = h.sink?.status().degraded === true ? { skipped: `the sink is degraded (${h.sink.status().lastError ?? "ClickHouse keeps failing"}): another node's sink would write to the same ClickHouse` } : await this.o.move(h);
        out.push({ change, applied: "to" in moved, message: "to" in moved ? `${what}: ${change.reason}; the shard and its sink move to node ${moved.to}` : `${what}: ${change.reason}; move skipped: ${moved.skipped}` });
        continue;
      }
      if (change.to === 4) this.o.log(`ALERT node ${this.o.nodeId}: shard ${change.key}: sink lag stays above its SLO after every remediation step: ${change.reason}`);
      const effect = change.to > change.from ? stepEffect(change.to) : undoEffect(change.from);
      out.push({ change, applied: true, message: `${what}: ${change.reason}; ${effect}${change.to >= 1 ? batches : ""}` });
    }
    return out;
  }
}

function stepEffect(step: number): string {
  switch (step) {
    case 1:
      return "sink batches made larger";
    case 2:
      return "eviction by age held (persisted rows stay in RAM within maxHotBytes; queries of the recent past keep off ClickHouse)";
    case 4:
      return "alert raised (px_lag_remediation_step 4)";
    default:
      return "step taken";
  }
}

function undoEffect(from: number): string {
  switch (from) {
    case 1:
      return "sink batches back to their base size";
    case 2:
      return "eviction by age resumed";
    case 3:
      return "step back (a moved sink stays where it is)";
    case 4:
      return "alert cleared";
    default:
      return "step back";
  }
}
