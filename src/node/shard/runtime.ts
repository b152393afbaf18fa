// Runs a shard actor for real: the WAL consumer is a JetStream ordered
// consumer on the shard's subject, snapshots go to the object store. Also
// answers "wait until LSN L is applied" for read-after-write queries.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { DeliverPolicy } from "@nats-io/jetstream";
import type { JsMsg } from "@nats-io/jetstream";
import { createActor, fromCallback, fromPromise, waitFor } from "xstate";
import type { Actor } from "xstate";
import { shardMachine } from "../../../actors/shard.js";
import type { ShardEvent, ShardStats, SnapshotWriteInput, WalInput, WatermarksInput } from "../../../actors/shard.js";
import { walStream, walSubject } from "../../../protocols/subjects.js";
import type { ShardAddress } from "../../../protocols/subjects.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { TaggedError } from "../../../protocols/tagged.js";
import type { HotTable } from "../../hotset/index.js";
import type { SnapshotStore } from "../../snapshot/store.js";
import type { WalEntry } from "../../shard/apply.js";
import { WatermarkGate } from "../../sink/index.js";
import { consumeBatches, followWatermarks } from "../../wal/index.js";
import type { WatermarkEvent } from "../../wal/index.js";
import type { DecodedRecord, DecodedRecordCache, SkippedLsns } from "../../wal/index.js";
import { StallWatch, WalGapError, sharedWalGapGate, skippedRecord, walPull } from "../../wal/index.js";
import type { Meter } from "../meter.js";
import { TRACEPARENT, childSpan, tracingOn } from "../obs/index.js";
import { snapshotWorkerEnabled, writeSnapshotOffLoop } from "./snapshotwriter.js";
import { snapshotPhaseOf } from "../../shard/snapshotphase.js";

/** An on-demand snapshot that failed, timed out, or was cut short by the shard stopping. */
export class SnapshotFailedError extends TaggedError("SnapshotFailedError") {}

export class LsnWaitTimeoutError extends TaggedError("LsnWaitTimeoutError") {}

/** Last LSN stored on a subject (0 when it has none). */
export async function lastLsnOf(jsm: JetStreamManager, shard: ShardAddress): Promise<number> {
  const m = await jsm.streams.getMessage(walStream(shard.tenant), { last_by_subj: walSubject(shard.tenant, shard.table, shard.bucket) }).catch(() => null);
  return m?.seq ?? 0;
}

/** How the shard's WAL consumer reads (jetstreamWalConsumer). */
export interface WalConsumerOptions {
  /** Records per `records` event at most (512). */
  readonly maxBatch?: number;
  /** Records are decoded here, through the cache the node's sink of the same shard also reads: each record is decoded once per node. */
  readonly shared?: { readonly spec: TableSpec; readonly decoded: DecodedRecordCache };
  readonly meter?: Meter | undefined;
  /** TESTS ONLY (negative control): replay goes on past a gap. */
  readonly gapCheckOff?: boolean;
  /** Records an operator skipped: read as records without rows. */
  readonly skipped?: { readonly spec: TableSpec; readonly lsns: SkippedLsns };
  /** Nothing delivered for this long while the subject holds more: the consumer is reopened (src/wal/stall.ts). 0: never (TESTS ONLY, the negative control). */
  readonly stallMs?: number;
  /** TESTS ONLY: wraps the consumer's messages (a test makes them stop flowing). */
  readonly unsafeWrapMessages?: (messages: AsyncIterable<JsMsg>) => AsyncIterable<JsMsg>;
}

/** Nothing delivered for 10 s while the subject holds more: the shard's WAL consumer is reopened. */
export const DEFAULT_WAL_STALL_MS = 10_000;

/**
 * The shard's ordered WAL consumer. A consumer that fails, ends, or delivers
 * nothing while the subject holds more (StallWatch) ends with `walError`: the
 * shard retries from what it applied.
 */
