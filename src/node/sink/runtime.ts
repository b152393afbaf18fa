// Runs a sink actor for real: recovery from the last watermark, the durable
// consumer's ack floor and ClickHouse; the durable WAL consumer; flushes that
// plan, reconcile (when a batch may have partly landed) and INSERT; watermark
// publishing. Fenced: every INSERT, watermark and consumer change first asks
// the SinkLease for a permit (revoked by the agent's watch of px_assign,
// lapsing at its deadline unless renewed). Every INSERT also runs behind the
// shard's write fence in ClickHouse (src/clickhouse/fence.ts): recovery, and a
// retry of an INSERT whose outcome is unknown, raise it before they wait for
// earlier INSERTs to leave the server and ask what landed, so an INSERT sent
// late (a paused owner's, one queued in a stalled server) cannot land after
// that answer. Recovery verifies P against what ClickHouse holds before
// trusting it. Crash tests put faults in front of the flush IO
// (`flushIo`); PX_SINK_TRACE=1 logs timings.
import { randomBytes } from "node:crypto";
import { DeliverPolicy } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { createActor, fromPromise } from "xstate";
import type { Actor } from "xstate";
import { sinkMachine, sinkStateName } from "../../../actors/sink.js";
import type { FlushInput, FlushOutput, RecoverInput, RecoverOutput, SinkStats } from "../../../actors/sink.js";
import type { ShardAddress } from "../../../protocols/subjects.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { isFenceRefusal, waitQueryGone } from "../../clickhouse/index.js";
import { walStream, walSubject } from "../../../protocols/subjects.js";
import { DEFAULT_SINK_LIMITS, SinkFencedError, SinkLease, consumerAckFloor, decodeSinkRecord, encodeInsert, flushFailure, rowsOf, runFlush, sinkQueryPrefix, verifyPersisted } from "../../sink/index.js";
import type { ConsumerProbe, FlushIo, RetryPolicy, SinkClickhouse, SinkLimits, VerifyIo } from "../../sink/index.js";
import { lastWatermark } from "../../wal/index.js";
import type { DecodedRecordCache, SkippedLsns } from "../../wal/index.js";
import type { Meter } from "../meter.js";
import { childSpan } from "../obs/index.js";
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
  /** How long a permit holds without renewal (default 1500 ms, under the control plane's 2 s node timeout; no deadline at revision 0). */
  readonly leaseTtlMs?: number;
  /** TESTS ONLY (negative control, PX_GAP_CHECK_OFF=1 in the wiring): the sink persists past a gap. */
  readonly unsafeGapCheckOff?: boolean;
  /** TESTS ONLY (negative control, PX_FENCE_OFF=1 in the wiring): every permit is granted, INSERTs go without the ClickHouse fence. */
  readonly unsafeFenceOff?: boolean;
  /** TESTS ONLY: INSERTs go without the ClickHouse fence, the permit alone fences (to test the permit by itself). */
  readonly unsafeClickhouseFenceOff?: boolean;
  /** Flush time and persistence lag per verified flush (absent: PX_METRICS=off). */
  readonly meter?: Meter | undefined;
  /** Records an operator skipped (src/wal/skips.ts): read as records without rows. */
  readonly skipped?: SkippedLsns;
}

