// Sink actor: persists one shard's WAL slice into ClickHouse. recovering (P
// from the last watermark and the consumer, what may have landed from
// ClickHouse) -> active: idle -> batching -> flushing -> committed (P moves,
// the announcer is told) -> batching/idle, with backoff and degraded between
// failed attempts. A flush that may have partly landed is retried with
// `uncertain`: the flush actor then asks ClickHouse what landed and sends only
// the rest. P only moves past batches ClickHouse acknowledged or was verified
// to hold. The announcer publishes watermarks in order (the newest P wins when
// several wait) while the next batch is flushed; once a watermark is stored the
// WAL is acknowledged up to it. Fenced: once the lease is lost (a `fenced`
// event from the agent's revocation, or an IO actor refused by the permit
// check) the sink stops every actor at once (the WAL consumer, an INSERT in
// flight, the announcer) and writes nothing more; the durable consumer is left
// to the new owner. IO is injected: `recover`, `wal`, `flush`,
// `announcer`.
import { assign, fromCallback, fromPromise, sendTo, setup } from "xstate";
import type { ShardAddress } from "../protocols/subjects.js";
import type { TableSpec } from "../protocols/tablespec.js";
import { DEFAULT_RETRY_POLICY, DEFAULT_SINK_LIMITS, batchDelayMs, batchFull, bytesOf, describeFailure, freshRecords, isFenced, retryDelayMs, rowsOf, takeBatch } from "../src/sink/index.js";
import type { RetryPolicy, SinkLimits, SinkRecord } from "../src/sink/index.js";

export interface SinkStats {
  /** Verified flushes (each advanced P). */
  flushes: number;
  inserts: number;
  insertedRows: number;
  /** Rows a retry found already in ClickHouse (not sent again). */
  alreadyLandedRows: number;
  /** Rows found in ClickHouse more than once (written by a writer without this check). */
  duplicateRows: number;
  failures: number;
  watermarks: number;
  watermarkFailures: number;
  lastFlushRows: number;
}

export interface SinkContext {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  readonly leaseRevision: number;
  readonly limits: SinkLimits;
  readonly retry: RetryPolicy;
  /** P: every WAL record of the shard with LSN <= P is in ClickHouse. */
  persistedLsn: number;
  /** Largest tick timestamp of the records up to P. */
  tPersistedMicros: number;
  /** Records up to this LSN may already be (partly) in ClickHouse: flushes holding them ask first. */
  verifyUpToLsn: number;
  /** Highest LSN taken in; lower ones arriving again are redeliveries. */
  receivedLsn: number;
  /** Received, not yet taken by a flush, LSN order. */
  pending: SinkRecord[];
  pendingRows: number;
  pendingBytes: number;
  /** The batch being flushed (kept across retries until verified). */
  inflight: SinkRecord[];
  /** The inflight batch may have partly landed: ask ClickHouse before sending. */
  uncertain: boolean;
  /** INSERTs of a failed attempt that may still run on the server. */
  staleQueryIds: readonly string[];
  /** Consecutive failed attempts. */
  attempt: number;
  retryDelayMs: number;
  degraded: boolean;
  /** Latest time reported by the IO actors (the machine has no clock of its own). */
  nowMs: number;
  /** Last P announced (stored in the watermark stream); the WAL is acknowledged up to it. */
  publishedLsn: number;
  lastError: string | undefined;
  /** Why the sink lost its permission to write (undefined while it holds it). */
  fencedReason: string | undefined;
  stats: SinkStats;
}

export interface SinkInput {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  /** Fencing token of this owner; carried by every watermark. */
  readonly leaseRevision?: number;
  readonly limits?: Partial<SinkLimits>;
  readonly retry?: Partial<RetryPolicy>;
}