export function jetstreamWalConsumer(js: JetStreamClient, jsm: JetStreamManager, o: WalConsumerOptions = {}) {
  const { maxBatch = 512, shared, meter, gapCheckOff = false, skipped, stallMs = DEFAULT_WAL_STALL_MS } = o;
  return fromCallback<ShardEvent, WalInput>(({ input, sendBack }) => {
    let stopped = false;
    let stop: (() => void) | undefined;
    let watchTimer: ReturnType<typeof setInterval> | undefined;
    // One walError per consumer: a stall and the loop's own end must not both retry.
    const fail = (message: string, fatal: boolean): void => {
      if (stopped) return;
      stopped = true;
      clearInterval(watchTimer);
      stop?.();
      sendBack({ type: "walError", message, fatal });
    };
    void (async () => {
      const subject = walSubject(input.shard.tenant, input.shard.table, input.shard.bucket);
      // Records this replay needs that are gone (purged, compacted past an older snapshot): fail, never serve a hole.
      const gate = sharedWalGapGate(jsm, input.shard, "the hot set", input.fromLsn, gapCheckOff);
      await gate.atStart();
      const last = await lastLsnOf(jsm, input.shard);
      let caughtUp = false;
      if (last < input.fromLsn) {
        caughtUp = true;
        sendBack({ type: "caughtUp" });
      }
      const consumer = await js.consumers.get(walStream(input.shard.tenant), {
        filter_subjects: subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: input.fromLsn,
      });
      if (stopped) return;
      // Bounded pull, by messages or by bytes as the records' size allows (src/wal/pull.ts): a 4096-message pull of ~30 KB
      // records stalled mid-stream in the replay benchmark (past nats-server's max_pending: cut off as a slow consumer).
      const messages = await consumer.consume(await walPull(js, walStream(input.shard.tenant), 256));
      stop = () => void messages.stop();
      if (stopped) return stop();
      const watch = new StallWatch(input.fromLsn, stallMs, Date.now());
      if (stallMs > 0) {
        let asking = false;
        watchTimer = setInterval(
          () => {
            if (asking || stopped || !watch.quiet(Date.now())) return;
            asking = true;
            const askedAt = Date.now();
            void lastLsnOf(jsm, input.shard).then((lastLsn) => {
              asking = false;
              const why = watch.verdict(lastLsn, askedAt, Date.now());
              if (why !== undefined) fail(why, false);
            });
          },
          Math.max(50, stallMs / 4),
        );
        watchTimer.unref?.();
      }
      let newest: JsMsg | undefined;
      const traced: { tp: string; lsn: number }[] = [];
      await consumeBatches<WalEntry>(o.unsafeWrapMessages?.(messages) ?? messages, {
        maxBatch,
        stopped: () => stopped,
        beforeBatch: gate.beforeBatch,
        onRefused: () => void messages.stop(),
        read: (m) => {
          newest = m;
          watch.delivered(m.seq, Date.now());
          // Traced records (tracing on, the batch sampled) carry the WAL append's traceparent.
          if (tracingOn()) {
            const tp = m.headers?.get(TRACEPARENT);
            if (tp) traced.push({ tp, lsn: m.seq });
          }
          let decoded: DecodedRecord | undefined;
          // A record an operator skipped (pxctl shard skip-record): read as one without rows.
          if (skipped !== undefined && skipped.lsns.has(m.seq)) decoded = skippedRecord(skipped.spec);
          else if (shared !== undefined) {
            try {
              decoded = shared.decoded.takeOrDecode(shared.spec, m.seq, m.data);
            } catch {
              // Left to apply, which fails the shard with the reason.
            }
          }
          // JetStream's store time (from the delivery's reply subject, parsed for m.seq already): the lag's age.
          const appendedAtMs = m.info.timestampNanos / 1e6;
          return decoded === undefined ? { lsn: m.seq, data: m.data, appendedAtMs } : { lsn: m.seq, data: m.data, decoded, appendedAtMs };
        },
        onBatch: (records) => {
          const t0 = traced.length === 0 ? 0 : Date.now();
          sendBack({ type: "records", records });
          for (const { tp, lsn } of traced.splice(0)) {
            const attributes = { "px.tenant": input.shard.tenant, "px.table": input.shard.table, "px.bucket": input.shard.bucket, "px.lsn": lsn, "px.batch_records": records.length };
            childSpan("px.shard.apply", tp, { startTime: t0, attributes }).end();
          }
          // Per batch, from the newest record's JetStream timestamp: the lag a query reading the hot set sees.
          if (meter !== undefined && newest !== undefined) meter.shardApplied(input.shard, Date.now() / 1000 - Number(newest.timestampNanos) / 1e9);
        },
        onCaughtUp: () => {
          if (caughtUp) return;
          caughtUp = true;
          sendBack({ type: "caughtUp" });
        },
      });
      // The messages ended without this reader stopping them (the client closed them): nothing more would arrive.
      fail("the WAL consumer's messages ended; reopening it", false);
    })().catch((e: unknown) => {
      // Lost records end the shard (fatal); anything else (a timeout, a NATS server going away) is retried.
      fail((e as Error).message, e instanceof WalGapError);
    });
    return () => {
      stopped = true;
      clearInterval(watchTimer);
      stop?.();
    };
  });
}

/** Checks a watermark before the shard evicts against it: undefined to accept, else why it is refused. */
export type VerifyWatermark = (w: WatermarkEvent, signal: AbortSignal) => Promise<string | undefined>;