/** The shard's WAL and ClickHouse as verifyPersisted asks them. */
export function sinkVerifyIo(o: Pick<SinkRuntimeOptions, "shard" | "spec" | "js" | "jsm" | "clickhouse" | "skipped">, signal?: AbortSignal): VerifyIo {
  const { shard, spec, js, jsm, clickhouse: ch, skipped } = o;
  return {
    maxLandedUpTo: (upTo) => ch.maxLsnUpTo(shard, spec, upTo, signal),
    landedRows: (lsn) => ch.rowsAtLsn(shard, spec, lsn, signal),
    recordRows: async (lsn) => {
      const m = await jsm.streams.getMessage(walStream(shard.tenant), { seq: lsn });
      return m === null ? 0 : decodeSinkRecord(spec, lsn, m.data, 0, undefined, skipped).batch.rows;
    },
    nextRecord: async (after) => {
      // Nothing after `after`: answered by the shard's last record, without waiting on a consumer.
      const last = await jsm.streams.getMessage(walStream(shard.tenant), { last_by_subj: walSubject(shard.tenant, shard.table, shard.bucket) });
      if (last === null || last.seq <= after) return undefined;
      const consumer = await js.consumers.get(walStream(shard.tenant), {
        filter_subjects: walSubject(shard.tenant, shard.table, shard.bucket),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: after + 1,
      });
      try {
        const m = await consumer.next({ expires: 2_000 });
        return m === null ? undefined : { lsn: m.seq, rows: decodeSinkRecord(spec, m.seq, m.data, 0, undefined, skipped).batch.rows };
      } finally {
        await consumer.delete().catch(() => {});
      }
    },
  };
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
  readonly leaseRevision: number;
  readonly fenced: boolean;
  /** Watermarks this sink refused (claiming more than ClickHouse holds, or from a newer owner). */
  readonly refusedWatermarks: number;
  /** How long records gather before an INSERT now (node --sink-batch-ms, scaled by lag remediation). */
  readonly batchDelayMs: number;
}

const TRACE = process.env.PX_SINK_TRACE === "1";

export class SinkRuntime {
  readonly actor: Actor<typeof sinkMachine>;
  private readonly clock: () => number;
  private readonly name: string;
  readonly lease: SinkLease;
  private refusedWatermarks = 0;
  /** The limits the sink was started with (what `scaleBatches(1)` goes back to). */
  readonly baseLimits: SinkLimits;