export type SinkEvent =
  | { type: "records"; records: readonly SinkRecord[]; atMs: number }
  /** The announcer stored a watermark with this P. */
  | { type: "announced"; persistedLsn: number; atMs: number }
  /** The announcer failed to store a watermark (it retries on its own). */
  | { type: "announceFailed"; message: string }
  /** The WAL consumer failed; `fatal` when it hit a record nobody can write (restarting will not help). */
  | { type: "walError"; message: string; fatal: boolean }
  /** The lease is lost (revoked by the agent's watch of px_assign, or expired): stop writing. */
  | { type: "fenced"; reason: string }
  /** Batching changed at run time (the lag remediation's bigger batches, or back to the base limits). */
  | { type: "tune"; limits: SinkLimits }
  | { type: "drain" };

/** Sent to the WAL consumer: every record up to `lsn` is persisted and announced. */
export interface WalAck {
  readonly type: "ack";
  readonly lsn: number;
}

export interface RecoverInput {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  readonly persistedLsn: number;
}

export interface RecoverOutput {
  /** From the last watermark and the consumer's ack floor. */
  readonly persistedLsn: number;
  readonly tPersistedMicros: number;
  /** Highest LSN of the shard ClickHouse holds (after in-flight INSERTs of earlier owners ended). */
  readonly verifyUpToLsn: number;
  readonly atMs: number;
}

export interface SinkWalInput {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  /** First LSN to deliver. */
  readonly fromLsn: number;
}

export interface FlushInput {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  readonly records: readonly SinkRecord[];
  /** Ask ClickHouse which rows of `records` landed, and send only the others. */
  readonly uncertain: boolean;
  /** Wait until these INSERTs left the server before asking. */
  readonly staleQueryIds: readonly string[];
  /** 1 for the first attempt of this batch. */
  readonly attempt: number;
}

export interface FlushOutput {
  readonly inserts: number;
  readonly insertedRows: number;
  readonly alreadyLandedRows: number;
  readonly duplicateRows: number;
  readonly atMs: number;
}

/** Sent to the announcer after each verified batch. */
export interface Announce {
  readonly type: "announce";
  readonly persistedLsn: number;
  readonly tPersistedMicros: number;
}

export interface AnnouncerInput {
  readonly shard: ShardAddress;
  readonly leaseRevision: number;
  readonly retry: RetryPolicy;
}

const EMPTY_STATS: SinkStats = {
  flushes: 0,
  inserts: 0,
  insertedRows: 0,
  alreadyLandedRows: 0,
  duplicateRows: 0,
  failures: 0,
  watermarks: 0,
  watermarkFailures: 0,
  lastFlushRows: 0,
};

/** Name of the state a sink snapshot is in: recovering, idle, batching, flushing, committed, backoff, degraded, failed, fenced, stopped. */
export function sinkStateName(value: unknown): string {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object") {
    const [k, v] = Object.entries(value)[0] ?? ["unknown", undefined];
    // active.<state> is shown as <state>; recovering.<step> as recovering (degraded once it kept failing).
    return k === "active" ? sinkStateName(v) : k === "recovering" && v === "degraded" ? "degraded" : k;
  }
  return "unknown";
}