/**
 * The shard's watermark stream (PX_WM_<tenant>), from the last stored one on,
 * as `watermark` events, one at a time. Refused (logged, counted in
 * `refused.count`): an older lease revision than the highest seen, and, with
 * `verify`, a P ClickHouse does not hold.
 */
export function jetstreamWatermarks(js: JetStreamClient, log: (line: string) => void, refused: { count: number }, verify?: VerifyWatermark) {
  return fromCallback<ShardEvent, WatermarksInput>(({ input, sendBack }) => {
    const name = `${input.shard.tenant}/${input.shard.table}/${input.shard.bucket}`;
    const gate = new WatermarkGate();
    const abort = new AbortController();
    let chain: Promise<void> = Promise.resolve();
    const refuse = (why: string): void => {
      refused.count++;
      log(`shard ${name}: REFUSED ${why}; nothing is evicted against it`);
    };
    const stop = followWatermarks(
      js,
      input.shard,
      (w) => {
        chain = chain.then(async () => {
          if (abort.signal.aborted) return;
          const stale = gate.check(w);
          if (stale !== undefined) return refuse(stale);
          const why = verify === undefined ? undefined : await verify(w, abort.signal).catch((e: unknown) => `cannot be verified against ClickHouse (${(e as Error).message})`);
          if (why !== undefined) return refuse(why);
          if (!abort.signal.aborted) sendBack({ type: "watermark", persistedLsn: w.persistedLsn, tPersistedMicros: w.tPersistedMicros, leaseRevision: w.leaseRevision });
        });
      },
      (e) => log(`shard ${name}: watermarks: ${e.message}`),
    );
    return () => {
      abort.abort();
      stop();
    };
  });
}

export interface ShardRuntimeOptions {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly snapshots: SnapshotStore;
  readonly snapshotIntervalMs?: number;
  readonly log: (line: string) => void;
  /** Shared with this node's sink of the shard: each WAL record is decoded once. */
  readonly decoded?: DecodedRecordCache;
  /** Checks each watermark against ClickHouse before evicting (nodes with a ClickHouse). */
  readonly verifyWatermark?: VerifyWatermark;
  readonly meter?: Meter | undefined;
  /** TESTS ONLY (negative control, PX_GAP_CHECK_OFF=1 in the shard host): replay goes on past a gap. */
  readonly unsafeGapCheckOff?: boolean;
  /** Records an operator skipped (src/wal/skips.ts): read as records without rows. */
  readonly skipped?: SkippedLsns;
  /** The WAL consumer is reopened after this long without a delivery while its subject holds more (DEFAULT_WAL_STALL_MS; 0 never: TESTS ONLY). */
  readonly walStallMs?: number;
  /** TESTS ONLY: wraps the WAL consumer's messages (a test makes them stop flowing). */
  readonly unsafeWrapWalMessages?: (messages: AsyncIterable<JsMsg>) => AsyncIterable<JsMsg>;
}

export class ShardRuntime {
  /** Watermarks refused before reaching the machine (stale revision, P ClickHouse lacks). */
  readonly refusedWatermarks = { count: 0 };
  readonly actor: Actor<typeof shardMachine>;
  private readonly waiters = new Set<{ lsn: number; resolve: () => void }>();

  constructor(private readonly o: ShardRuntimeOptions) {
    const name = `${o.shard.tenant}/${o.shard.table}/${o.shard.bucket}`;
    this.actor = createActor(
      shardMachine.provide({
        actors: {
          loadSnapshot: fromPromise(async ({ input }) => {
            const s = await o.snapshots.loadLatest(input.shard, input.spec, (l) => o.log(`shard ${name}: ${l}`));
            if (s) o.log(`shard ${name}: loaded snapshot at LSN ${s.manifest.lsn} (${s.table.rowCount} rows)`);
            return s?.table;
          }),
          wal: jetstreamWalConsumer(o.js, o.jsm, {
            ...(o.decoded === undefined ? {} : { shared: { spec: o.spec, decoded: o.decoded } }),
            meter: o.meter,
            gapCheckOff: o.unsafeGapCheckOff === true,
            ...(o.skipped === undefined ? {} : { skipped: { spec: o.spec, lsns: o.skipped } }),
            ...(o.walStallMs === undefined ? {} : { stallMs: o.walStallMs }),
            ...(o.unsafeWrapWalMessages === undefined ? {} : { unsafeWrapMessages: o.unsafeWrapWalMessages }),
          }),
          watermarks: jetstreamWatermarks(o.js, o.log, this.refusedWatermarks, o.verifyWatermark),
          writeSnapshot: fromPromise(async ({ input }: { input: SnapshotWriteInput }) => {
            const t0 = performance.now();
            // Off the event loop unless PX_SNAPSHOT_WORKER=off (./snapshotwriter.ts).
            const write = snapshotWorkerEnabled() ? writeSnapshotOffLoop(o.snapshots, input.shard, input.table) : o.snapshots.write(input.shard, input.table);
            const w = await write.catch((e: unknown) => {
              o.meter?.snapshotWritten(input.shard, (performance.now() - t0) / 1000, false);
              throw e;
            });
            o.meter?.snapshotWritten(input.shard, (performance.now() - t0) / 1000, true);
            o.log(`shard ${name}: snapshot at LSN ${w.lsn} (${w.rows} rows, ${w.bytes} bytes)`);
            return { lsn: w.lsn };
          }),
        },
      }),
      { input: { shard: o.shard, spec: o.spec, snapshotIntervalMs: o.snapshotIntervalMs ?? 0, snapshotPhase: snapshotPhaseOf(o.shard) } },
    );
    let loggedRetries = 0;
    this.actor.subscribe((snap) => {
      const applied = snap.context.stats.appliedLsn;
      for (const w of this.waiters) {
        if (applied >= w.lsn) {
          this.waiters.delete(w);
          w.resolve();
        }
      }
      if (snap.value === "failed") o.log(`shard ${name}: FAILED: ${snap.context.error}`);
      if (snap.value === "walRetry" && snap.context.walRetries !== loggedRetries) {
        loggedRetries = snap.context.walRetries;
        o.log(`shard ${name}: WAL consumer failed (${snap.context.walRetryError}); retrying from LSN ${snap.context.stats.appliedLsn + 1} (attempt ${loggedRetries})`);
      }
    });
  }

