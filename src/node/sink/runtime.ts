// Runs a sink actor for real: recovery from the last watermark, the durable
// consumer's ack floor and ClickHouse; the durable WAL consumer; flushes that
// plan, reconcile (when a batch may have partly landed) and INSERT; watermark
// publishing. Crash tests put faults in front of the flush IO (`flushIo`);
// PX_SINK_TRACE=1 logs timings.
import { randomBytes } from "node:crypto";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { createActor, fromPromise } from "xstate";
import type { Actor } from "xstate";
import { sinkMachine, sinkStateName } from "../../../actors/sink.js";
import type { FlushInput, FlushOutput, RecoverInput, RecoverOutput, SinkStats } from "../../../actors/sink.js";
import type { ShardAddress } from "../../../protocols/subjects.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { waitQueryGone } from "../../clickhouse/index.js";
import { DEFAULT_SINK_LIMITS, consumerAckFloor, encodeInsert, flushFailure, rowsOf, runFlush, sinkQueryPrefix } from "../../sink/index.js";
import type { FlushIo, RetryPolicy, SinkClickhouse, SinkLimits } from "../../sink/index.js";
import { lastWatermark } from "../../wal/index.js";
import type { DecodedRecordCache } from "../../wal/index.js";
import { jetstreamAnnouncer } from "./announcer.js";
import { jetstreamSinkConsumer } from "./wal.js";

export interface SinkRuntimeOptions {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly clickhouse: SinkClickhouse;
  readonly leaseRevision?: number;
  readonly log: (line: string) => void;
  readonly limits?: Partial<SinkLimits>;
  readonly retry?: Partial<RetryPolicy>;
  /** Unacknowledged WAL records held at most (default 1000). */
  readonly maxAckPending?: number;
  /** How long recovery waits for INSERTs of an earlier owner to leave the server (default 60 s). */
  readonly writersGoneTimeoutMs?: number;
  /**
   * TESTS ONLY (negative control): never ask ClickHouse what landed; a retry
   * or a restart sends whole batches again, which duplicates rows.
   */
  readonly unsafeSkipLandedCheck?: boolean;
  readonly clock?: () => number;
  /** Shared with the shard's WAL consumer on this node: each record is decoded once. */
  readonly decoded?: DecodedRecordCache;
  /** Wraps the flush IO (what the sink asks and sends ClickHouse); crash tests put their faults here. */
  readonly flushIo?: WrapFlushIo;
}

/** A wrapper around a sink's flush IO, given the shard, its spec and its ClickHouse. */
export type WrapFlushIo = (io: FlushIo, sink: { readonly shard: ShardAddress; readonly spec: TableSpec; readonly clickhouse: SinkClickhouse }) => FlushIo;

/** Figures of one sink for /v1/shards, metrics and the control plane. */
export interface SinkStatus extends SinkStats {
  readonly state: string;
  readonly persistedLsn: number;
  readonly tPersistedMicros: number;
  readonly publishedLsn: number;
  /** Records/rows received and not yet persisted (pending and in flight). */
  readonly pendingRecords: number;
  readonly pendingRows: number;
  /** Age of the oldest received record not yet persisted (0 when none). */
  readonly lagMs: number;
  readonly degraded: boolean;
  readonly attempt: number;
  readonly lastError: string | undefined;
}

const TRACE = process.env.PX_SINK_TRACE === "1";

export class SinkRuntime {
  readonly actor: Actor<typeof sinkMachine>;
  private readonly clock: () => number;
  private readonly name: string;