  constructor(private readonly o: SinkRuntimeOptions) {
    const { shard, clickhouse: ch } = o;
    this.clock = o.clock ?? Date.now;
    const clock = this.clock;
    this.name = `${shard.tenant}/${shard.table}/${shard.bucket}`;
    const name = this.name;
    const limits = { ...DEFAULT_SINK_LIMITS, ...o.limits };
    this.baseLimits = limits;
    const prefix = sinkQueryPrefix(shard);
    const revision = o.leaseRevision ?? 0;
    const session = randomBytes(3).toString("hex");
    // Without a lease (single node, revision 0) nobody renews: no deadline, only revocation.
    const lease = new SinkLease(revision, o.leaseTtlMs ?? (revision > 0 ? 1_500 : Infinity), clock(), o.unsafeFenceOff === true);
    this.lease = lease;
    const permit = (what: string): void => lease.permit(clock(), `sink ${name}: ${what}`);
    let flushNo = 0;
    // Recovery tells the consumer's positioning when the consumer could not be read (one timeout, not two).
    const probe: ConsumerProbe = {};
    // This sink's token at the ClickHouse fence (none with the fence off: INSERTs go unfenced).
    let fenceToken: number | undefined;
    const fenceOff = o.unsafeFenceOff === true || o.unsafeClickhouseFenceOff === true;
    const raiseFence = async (signal?: AbortSignal): Promise<void> => {
      if (fenceOff) return;
      fenceToken = undefined;
      fenceToken = await ch.raiseFence(shard, revision, signal);
    };

    const recover = fromPromise<RecoverOutput, RecoverInput>(async ({ input, signal }) => {
      const t0 = performance.now();
      permit("recovery");
      await ch.ensureTable(shard.tenant, input.spec);
      const [wm, ackFloor] = await Promise.all([lastWatermark(o.jsm, shard), consumerAckFloor(o.jsm, shard, probe)]);
      if (wm !== undefined && wm.leaseRevision > revision && o.unsafeFenceOff !== true) {
        lease.revoke(`a newer owner (lease revision ${wm.leaseRevision}) published watermark P ${wm.persistedLsn}`);
        throw new SinkFencedError(`sink ${name}: lease revision ${revision} is stale: revision ${wm.leaseRevision} wrote the last watermark`);
      }
      const claimed = Math.max(input.persistedLsn, wm?.persistedLsn ?? 0, ackFloor);
      const t1 = performance.now();
      // An INSERT of an earlier owner (or of this one before a restart) not yet started fails from here on;
      // one that started may still commit: what landed is only final once it is gone.
      await raiseFence(signal);
      await ch.waitWritersGone(shard, o.writersGoneTimeoutMs ?? 60_000, signal);
      // Verified P: a watermark (or ack floor) claiming more than ClickHouse holds is refused; the gap is persisted again.
      const verified = await verifyPersisted(sinkVerifyIo(o, signal), claimed);
      if (verified.refused !== undefined) {
        this.refusedWatermarks++;
        o.log(`sink ${name}: REFUSED ${verified.refused}; P is ${verified.persistedLsn}, the sink persists the gap again`);
      }
      const persistedLsn = verified.persistedLsn;
      const verifyUpToLsn = Math.max(persistedLsn, await ch.maxLsnAbove(shard, input.spec, persistedLsn, signal));
      if (TRACE) o.log(`sink ${name}: TRACE recovered in ${(performance.now() - t0).toFixed(1)} ms (NATS ${(t1 - t0).toFixed(1)} ms)`);
      if (verifyUpToLsn > persistedLsn) {
        o.log(`sink ${name}: ClickHouse holds LSNs up to ${verifyUpToLsn} above P ${persistedLsn}; the next flushes check what landed before sending`);
      }
      return { persistedLsn, tPersistedMicros: verified.refused === undefined ? (wm?.tPersistedMicros ?? 0) : 0, verifyUpToLsn, atMs: clock() };
    });

    const realIo: FlushIo = {
      raiseFence,
      waitQueryGone: (id, signal) => waitQueryGone(ch.client, id, { timeoutMs: 60_000, ...(signal === undefined ? {} : { signal }) }),
      landedCounts: (from, to, tsMin, tsMax, signal) => ch.landedCounts(shard, o.spec, from, to, tsMin, tsMax, signal),
      landedRowSets: (lsns, signal) => ch.landedRowSets(shard, o.spec, lsns, signal),
      insert: async (plan, queryId, signal) => {
        const t0 = performance.now();
        const body = encodeInsert(o.spec, plan, shard.bucket);
        const t1 = performance.now();
        // Innermost, right before the request: a sink paused or stalled anywhere above re-checks here.
        permit(`INSERT ${queryId}`);
        if (fenceToken === undefined && !fenceOff) throw new Error(`sink ${name}: INSERT ${queryId} without a fence token (the fence was not raised)`);
        const fence = fenceToken === undefined ? undefined : { bucket: shard.bucket, token: fenceToken };
        try {
          await ch.insert(shard.tenant, o.spec, body, plan.rows, queryId, signal, fence);
        } catch (e) {
          if (!isFenceRefusal(e)) throw e;
          // Another writer raised the fence: a newer owner (or a newer sink of this shard here) took over.
          lease.revoke(`ClickHouse's write fence of the shard was raised past token ${fenceToken} by a newer writer`);
          throw new SinkFencedError(`sink ${name}: INSERT ${queryId} refused by the shard's write fence in ClickHouse (token ${fenceToken}): a newer writer took over`, { cause: e });
        }
        if (TRACE) o.log(`sink ${name}: TRACE insert ${plan.rows} rows encode ${(t1 - t0).toFixed(1)} ms insert ${(performance.now() - t1).toFixed(1)} ms`);
      },
    };
    const io = o.flushIo === undefined ? realIo : o.flushIo(realIo, { shard, spec: o.spec, clickhouse: ch });
    let lastDone = performance.now();
    // LSN -> traceparent of traced records received and not yet persisted (tracing on only).
    const traced = new Map<number, string>();
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
          queryId: (attempt, i) => `${prefix}r${revision}-${session}-${no}-${attempt}-${i}`,
          skipLandedCheck: o.unsafeSkipLandedCheck === true,
          log: (line) => o.log(`sink ${name}: ${line}`),
        },
        signal,
      );
      lastDone = performance.now();
      const oldest = input.records[0];
      if (traced.size > 0) {
        const attributes = { "px.tenant": shard.tenant, "px.table": shard.table, "px.bucket": shard.bucket, "px.flush_records": input.records.length, "px.inserted_rows": result.insertedRows };
        for (const r of input.records) {
          const tp = traced.get(r.lsn);
          if (tp === undefined) continue;
          traced.delete(r.lsn);
          childSpan("px.sink.insert", tp, { startTime: performance.timeOrigin + tStart, attributes: { ...attributes, "px.lsn": r.lsn } }).end();
        }
      }
      o.meter?.sinkFlushed(shard, (lastDone - tStart) / 1000, oldest === undefined ? 0 : (clock() - oldest.receivedAtMs) / 1000);
      if (TRACE) o.log(`sink ${name}: TRACE flush ${no} took ${(lastDone - tStart).toFixed(1)} ms`);
      return { ...result, atMs: clock() };
    });

    this.actor = createActor(
      sinkMachine.provide({
        actors: {
          recover,
          wal: jetstreamSinkConsumer(o.js, o.jsm, clock, {
            onRecreate: (why) => o.log(`sink ${name}: ${why}`),
            probe,
            ...(o.maxAckPending === undefined ? {} : { maxAckPending: o.maxAckPending }),
            ...(TRACE ? { trace: (line: string) => o.log(`sink ${name}: TRACE ${line}`) } : {}),
            ...(o.decoded === undefined ? {} : { decoded: o.decoded }),
            ...(o.skipped === undefined ? {} : { skipped: o.skipped }),
            permit,
            traced,
            gapCheckOff: o.unsafeGapCheckOff === true,
          }),
          flush,
          announcer: jetstreamAnnouncer(o.js, clock, permit),
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
      leaseRevision: this.lease.revision,
      fenced: this.state === "fenced",
      refusedWatermarks: this.refusedWatermarks,
      batchDelayMs: c.limits.maxBatchDelayMs,
    };
  }

  /**
   * Batches `factor` times the base in rows, bytes and delay (1: the base
   * again), the delay at most `maxDelayMs` (never below the base's); taken by
   * the next batch. One INSERT still holds at most maxInsertRows (an INSERT
   * stays one atomic part). Returns the limits set.
   */
  scaleBatches(factor: number, maxDelayMs = Infinity): SinkLimits {
    const b = this.baseLimits;
    const delay = Math.max(b.maxBatchDelayMs, Math.min(b.maxBatchDelayMs * factor, maxDelayMs));
    const limits: SinkLimits = factor === 1 ? b : { ...b, maxBatchRows: b.maxBatchRows * factor, maxBatchBytes: b.maxBatchBytes * factor, maxBatchDelayMs: delay };
    this.actor.send({ type: "tune", limits });
    return limits;
  }

  /** The batching limits the sink runs with now. */
  get limits(): SinkLimits {
    return this.actor.getSnapshot().context.limits;
  }

  /** The assignment moved away (agent's watch of px_assign): no write from now on, the machine stops its actors. */
  revoke(reason: string): void {
    if (this.lease.revoked) return;
    this.lease.revoke(reason);
    this.o.log(`sink ${this.name}: fenced (lease revision ${this.lease.revision}): ${reason}`);
    if (this.o.unsafeFenceOff !== true) this.actor.send({ type: "fenced", reason });
  }

  /** The agent's heartbeat, sent `sentAgoMs` ago, was stored: the permit holds from when it was sent. */
  renew(sentAgoMs: number): void {
    this.lease.renew(this.clock() - Math.max(0, sentAgoMs));
  }

  /** The permit ran out (not revoked): the node was paused or cut off longer than it lasts. */
  get permitLapsed(): boolean {
    return !this.lease.revoked && this.lease.deadlineMs < this.clock();
  }

  /** Stops consuming and aborts an INSERT in flight (which may still commit: the next owner checks). */
  async stop(): Promise<void> {
    this.lease.revoke("the shard is stopping");
    if (this.actor.getSnapshot().status !== "active") return;
    this.actor.send({ type: "drain" });
    this.actor.stop();
    await new Promise((r) => setImmediate(r));
  }
}
