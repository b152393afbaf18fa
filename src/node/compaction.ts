// Runs the compaction workflow (actors/compactor.ts) of a node over the shards
// it hosts with a sink: P is the lower of the last watermark and the sink's
// consumer ack floor, the snapshot LSN the newest one whose checksum holds,
// holds come from `holds` (feeds' lowest needed offsets plug in there). A cut
// is recorded in KV px_compaction before the purge, so a reader that would
// need less stops on a named gap. What it does goes to the event log.
import { DeliverPolicy } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { createActor, fromPromise } from "xstate";
import type { Actor } from "xstate";
import { compactorMachine } from "../../actors/compactor.js";
import type { PurgeResult } from "../../actors/compactor.js";
import { KV_COMPACTION, compactionKey, walStream, walSubject } from "../../protocols/subjects.js";
import type { ShardAddress } from "../../protocols/subjects.js";
import { TaggedError } from "../../protocols/tagged.js";
import { openKv } from "../control/index.js";
import type { SnapshotStore } from "../snapshot/store.js";
import { consumerAckFloor } from "../sink/index.js";
import { compactionFloor, eventRecorder, lastWatermark, planCompaction } from "../wal/index.js";
import type { CompactionPlan, CompactionRecord } from "../wal/index.js";
import type { LocalShardHost } from "./shard/host.js";

/** Lowest LSN each other reader of the shard still needs (a feed's offset, another durable consumer's). */
export type CompactionHolds = (shard: ShardAddress) => Promise<readonly number[]>;

export interface CompactionOptions {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly nodeId: string;
  readonly shards: LocalShardHost;
  readonly snapshots: SnapshotStore;
  readonly replicas: number;
  /** Between scheduled runs (0: only on demand). */
  readonly intervalMs: number;
  readonly holds?: CompactionHolds;
  readonly log: (line: string) => void;
  /** TESTS ONLY (negative control, PX_COMPACT_IGNORE_SINK=1 in the node): P is not a bound, a stalled sink gets compacted past. */
  readonly unsafeIgnoreSink?: boolean;
}

/** A bad compaction setting (names the variable, the value and the form). */
export class CompactionConfigError extends TaggedError("CompactionConfigError") {}

/** PX_COMPACTION_INTERVAL_MS (default 60 s; 0: only on demand). */
export function compactionIntervalMs(env: Record<string, string | undefined>): number {
  const v = env.PX_COMPACTION_INTERVAL_MS;
  if (v === undefined || v === "") return 60_000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new CompactionConfigError(`PX_COMPACTION_INTERVAL_MS=${JSON.stringify(v)}: expected a whole number of milliseconds (0: compact only on pxctl compact)`);
  return n;
}

const nameOf = (s: ShardAddress): string => `${s.tenant}/${s.table}/${s.bucket}`;

/** LSN of the first record stored on the shard's subject (undefined: none). */
async function firstOnSubject(js: JetStreamClient, shard: ShardAddress): Promise<number | undefined> {
  const consumer = await js.consumers.get(walStream(shard.tenant), { filter_subjects: walSubject(shard.tenant, shard.table, shard.bucket), deliver_policy: DeliverPolicy.All });
  try {
    const m = await consumer.next({ expires: 2_000 });
    return m?.seq;
  } finally {
    await consumer.delete().catch(() => {});
  }
}

/** The shard's first record the WAL took at or after `sinceMs` (undefined: none, every record is older). */
async function firstSince(js: JetStreamClient, shard: ShardAddress, sinceMs: number): Promise<number | undefined> {
  const consumer = await js.consumers.get(walStream(shard.tenant), {
    filter_subjects: walSubject(shard.tenant, shard.table, shard.bucket),
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(sinceMs).toISOString(),
  });
  try {
    const m = await consumer.next({ expires: 2_000 });
    return m?.seq;
  } finally {
    await consumer.delete().catch(() => {});
  }
}

export class CompactionRuntime {
  readonly actor: Actor<typeof compactorMachine>;
  private kv: Promise<KV> | undefined;

