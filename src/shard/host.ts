// The node's shard host: runs one ShardRuntime per shard it is told to own.
// In single-node mode the node owns every shard of every table in the catalog;
// with the control plane the node agent calls start/stop from assignments.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { ShardAddress } from "../../protocols/subjects.js";
import type { Catalog } from "../catalog.js";
import type { SnapshotStore } from "../snapshot/store.js";
import { ShardRuntime } from "./runtime.js";

export const shardKey = (s: ShardAddress): string => `${s.tenant}.${s.table}.${s.bucket}`;

export interface ShardHostOptions {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly snapshots: SnapshotStore;
  readonly snapshotIntervalMs: number;
  readonly catalog: () => Catalog;
  readonly log: (line: string) => void;
}

export interface HostedShard {
  readonly shard: ShardAddress;
  readonly runtime: ShardRuntime;
  readonly leaseRevision: number;
}

export class LocalShardHost {
  private readonly shards = new Map<string, HostedShard>();

  constructor(private readonly o: ShardHostOptions) {}

  get(shard: ShardAddress): HostedShard | undefined {
    return this.shards.get(shardKey(shard));
  }

  all(): HostedShard[] {
    return [...this.shards.values()];
  }

  async start(shard: ShardAddress, leaseRevision: number): Promise<void> {
    const key = shardKey(shard);
    const existing = this.shards.get(key);
    if (existing && existing.leaseRevision === leaseRevision) return;
    if (existing) await this.stop(shard);
    const spec = this.o.catalog().get(shard.tenant)?.get(shard.table);
    if (!spec) throw new Error(`shard ${key}: table ${shard.tenant}/${shard.table} is not in the catalog`);
    const runtime = new ShardRuntime({ shard, spec, js: this.o.js, jsm: this.o.jsm, snapshots: this.o.snapshots, snapshotIntervalMs: this.o.snapshotIntervalMs, log: this.o.log });
    this.shards.set(key, { shard, runtime, leaseRevision });
    runtime.start();
  }

  async stop(shard: ShardAddress): Promise<void> {
    const key = shardKey(shard);
    const s = this.shards.get(key);
    if (!s) return;
    this.shards.delete(key);
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

  status() {
    return this.all().map(({ shard, runtime, leaseRevision }) => {
      const s = runtime.stats;
      return { ...shard, state: runtime.state, appliedLsn: s.appliedLsn, rows: s.rows, bytes: s.bytes, symbols: s.symbols, leaseRevision, lastSnapshotLsn: s.lastSnapshotLsn };
    });
  }

  async stopAll(): Promise<void> {
    for (const s of this.all()) await this.stop(s.shard);
  }
}