  start(): this {
    this.actor.start();
    return this;
  }

  get spec(): TableSpec {
    return this.o.spec;
  }

  get table(): HotTable {
    return this.actor.getSnapshot().context.table;
  }

  get stats(): ShardStats {
    return this.actor.getSnapshot().context.stats;
  }

  /** e.g. "running.live", "recovering", "failed" */
  get state(): string {
    const v = this.actor.getSnapshot().value;
    return typeof v === "string" ? v : Object.entries(v).map(([k, s]) => `${k}.${String(s)}`).join(",");
  }

  /** The shard's last LSN in the WAL now (0 when it has none). */
  lastLsn(): Promise<number> {
    return lastLsnOf(this.o.jsm, this.o.shard);
  }

  /**
   * Resolves once every record of this shard with LSN <= `lsn` is applied.
   * Records of other shards interleave in the stream, so the target is the
   * shard's own last LSN when that is lower.
   */
  async waitForLsn(lsn: number, timeoutMs: number): Promise<void> {
    if (this.stats.appliedLsn >= lsn) return;
    const target = Math.min(lsn, await lastLsnOf(this.o.jsm, this.o.shard));
    if (this.stats.appliedLsn >= target) return;
    await new Promise<void>((resolve, reject) => {
      const w = { lsn: target, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new LsnWaitTimeoutError(`shard ${this.o.shard.tenant}/${this.o.shard.table}/${this.o.shard.bucket} has applied LSN ${this.stats.appliedLsn}, not yet ${target}, after ${timeoutMs} ms; retry, or ask without minLsn for what is there now`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /**
   * Writes a snapshot now; resolves with the LSN it covers. Waits on the
   * actor: the snapshot counters of its context say when the write ended.
   */
  /** Lag remediation: hold eviction by age (persisted rows stay hot within maxHotBytes) or release it. */
  holdEviction(hold: boolean): void {
    this.actor.send({ type: "holdEviction", hold });
  }

  /** True while eviction by age is held. */
  get evictionHeld(): boolean {
    return this.actor.getSnapshot().context.evictionHeld;
  }

  async snapshotNow(timeoutMs = 60_000): Promise<number> {
    const name = `${this.o.shard.tenant}/${this.o.shard.table}/${this.o.shard.bucket}`;
    const { snapshots, snapshotFailures } = this.stats;
    this.actor.send({ type: "snapshot" });
    const done = await waitFor(this.actor, (s) => s.context.stats.snapshots > snapshots || s.context.stats.snapshotFailures > snapshotFailures || s.status !== "active", {
      timeout: timeoutMs,
    }).catch(() => {
      throw new SnapshotFailedError(`shard ${name}: the snapshot did not finish in ${timeoutMs} ms (state ${this.state}; a shard takes snapshots only once it replayed the WAL); retry later`);
    });
    const s = done.context.stats;
    if (s.snapshots > snapshots) return s.lastSnapshotLsn;
    if (s.snapshotFailures > snapshotFailures) throw new SnapshotFailedError(`shard ${name}: the snapshot failed (the node log says why); retry it`);
    throw new SnapshotFailedError(`shard ${name}: the shard stopped (state ${this.state}) before the snapshot was written`);
  }

  stop(): void {
    this.actor.send({ type: "drain" });
    this.actor.stop();
  }
}