  constructor(private readonly o: CompactionOptions) {
    this.actor = createActor(
      compactorMachine.provide({
        actors: {
          plan: fromPromise<readonly CompactionPlan[], { only: readonly string[] | undefined }>(async ({ input }) => this.plan(input.only)),
          purge: fromPromise<readonly PurgeResult[], { plans: readonly CompactionPlan[] }>(async ({ input }) => this.purge(input.plans)),
          verify: fromPromise<readonly string[], { results: readonly PurgeResult[] }>(async ({ input }) => this.verify(input.results)),
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

  /** Runs a compaction now (the workflow, with its verifying step); resolves when it is idle again. */
  async compactNow(only?: readonly string[], timeoutMs = 60_000): Promise<{ plans: readonly CompactionPlan[]; results: readonly PurgeResult[]; error: string | undefined }> {
    const runs = this.actor.getSnapshot().context.stats.runs;
    const failures = this.actor.getSnapshot().context.stats.failures;
    this.actor.send({ type: "compact", only });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.actor.getSnapshot();
      if (s.context.stats.runs > runs) return { plans: s.context.plans, results: s.value === "idle" && s.context.plans.some((p) => p.cut > 0) ? s.context.results : [], error: undefined };
      if (s.context.stats.failures > failures) return { plans: s.context.plans, results: [], error: s.context.lastError };
      if (Date.now() > deadline) return { plans: s.context.plans, results: [], error: `compaction did not finish in ${timeoutMs} ms (state ${String(s.value)})` };
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The plan of every shard this node hosts with a sink (also `pxctl compact --dry-run`). */
  async plan(only?: readonly string[]): Promise<CompactionPlan[]> {
    const out: CompactionPlan[] = [];
    for (const h of this.o.shards.all()) {
      if (h.sink === undefined || (only !== undefined && !only.includes(compactionKey(h.shard)))) continue;
      const shard = h.shard;
      const [wm, ackFloor, snapshotLsn, compactedBelow, holds] = await Promise.all([
        lastWatermark(this.o.jsm, shard),
        consumerAckFloor(this.o.jsm, shard),
        this.o.snapshots.newestVerifiedLsn(shard),
        compactionFloor(this.o.jsm, shard),
        this.o.holds?.(shard) ?? Promise.resolve([]),
      ]);
      // A watermark alone is a claim; the ack floor moves only once the sink verified the batch in ClickHouse.
      const persistedLsn = this.o.unsafeIgnoreSink === true ? Number.MAX_SAFE_INTEGER - 1 : Math.min(wm?.persistedLsn ?? 0, ackFloor);
      const { walKeep, walKeepSeconds } = h.runtime.spec.retention;
      // The time margin as an LSN: the first record the WAL took within walKeepSeconds (JetStream's append time).
      const keepFromLsn = walKeepSeconds === undefined ? undefined : await firstSince(this.o.js, shard, Date.now() - walKeepSeconds * 1000);
      out.push(planCompaction({ shard, persistedLsn, snapshotLsn, holds, walKeep, compactedBelow, ...(keepFromLsn === undefined ? {} : { keepFromLsn, walKeepSeconds }) }));
    }
    return out;
  }

  private bucket(): Promise<KV> {
    this.kv ??= openKv(this.o.nc, KV_COMPACTION, { replicas: this.o.replicas });
    return this.kv;
  }

  private async purge(plans: readonly CompactionPlan[]): Promise<PurgeResult[]> {
    const kv = await this.bucket();
    const out: PurgeResult[] = [];
    for (const plan of plans) {
      const { shard } = plan;
      const record: CompactionRecord = { purgedBelow: plan.cut, persistedLsn: plan.persistedLsn, snapshotLsn: plan.snapshotLsn, atMs: Date.now() };
      // The floor first: a crash between the two leaves a floor above records still there (safe), never the reverse.
      await kv.put(compactionKey(shard), JSON.stringify(record));
      const r = await this.o.jsm.streams.purge(walStream(shard.tenant), { filter: walSubject(shard.tenant, shard.table, shard.bucket), seq: plan.cut });
      out.push({ plan, purged: r.purged });
    }
    return out;
  }

  /** Problems found (empty: every purged subject starts at or above its cut). */
  private async verify(results: readonly PurgeResult[]): Promise<string[]> {
    const problems: string[] = [];
    for (const { plan } of results) {
      const { shard } = plan;
      const first = await firstOnSubject(this.o.js, shard);
      if (first !== undefined && first < plan.cut) problems.push(`${nameOf(shard)}: a record at LSN ${first} is still below the cut ${plan.cut}`);
    }
    return problems;
  }
}

