// The node's shard host: runs one ShardRuntime per shard it is told to own,
// and, when the node has a ClickHouse, the shard's SinkRuntime next to it.
// In single-node mode the node owns every shard of every table in the catalog;
// with the control plane the node agent calls start/stop from assignments.
// A shard whose table spec changed (pxctl apply) is restarted with the new spec:
// it reloads its snapshot and replays the WAL tail, its sink re-reads what it
// had not persisted; records of older versions decode with their own columns.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { ShardAddress } from "../../../protocols/subjects.js";
import type { ShardStatus } from "../../../protocols/shardstatus.js";
import { shardKey } from "../../control/index.js";
import type { Catalog } from "../../catalog.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import type { SnapshotStore } from "../../snapshot/store.js";
import type { SinkClickhouse } from "../../sink/index.js";
import { DecodedRecordCache } from "../../wal/index.js";
import { SinkRuntime } from "../sink/runtime.js";
import type { SinkRuntimeOptions, SinkStatus } from "../sink/runtime.js";
import { ShardRuntime } from "./runtime.js";

/** What every sink of the host shares: the ClickHouse and the tuning. */
export interface HostSinkOptions extends Pick<SinkRuntimeOptions, "limits" | "retry" | "maxAckPending" | "unsafeSkipLandedCheck" | "flushIo"> {
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
}

export interface HostedShard {
  readonly shard: ShardAddress;
  readonly runtime: ShardRuntime;
  readonly sink: SinkRuntime | undefined;
  readonly leaseRevision: number;
  /** The spec it runs with, as JSON: a catalog with another one restarts it. */
  readonly specKey: string;
}

/** A shard's status (heartbeats, `pxctl status`) with the local figures /v1/shards adds. */
export interface HostedShardStatus extends ShardStatus {
  readonly symbols: number;
  readonly lastSnapshotLsn: number;
  readonly horizonMicros: number;
  /** Age of the oldest record the sink holds unpersisted (0 when none, or no sink). */
  readonly lagMs: number;
  /** Sink state ("none" without ClickHouse). */
  readonly sinkState: string;
  readonly sink: SinkStatus | undefined;
}

export class LocalShardHost {
  private readonly shards = new Map<string, HostedShard>();
  // start/stop run one at a time: the agent, ownAll and respec may ask at once.
  private queue: Promise<unknown> = Promise.resolve();

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

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Starts the shard (restarts it when its lease revision or its table spec changed). */
  start(shard: ShardAddress, leaseRevision: number): Promise<void> {
    return this.serial(() => this.startNow(shard, leaseRevision));
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
    const runtime = new ShardRuntime({
      shard,
      spec,
      js: this.o.js,
      jsm: this.o.jsm,
      snapshots: this.o.snapshots,
      snapshotIntervalMs: this.o.snapshotIntervalMs,
      log: this.o.log,
      ...(decoded === undefined ? {} : { decoded }),
    });
    const sink =
      s === undefined
        ? undefined
        : new SinkRuntime({
            shard,
            spec,
            js: this.o.js,
            jsm: this.o.jsm,
            clickhouse: s.clickhouse,
            leaseRevision,
            log: this.o.log,
            ...(decoded === undefined ? {} : { decoded }),
            ...(s.limits === undefined ? {} : { limits: s.limits }),
            ...(s.retry === undefined ? {} : { retry: s.retry }),
            ...(s.maxAckPending === undefined ? {} : { maxAckPending: s.maxAckPending }),
            ...(s.unsafeSkipLandedCheck === undefined ? {} : { unsafeSkipLandedCheck: s.unsafeSkipLandedCheck }),
            ...(s.flushIo === undefined ? {} : { flushIo: s.flushIo }),
          });
    this.shards.set(key, { shard, runtime, sink, leaseRevision, specKey });
    runtime.start();
    sink?.start();
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
    return this.all().map(({ shard, runtime, sink, leaseRevision }) => {
      const s = runtime.stats;
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
        lagMs: k?.lagMs ?? 0,
        sinkState: k?.state ?? "none",
        sink: k,
      };
    });
  }

  async stopAll(): Promise<void> {
    for (const s of this.all()) await this.stop(s.shard);
  }
}