export const sinkMachine = setup({
  types: {
    context: {} as SinkContext,
    events: {} as SinkEvent,
    input: {} as SinkInput,
  },
  actors: {
    recover: fromPromise<RecoverOutput, RecoverInput>(async ({ input }) => ({
      persistedLsn: input.persistedLsn,
      tPersistedMicros: 0,
      verifyUpToLsn: input.persistedLsn,
      atMs: 0,
    })),
    wal: fromCallback<WalAck, SinkWalInput>(() => () => {}),
    flush: fromPromise<FlushOutput, FlushInput>(async () => ({ inserts: 0, insertedRows: 0, alreadyLandedRows: 0, duplicateRows: 0, atMs: 0 })),
    announcer: fromCallback<Announce, AnnouncerInput>(() => () => {}),
  },
  actions: {
    enqueue: assign(({ context }, params: { records: readonly SinkRecord[]; atMs: number }) => {
      const fresh = freshRecords(params.records, Math.max(context.receivedLsn, context.persistedLsn));
      if (fresh.length === 0) return { nowMs: Math.max(context.nowMs, params.atMs) };
      return {
        nowMs: Math.max(context.nowMs, params.atMs),
        pending: [...context.pending, ...fresh],
        pendingRows: context.pendingRows + rowsOf(fresh),
        pendingBytes: context.pendingBytes + bytesOf(fresh),
        receivedLsn: fresh[fresh.length - 1]!.lsn,
      };
    }),
    // A new batch is taken only when the previous one is verified; a retry keeps its batch.
    takeBatch: assign(({ context }) => {
      if (context.inflight.length > 0 || context.pending.length === 0) return {};
      const [batch, rest] = takeBatch(context.pending, context.limits);
      return {
        inflight: batch,
        pending: rest,
        pendingRows: context.pendingRows - rowsOf(batch),
        pendingBytes: context.pendingBytes - bytesOf(batch),
        uncertain: context.uncertain || batch[0]!.lsn <= context.verifyUpToLsn,
      };
    }),
    commit: assign(({ context }, out: FlushOutput) => {
      let t = context.tPersistedMicros;
      for (const r of context.inflight) if (r.maxTsMicros > t) t = r.maxTsMicros;
      const last = context.inflight[context.inflight.length - 1];
      const rows = rowsOf(context.inflight);
      return {
        persistedLsn: Math.max(context.persistedLsn, last?.lsn ?? 0),
        tPersistedMicros: t,
        inflight: [],
        uncertain: false,
        staleQueryIds: [],
        attempt: 0,
        degraded: false,
        lastError: undefined,
        nowMs: Math.max(context.nowMs, out.atMs),
        stats: {
          ...context.stats,
          flushes: context.stats.flushes + 1,
          inserts: context.stats.inserts + out.inserts,
          insertedRows: context.stats.insertedRows + out.insertedRows,
          alreadyLandedRows: context.stats.alreadyLandedRows + out.alreadyLandedRows,
          duplicateRows: context.stats.duplicateRows + out.duplicateRows,
          lastFlushRows: rows,
        },
      };
    }),
    flushFailed: assign(({ context }, params: { error: unknown }) => {
      const info = describeFailure(params.error);
      const attempt = context.attempt + 1;
      const delay = retryDelayMs(context.retry, attempt);
      return {
        attempt,
        // A timed-out INSERT may not have reached the server's process list yet: give it time.
        retryDelayMs: info.kind === "timeout" ? Math.max(delay, context.retry.uncertainGraceMs) : delay,
        uncertain: context.uncertain || info.mayHaveLanded,
        staleQueryIds: [...new Set([...context.staleQueryIds, ...info.queryIds])],
        degraded: context.degraded || !info.retryable || attempt >= context.retry.degradedAfterAttempts,
        lastError: info.message,
        stats: { ...context.stats, failures: context.stats.failures + 1 },
      };
    }),
    recoverFailed: assign(({ context }, params: { error: unknown }) => {
      const attempt = context.attempt + 1;
      return {
        attempt,
        retryDelayMs: retryDelayMs(context.retry, attempt),
        degraded: context.degraded || attempt >= context.retry.degradedAfterAttempts,
        lastError: `recovery: ${describeFailure(params.error).message}`,
        stats: { ...context.stats, failures: context.stats.failures + 1 },
      };
    }),
    recovered: assign(({ context }, out: RecoverOutput) => {
      const persistedLsn = Math.max(context.persistedLsn, out.persistedLsn);
      return {
        persistedLsn,
        publishedLsn: Math.max(context.publishedLsn, out.persistedLsn),
        tPersistedMicros: Math.max(context.tPersistedMicros, out.tPersistedMicros),
        verifyUpToLsn: Math.max(persistedLsn, out.verifyUpToLsn),
        receivedLsn: persistedLsn,
        attempt: 0,
        degraded: false,
        lastError: undefined,
        nowMs: Math.max(context.nowMs, out.atMs),
      };
    }),
    // The consumer restarts from P + 1: whatever was received and not persisted comes again.
    resetPipeline: assign(({ context }) => ({
      pending: [],
      pendingRows: 0,
      pendingBytes: 0,
      inflight: [],
      uncertain: false,
      receivedLsn: context.persistedLsn,
    })),
    walFailed: assign(({ context }, params: { message: string }) => {
      const attempt = context.attempt + 1;
      return {
        attempt,
        retryDelayMs: retryDelayMs(context.retry, attempt),
        lastError: `WAL consumer: ${params.message}`,
        stats: { ...context.stats, failures: context.stats.failures + 1 },
      };
    }),
    announce: sendTo("announcer", ({ context }): Announce => ({ type: "announce", persistedLsn: context.persistedLsn, tPersistedMicros: context.tPersistedMicros })),
    announced: assign(({ context }, params: { persistedLsn: number; atMs: number }) => ({
      publishedLsn: Math.max(context.publishedLsn, params.persistedLsn),
      nowMs: Math.max(context.nowMs, params.atMs),
      stats: { ...context.stats, watermarks: context.stats.watermarks + 1 },
    })),
    announceFailed: assign(({ context }, params: { message: string }) => ({
      lastError: `watermark: ${params.message}`,
      stats: { ...context.stats, watermarkFailures: context.stats.watermarkFailures + 1 },
    })),
    fence: assign(({ context }, params: { reason: string }) => ({
      fencedReason: context.fencedReason ?? params.reason,
      lastError: `fenced: ${context.fencedReason ?? params.reason}`,
    })),
    // Stored watermark first, then the WAL may forget: a crash in between only redelivers.
    ackWal: sendTo("wal", (_, params: { lsn: number }): WalAck => ({ type: "ack", lsn: params.lsn })),
  },
  guards: {
    hasPending: ({ context }) => context.pending.length > 0,
    batchFull: ({ context }) => context.pending.length > 0 && batchFull(context.pendingRows, context.pendingBytes, context.limits),
    fatal: (_, params: { fatal: boolean }) => params.fatal,
    degraded: ({ context }) => context.degraded,
    // Checked before recoverFailed counts the attempt that just failed.
    degradesNow: ({ context }) => context.degraded || context.attempt + 1 >= context.retry.degradedAfterAttempts,
    fencedError: (_, params: { error: unknown }) => isFenced(params.error),
  },
  delays: {
    batchDelay: ({ context }) => batchDelayMs(context.pending[0]?.receivedAtMs ?? context.nowMs, context.nowMs, context.limits),
    retryDelay: ({ context }) => context.retryDelayMs,
  },
}).createMachine({
  id: "sink",
  context: ({ input }) => ({
    shard: input.shard,
    spec: input.spec,
    leaseRevision: input.leaseRevision ?? 0,
    limits: { ...DEFAULT_SINK_LIMITS, ...input.limits },
    retry: { ...DEFAULT_RETRY_POLICY, ...input.retry },
    persistedLsn: 0,
    tPersistedMicros: 0,
    verifyUpToLsn: 0,
    receivedLsn: 0,
    pending: [],
    pendingRows: 0,
    pendingBytes: 0,
    inflight: [],
    uncertain: false,
    staleQueryIds: [],
    attempt: 0,
    retryDelayMs: 0,
    degraded: false,
    nowMs: 0,
    publishedLsn: 0,
    lastError: undefined,
    fencedReason: undefined,
    stats: EMPTY_STATS,
  }),
  initial: "recovering",
  on: {
    drain: { target: ".stopped" },
    // Taken by the next batch (a batch in flight keeps its records); a pending batch's delay is re-read on the next event.
    tune: { actions: assign({ limits: ({ event }) => event.limits }) },
    fenced: { target: ".fenced", actions: { type: "fence", params: ({ event }) => ({ reason: event.reason }) } },
  },
  states: {
    recovering: {
      initial: "attempt",
      states: {
        attempt: {
          invoke: {
            src: "recover",
            input: ({ context }) => ({ shard: context.shard, spec: context.spec, persistedLsn: context.persistedLsn }),
            onDone: { target: "#sink.active", actions: { type: "recovered", params: ({ event }) => event.output } },
            onError: [
              {
                guard: { type: "fencedError", params: ({ event }) => ({ error: event.error }) },
                target: "#sink.fenced",
                actions: { type: "fence", params: ({ event }) => ({ reason: describeFailure(event.error).message }) },
              },
              // ClickHouse (or NATS) down for a while: shown as degraded, retried at the capped delay, never a crash loop.
              { guard: "degradesNow", target: "degraded", actions: { type: "recoverFailed", params: ({ event }) => ({ error: event.error }) } },
              { target: "waiting", actions: { type: "recoverFailed", params: ({ event }) => ({ error: event.error }) } },
            ],
          },
        },
        waiting: {
          after: { retryDelay: { target: "attempt" } },
        },
        degraded: {
          after: { retryDelay: { target: "attempt" } },
        },
      },
    },
    active: {
      invoke: [
        {
          id: "wal",
          src: "wal",
          input: ({ context }) => ({ shard: context.shard, spec: context.spec, fromLsn: context.persistedLsn + 1 }),
        },
        {
          id: "announcer",
          src: "announcer",
          input: ({ context }) => ({ shard: context.shard, leaseRevision: context.leaseRevision, retry: context.retry }),
        },
      ],
      on: {
        records: { actions: { type: "enqueue", params: ({ event }) => ({ records: event.records, atMs: event.atMs }) } },
        announced: {
          actions: [
            { type: "announced", params: ({ event }) => ({ persistedLsn: event.persistedLsn, atMs: event.atMs }) },
            { type: "ackWal", params: ({ event }) => ({ lsn: event.persistedLsn }) },
          ],
        },
        announceFailed: { actions: { type: "announceFailed", params: ({ event }) => ({ message: event.message }) } },
        walError: [
          {
            guard: { type: "fatal", params: ({ event }) => ({ fatal: event.fatal }) },
            target: "failed",
            actions: { type: "walFailed", params: ({ event }) => ({ message: event.message }) },
          },
          {
            // Start over from P + 1 after the backoff (the consumer may fail again at once).
            target: "#sink.recovering.waiting",
            actions: [{ type: "walFailed", params: ({ event }) => ({ message: event.message }) }, "resetPipeline"],
          },
        ],
      },
      initial: "idle",
      states: {
        idle: {
          always: { guard: "hasPending", target: "batching" },
        },
        batching: {
          always: { guard: "batchFull", target: "flushing" },
          after: { batchDelay: { target: "flushing" } },
        },
        flushing: {
          entry: "takeBatch",
          invoke: {
            src: "flush",
            input: ({ context }) => ({
              shard: context.shard,
              spec: context.spec,
              records: context.inflight,
              uncertain: context.uncertain,
              staleQueryIds: context.staleQueryIds,
              attempt: context.attempt + 1,
            }),
            onDone: { target: "committed", actions: { type: "commit", params: ({ event }) => event.output } },
            onError: [
              {
                guard: { type: "fencedError", params: ({ event }) => ({ error: event.error }) },
                target: "#sink.fenced",
                actions: { type: "fence", params: ({ event }) => ({ reason: describeFailure(event.error).message }) },
              },
              { guard: "degraded", target: "degraded", actions: { type: "flushFailed", params: ({ event }) => ({ error: event.error }) } },
              { target: "backoff", actions: { type: "flushFailed", params: ({ event }) => ({ error: event.error }) } },
            ],
          },
        },
        // Between failed attempts; ingest and hot queries go on, lag grows.
        backoff: {
          always: { guard: "degraded", target: "degraded" },
          after: { retryDelay: { target: "flushing" } },
        },
        // Failing for a while (or rejected): still retrying, at the capped delay.
        degraded: {
          after: { retryDelay: { target: "flushing" } },
        },
        // The batch is verified in ClickHouse: P moved; the announcer publishes it while the next batch goes.
        committed: {
          entry: "announce",
          always: [{ guard: "batchFull", target: "flushing" }, { guard: "hasPending", target: "batching" }, { target: "idle" }],
        },
      },
    },
    failed: {},
    // Lost the lease: every actor is stopped (an INSERT in flight is aborted; the new
    // owner waits for it to leave the server). Nothing is written from here on.
    fenced: {
      on: { fenced: {} },
    },
    stopped: { type: "final" },
  },
});
