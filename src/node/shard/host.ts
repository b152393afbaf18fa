// The node's shard host: runs one ShardRuntime per shard it is told to own,
// and, when the node has a ClickHouse, the shard's SinkRuntime next to it.
// In single-node mode the node owns every shard of every table in the catalog;
// with the control plane the node agent calls start/stop from assignments,
// revokes a sink's lease as soon as its watch of px_assign sees the shard move
// (`revoke`), and renews the leases after each heartbeat (`renewLeases`).
// PX_FENCE_OFF=1 (tests only: the negative control) is read here and nowhere
// else: sinks then write without a permit. PX_GAP_CHECK_OFF=1 (tests only, the
// gap check's negative control): WAL readers go on past records that are gone.
// A shard whose table spec changed (pxctl apply) is restarted with the new spec:
// it reloads its snapshot and replays the WAL tail, its sink re-reads what it
// had not persisted; records of older versions decode with their own columns.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { ShardAddress } from "../../../protocols/subjects.js";
import type { ShardStatus } from "../../../protocols/shardstatus.js";
import { shardKey } from "../../control/index.js";
import type { LeaseConfirm } from "../../control/index.js";
import type { Catalog } from "../../catalog.js";
import type { SnapshotStore } from "../../snapshot/store.js";
import type { SinkClickhouse } from "../../sink/index.js";
import { DecodedRecordCache } from "../../wal/index.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { verifyPersisted } from "../../sink/index.js";
import { SinkRuntime, sinkVerifyIo } from "../sink/runtime.js";
import type { SinkRuntimeOptions, SinkStatus } from "../sink/runtime.js";
import type { Meter } from "../meter.js";
import { persistenceLagMs } from "../../shard/lag.js";
import { ShardRuntime } from "./runtime.js";
import type { VerifyWatermark } from "./runtime.js";

/** What every sink of the host shares: the ClickHouse and the tuning. */
export interface HostSinkOptions extends Pick<SinkRuntimeOptions, "limits" | "retry" | "maxAckPending" | "unsafeSkipLandedCheck" | "flushIo" | "leaseTtlMs"> {
  readonly clickhouse: SinkClickhouse;
}

export interface ShardHostOptions {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly snapshots: SnapshotStore;
  readonly snapshotIntervalMs: number;
  readonly catalog: () => Catalog;
  readonly log: (line: string) => void;
  /** Absent: no ClickHouse, the shards run without sinks (nothing is evicted). */
  readonly sink?: HostSinkOptions;
  /** Per-batch metrics of the shards and sinks (absent: PX_METRICS=off). */
  readonly meter?: Meter | undefined;
  /** The shard's skipped WAL records (src/wal/skips.ts), read each time it starts (absent: none). */
  readonly skips?: (shard: ShardAddress) => Promise<ReadonlySet<number>>;
}

export interface HostedShard {
  readonly shard: ShardAddress;
  readonly runtime: ShardRuntime;
  sink: SinkRuntime | undefined;
  readonly decoded: DecodedRecordCache | undefined;
  /** Its skipped WAL records, as loaded when it started. */
  readonly skipped: ReadonlySet<number>;
  readonly leaseRevision: number;
  /** The spec it runs with, as JSON: a catalog with another one restarts it. */
  readonly specKey: string;
  /** The lag remediation step whose knobs it runs with (0 when started; src/node/remediation.ts sets it). */
  lagStep: number;
}

/** A shard's status (heartbeats, `pxctl status`) with the local figures /v1/shards adds. */
export interface HostedShardStatus extends ShardStatus {
  readonly symbols: number;
  readonly lastSnapshotLsn: number;
  readonly horizonMicros: number;
  /** Age of the oldest record the WAL took and ClickHouse does not hold yet (0 when none, or no sink): see shardLagMs. */
  readonly lagMs: number;
  /** Sink state ("none" without ClickHouse). */
  readonly sinkState: string;
  /** The lag remediation step it is at (0: none; see src/sink/lagplan.ts). */
  readonly lagStep: number;
  readonly sink: SinkStatus | undefined;
  /** Why the shard stopped (state failed): e.g. a WAL record it cannot read, with the way out. */
  readonly error?: string;
}

/**
 * A hosted shard's persistence lag (ms): the age of the oldest record the WAL
 * took that is not yet in ClickHouse, held by its sink or still waiting in the
 * WAL for it. 0 without a sink (nothing is persisted, by configuration).
 */