  constructor(private readonly o: SinkRuntimeOptions) {
    const { shard, clickhouse: ch } = o;
    this.clock = o.clock ?? Date.now;
    const clock = this.clock;
    this.name = `${shard.tenant}/${shard.table}/${shard.bucket}`;
    const name = this.name;
    const limits = { ...DEFAULT_SINK_LIMITS, ...o.limits };
    const prefix = sinkQueryPrefix(shard);
    const session = randomBytes(4).toString("hex");
    let flushNo = 0;

    const recover = fromPromise<RecoverOutput, RecoverInput>(async ({ input, signal }) => {
      const t0 = performance.now();
      await ch.ensureTable(shard.tenant, input.spec);
      const [wm, ackFloor] = await Promise.all([lastWatermark(o.jsm, shard), consumerAckFloor(o.jsm, shard)]);
      const persistedLsn = Math.max(input.persistedLsn, wm?.persistedLsn ?? 0, ackFloor);
      const t1 = performance.now();
      // An INSERT of a killed owner may still commit: what landed is only final once it is gone.
      await ch.waitWritersGone(shard, o.writersGoneTimeoutMs ?? 60_000, signal);
      const verifyUpToLsn = Math.max(persistedLsn, await ch.maxLsnAbove(shard, input.spec, persistedLsn, signal));
      if (TRACE) o.log(`sink ${name}: TRACE recovered in ${(performance.now() - t0).toFixed(1)} ms (NATS ${(t1 - t0).toFixed(1)} ms)`);
      if (verifyUpToLsn > persistedLsn) {
        o.log(`sink ${name}: ClickHouse holds LSNs up to ${verifyUpToLsn} above P ${persistedLsn}; the next flushes check what landed before sending`);
      }
      return { persistedLsn, tPersistedMicros: wm?.tPersistedMicros ?? 0, verifyUpToLsn, atMs: clock() };
    });

    const realIo: FlushIo = {
      waitQueryGone: (id, signal) => waitQueryGone(ch.client, id, { timeoutMs: 60_000, ...(signal === undefined ? {} : { signal }) }),
      landedCounts: (from, to, tsMin, tsMax, signal) => ch.landedCounts(shard, o.spec, from, to, tsMin, tsMax, signal),
      landedRowSets: (lsns, signal) => ch.landedRowSets(shard, o.spec, lsns, signal),
      insert: async (plan, queryId, signal) => {
        const t0 = performance.now();
        const body = encodeInsert(o.spec, plan, shard.bucket);
        const t1 = performance.now();
        await ch.insert(shard.tenant, o.spec, body, plan.rows, queryId, signal);
        if (TRACE) o.log(`sink ${name}: TRACE insert ${plan.rows} rows encode ${(t1 - t0).toFixed(1)} ms insert ${(performance.now() - t1).toFixed(1)} ms`);
      },
    };
    const io = o.flushIo === undefined ? realIo : o.flushIo(realIo, { shard, spec: o.spec, clickhouse: ch });
    let lastDone = performance.now();
    const flush = fromPromise<FlushOutput, FlushInput>(async ({ input, signal }) => {
      const no = ++flushNo;
      const tStart = performance.now();
      if (TRACE) o.log(`sink ${name}: TRACE flush ${no} of ${input.records.length} records after ${(tStart - lastDone).toFixed(1)} ms idle`);
      await ch.ensureTable(shard.tenant, input.spec).catch((e: unknown) => {
        throw flushFailure(e, 0, "creating the table");
      });
      const result = await runFlush(
        io,
        input,
        {
          spec: input.spec,
          maxInsertRows: limits.maxInsertRows,
          queryId: (attempt, i) => `${prefix}${session}-${no}-${attempt}-${i}`,
          skipLandedCheck: o.unsafeSkipLandedCheck === true,
          log: (line) => o.log(`sink ${name}: ${line}`),
        },
        signal,
      );
      lastDone = performance.now();
      if (TRACE) o.log(`sink ${name}: TRACE flush ${no} took ${(lastDone - tStart).toFixed(1)} ms`);
      return { ...result, atMs: clock() };
    });

    this.actor = createActor(
      sinkMachine.provide({
        actors: {
          recover,
          wal: jetstreamSinkConsumer(o.js, o.jsm, clock, {
            ...(o.maxAckPending === undefined ? {} : { maxAckPending: o.maxAckPending }),
            ...(TRACE ? { trace: (line: string) => o.log(`sink ${name}: TRACE ${line}`) } : {}),
            ...(o.decoded === undefined ? {} : { decoded: o.decoded }),
          }),
          flush,
          announcer: jetstreamAnnouncer(o.js, clock),
        },
      }),
      {
        input: {
          shard,
          spec: o.spec,
          leaseRevision: o.leaseRevision ?? 0,
          ...(o.limits === undefined ? {} : { limits: o.limits }),
          retry: { seed: randomBytes(4).readUInt32LE(0), ...o.retry },
        },
      },
    );
    // Log changes only: the first of a run of equal errors, entering degraded/failed, and the recovery.
    let lastState = "";
    let lastError: string | undefined;
    let failing = false;
    this.actor.subscribe((snap) => {
      const state = sinkStateName(snap.value);
      const err = snap.context.lastError;
      if (err !== undefined && err !== lastError) o.log(`sink ${name}: ${state}: ${err}`);
      else if (state !== lastState && (state === "degraded" || state === "failed")) o.log(`sink ${name}: ${state}`);
      if (snap.context.attempt > 0) failing = true;
      else if (failing && err === undefined) {
        failing = false;
        o.log(`sink ${name}: writes to ClickHouse succeed again (P ${snap.context.persistedLsn})`);
      }
      lastState = state;
      lastError = err;
    });
  }

  start(): this {
    this.actor.start();
    return this;
  }

  get state(): string {
    return sinkStateName(this.actor.getSnapshot().value);
  }

  status(): SinkStatus {
    const c = this.actor.getSnapshot().context;
    const oldest = c.inflight[0] ?? c.pending[0];
    return {
      ...c.stats,
      state: this.state,
      persistedLsn: c.persistedLsn,
      tPersistedMicros: c.tPersistedMicros,
      publishedLsn: c.publishedLsn,
      pendingRecords: c.inflight.length + c.pending.length,
      pendingRows: rowsOf(c.inflight) + c.pendingRows,
      lagMs: oldest === undefined ? 0 : Math.max(0, this.clock() - oldest.receivedAtMs),
      degraded: c.degraded,
      attempt: c.attempt,
      lastError: c.lastError,
    };
  }

  /** Stops consuming and aborts an INSERT in flight (which may still commit: the next owner checks). */
  async stop(): Promise<void> {
    this.actor.send({ type: "drain" });
    this.actor.stop();
    await new Promise((r) => setImmediate(r));
  }
}