export function shardLagMs(h: HostedShard, sink: SinkStatus | undefined, nowMs = Date.now()): number {
  return sink === undefined ? 0 : persistenceLagMs(h.runtime.stats.oldestUnpersistedAtMs, sink.lagMs, nowMs);
}

/** The WAL gap the shard or its sink stopped on (the error naming it), or undefined. */
export function walGapOf(h: HostedShard): string | undefined {
  const shardError = h.runtime.actor.getSnapshot().context.error;
  if (shardError?.includes("WAL gap") === true) return shardError;
  const sinkError = h.sink?.status().lastError;
  return sinkError?.includes("WAL gap") === true ? sinkError : undefined;
}

export class LocalShardHost {
  private readonly shards = new Map<string, HostedShard>();
  /** TESTS ONLY (negative control): PX_FENCE_OFF=1 when the host was made. */
  private readonly fenceOff = process.env.PX_FENCE_OFF === "1";
  /** TESTS ONLY (negative control): PX_GAP_CHECK_OFF=1, WAL readers go on past a gap. */
  private readonly gapCheckOff = process.env.PX_GAP_CHECK_OFF === "1";
  // start/stop run one at a time: the agent, ownAll and respec may ask at once.
  private queue: Promise<unknown> = Promise.resolve();
  /** Shards whose lapsed permit is being confirmed against px_assign (one read at a time each). */
  private readonly confirming = new Set<string>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly o: ShardHostOptions) {}

  get(shard: ShardAddress): HostedShard | undefined {
    return this.shards.get(shardKey(shard));
  }

  all(): HostedShard[] {
    return [...this.shards.values()];
  }

  get hasSinks(): boolean {
    return this.o.sink !== undefined;
  }

  /** Calls `f` after each start, restart or stop (whatever its outcome); the returned function removes it. */
  onChange(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => {});
    // What runs here follows the hosted shards (materialized feeds: node.ts).
    void run.then(
      () => this.changed(),
      () => this.changed(),
    );
    return run;
  }

  private changed(): void {
    for (const f of this.listeners) f();
  }

  /** Starts the shard (restarts it when its lease revision or its table spec changed). */
  start(shard: ShardAddress, leaseRevision: number): Promise<void> {
    return this.serial(() => this.startNow(shard, leaseRevision));
  }

  /** Stops and starts a hosted shard and its sink (same lease): they reload the shard's skipped records. False when not hosted here. */
  restart(shard: ShardAddress): Promise<boolean> {
    return this.serial(async () => {
      const h = this.shards.get(shardKey(shard));
      if (h === undefined) return false;
      await this.stopNow(shard);
      await this.startNow(shard, h.leaseRevision);
      return true;
    });
  }

  /** Restarts every hosted shard whose table spec in `catalog` differs from the one it runs with. */
  async respec(catalog: Catalog): Promise<void> {
    for (const h of this.all()) {
      const spec = catalog.get(h.shard.tenant)?.get(h.shard.table);
      if (spec !== undefined && JSON.stringify(spec) !== h.specKey) await this.start(h.shard, h.leaseRevision);
    }
  }

  private async startNow(shard: ShardAddress, leaseRevision: number): Promise<void> {
    const key = shardKey(shard);
    const existing = this.shards.get(key);
    const spec: TableSpec | undefined = this.o.catalog().get(shard.tenant)?.get(shard.table);
    if (!spec && existing?.leaseRevision === leaseRevision) return; // table gone from the catalog: the agent decides
    if (!spec) throw new Error(`shard ${key}: table ${shard.tenant}/${shard.table} is not in the catalog`);
    const specKey = JSON.stringify(spec);
    if (existing && existing.leaseRevision === leaseRevision && existing.specKey === specKey) return;
    if (existing && existing.specKey !== specKey) this.o.log(`shard ${key}: table spec changed (version ${spec.version}); restarting with it`);
    if (existing) await this.stopNow(shard);
    const s = this.o.sink;
    // With a sink next to the shard, both read every record: decode it once.
    const decoded = s === undefined ? undefined : new DecodedRecordCache();
    // A skips store that cannot be read leaves none: the shard then stops again on its bad record, nothing is lost.
    const skipped = await (this.o.skips?.(shard) ?? Promise.resolve(new Set<number>())).catch((e: unknown) => {
      this.o.log(`shard ${key}: cannot read its skipped WAL records (${(e as Error).message}); starting without`);
      return new Set<number>();
    });
    const runtime = new ShardRuntime({
      shard,
      spec,
      js: this.o.js,
      jsm: this.o.jsm,
      snapshots: this.o.snapshots,
      snapshotIntervalMs: this.o.snapshotIntervalMs,
      log: this.o.log,
      meter: this.o.meter,
      unsafeGapCheckOff: this.gapCheckOff,
      ...(decoded === undefined ? {} : { decoded }),
      ...(s === undefined ? {} : { verifyWatermark: this.watermarkVerifier(shard, spec, s, skipped) }),
      skipped,
    });
    const sink = this.makeSink(shard, leaseRevision, decoded, skipped);
    this.shards.set(key, { shard, runtime, sink, leaseRevision, decoded, skipped, specKey, lagStep: 0 });
    runtime.start();
    sink?.start();
  }

  /**
   * Verified P on the reading side: a watermark up to what this node's own sink
   * persisted is trusted; any other (a forged one, another writer's) is checked
   * against ClickHouse before the shard evicts against it.
   */
  private watermarkVerifier(shard: ShardAddress, spec: TableSpec, s: HostSinkOptions, skipped: ReadonlySet<number>): VerifyWatermark {
    const io = { shard, spec, js: this.o.js, jsm: this.o.jsm, clickhouse: s.clickhouse, skipped };
    return async (w, signal) => {
      const local = this.shards.get(shardKey(shard))?.sink;
      if (local !== undefined && local.actor.getSnapshot().context.persistedLsn >= w.persistedLsn) return undefined;
      if (this.fenceOff) return undefined;
      return (await verifyPersisted(sinkVerifyIo(io, signal), w.persistedLsn)).refused;
    };
  }

  private makeSink(shard: ShardAddress, leaseRevision: number, decoded: DecodedRecordCache | undefined, skipped: ReadonlySet<number>): SinkRuntime | undefined {
    const s = this.o.sink;
    const spec = this.o.catalog().get(shard.tenant)?.get(shard.table);
    if (s === undefined || spec === undefined) return undefined;
    return new SinkRuntime({
      shard,
      spec,
      js: this.o.js,
      jsm: this.o.jsm,
      clickhouse: s.clickhouse,
      leaseRevision,
      log: this.o.log,
      meter: this.o.meter,
      unsafeFenceOff: this.fenceOff,
      unsafeGapCheckOff: this.gapCheckOff,
      ...(decoded === undefined ? {} : { decoded }),
      skipped,
      ...(s.limits === undefined ? {} : { limits: s.limits }),
      ...(s.retry === undefined ? {} : { retry: s.retry }),
      ...(s.maxAckPending === undefined ? {} : { maxAckPending: s.maxAckPending }),
      ...(s.unsafeSkipLandedCheck === undefined ? {} : { unsafeSkipLandedCheck: s.unsafeSkipLandedCheck }),
      ...(s.flushIo === undefined ? {} : { flushIo: s.flushIo }),
      ...(s.leaseTtlMs === undefined ? {} : { leaseTtlMs: s.leaseTtlMs }),
    });
  }

  /**
   * The agent's watch of px_assign saw the shard assigned elsewhere (or to a
   * newer revision): the sink loses its permit now, before its next INSERT,
   * without waiting for the stop to be scheduled.
   */
  revoke(shard: ShardAddress, reason: string, newRevision?: number): void {
    const h = this.shards.get(shardKey(shard));
    if (h === undefined || (newRevision !== undefined && newRevision <= h.leaseRevision)) return;
    h.sink?.revoke(reason);
  }

  /**
   * The agent's heartbeat, sent `sentAgoMs` ago, was stored: extend every
   * sink's permit from when it was sent. A permit that lapsed meanwhile (the
   * node was paused or cut off longer than it lasts) is not extended on the
   * heartbeat alone: the controller may have moved the shard in that time and
   * this node's watch of px_assign may not have said so yet (a paused
   * process's buffered messages come in any order with the heartbeat's
   * reply). `confirm` reads px_assign first; only if the shard is still this
   * node's under the same lease revision is the permit extended (from when
   * the read was sent), or a sink fenced by the lapse started again (its
   * recovery waits for earlier INSERTs, verifies P, and fences itself if a
   * newer owner wrote); otherwise its permit is revoked.
   */
  renewLeases(sentAgoMs: number, confirm: LeaseConfirm): void {
    for (const [key, h] of this.shards) {
      const sink = h.sink;
      if (sink === undefined || sink.lease.revoked) continue;
      if (sink.state !== "fenced" && !sink.permitLapsed) {
        sink.renew(sentAgoMs);
        continue;
      }
      if (this.confirming.has(key)) continue;
      this.confirming.add(key);
      const asked = performance.now();
      void confirm(h.shard, h.leaseRevision)
        .then(
          (holds) => {
            // Stopped, restarted or revoked while px_assign was read: nothing to do for this sink any more.
            if (this.shards.get(key) !== h || h.sink !== sink || sink.lease.revoked) return;
            if (!holds) {
              sink.revoke(`its permit lapsed and px_assign no longer gives the shard to this node under lease revision ${h.leaseRevision}`);
              return;
            }
            if (sink.state !== "fenced") {
              sink.renew(performance.now() - asked);
              return;
            }
            this.o.log(`shard ${key}: sink permit lapsed and px_assign still gives it lease revision ${h.leaseRevision}: starting the sink again`);
            void sink.stop();
            h.sink = this.makeSink(h.shard, h.leaseRevision, h.decoded, h.skipped);
            h.lagStep = 0; // a new sink runs with the base limits: the remediation sets its knobs again
            h.sink?.start();
          },
          // px_assign unreadable: the permit stays lapsed; the next heartbeat asks again.
          () => {},
        )
        .finally(() => this.confirming.delete(key));
    }
  }

  /** Stops the shard and its sink; resolves once neither writes any more. */
  stop(shard: ShardAddress): Promise<void> {
    return this.serial(() => this.stopNow(shard));
  }

  private async stopNow(shard: ShardAddress): Promise<void> {
    const key = shardKey(shard);
    const s = this.shards.get(key);
    if (!s) return;
    this.shards.delete(key);
    await s.sink?.stop();
    s.runtime.stop();
  }

  /** Single-node mode: own every shard of every table in the catalog. */
  async ownAll(catalog: Catalog): Promise<void> {
    for (const [tenant, tables] of catalog) {
      for (const spec of tables.values()) {
        for (let bucket = 0; bucket < spec.shards; bucket++) await this.start({ tenant, table: spec.name, bucket }, 0);
      }
    }
  }

  status(): HostedShardStatus[] {
    return this.all().map((h) => {
      const { shard, runtime, sink, leaseRevision, lagStep } = h;
      const s = runtime.stats;
      const error = runtime.actor.getSnapshot().context.error;
      const k = sink?.status();
      return {
        ...shard,
        state: runtime.state,
        appliedLsn: s.appliedLsn,
        rows: s.rows,
        bytes: s.bytes,
        symbols: s.symbols,
        leaseRevision,
        lastSnapshotLsn: s.lastSnapshotLsn,
        persistedLsn: s.persistedLsn,
        tPersistedMicros: s.tPersistedMicros,
        horizonMicros: s.horizonMicros,
        lagRecords: s.lagRecords,
        lagMs: shardLagMs(h, k),
        sinkState: k?.state ?? "none",
        lagStep,
        sink: k,
        ...(error === undefined ? {} : { error }),
      };
    });
  }

  /**
   * Before a graceful stop: a snapshot of each live shard whose table asks for
   * one on shutdown (its policy's onShutdown), all at once, each within
   * `timeoutMs`; a failure is logged and the stop goes on. Resolves with how many were written.
   */
  async snapshotOnShutdown(timeoutMs = 10_000): Promise<number> {
    const due = this.all().filter((h) => h.runtime.spec.snapshot?.onShutdown === true && /^running\.(live|snapshotting)$/.test(h.runtime.state));
    const written = await Promise.all(
      due.map((h) =>
        h.runtime.snapshotNow(timeoutMs).then(
          () => 1,
          (e: unknown) => {
            this.o.log(`shard ${shardKey(h.shard)}: no snapshot on shutdown: ${(e as Error).message}`);
            return 0;
          },
        ),
      ),
    );
    return written.reduce((a: number, b: number) => a + b, 0);
  }

  async stopAll(): Promise<void> {
    for (const s of this.all()) await this.stop(s.shard);
  }
}
