// Fakes for control-plane unit tests: shared in-memory buckets (one per KV
// bucket, each client sees it through a view that can be partitioned), a
// recording ShardHost, a static catalog source, and a clock driver.
import type { SimulatedClock } from "xstate";
import { catalogOf } from "../../src/catalog.js";
import type { Catalog } from "../../src/catalog.js";
import { MemoryKv, PartitionedKv, shardKey, storesOver } from "../../src/control/index.js";
import type { CatalogSource, ControlStores, HeartbeatInfo, NodePhase, ShardHost, ShardRef } from "../../src/control/index.js";
import { shardStatus } from "../../protocols/shardstatus.js";
import type { ShardStatus } from "../../protocols/shardstatus.js";
import type { TenantSpec } from "../../protocols/tablespec.js";
import { parseTenantSpec } from "../../protocols/tablespec.js";

/** Lets every pending promise (and promise chains) settle; no wall-clock time passes for the machines. */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Advances simulated clocks in small steps so IO started by one timer completes before the next fires. */
export async function advance(clocks: SimulatedClock | readonly SimulatedClock[], ms: number, stepMs = 10): Promise<void> {
  const list = Array.isArray(clocks) ? clocks : [clocks as SimulatedClock];
  for (let t = 0; t < ms; t += stepMs) {
    for (const c of list) c.increment(Math.min(stepMs, ms - t));
    await flush(2);
  }
}

export class Cluster {
  readonly buckets = { leader: new MemoryKv("px_leader"), nodes: new MemoryKv("px_nodes"), assign: new MemoryKv("px_assign"), placement: new MemoryKv("px_placement") };

  /** Stores as one client sees them; set `.down` on the returned views to cut that client off. */
  client(): { stores: ControlStores; views: PartitionedKv[]; setDown(down: boolean): void } {
    const views = [new PartitionedKv(this.buckets.leader), new PartitionedKv(this.buckets.nodes), new PartitionedKv(this.buckets.assign), new PartitionedKv(this.buckets.placement)];
    return {
      stores: storesOver({ leader: views[0]!, nodes: views[1]!, assign: views[2]!, placement: views[3]! }),
      views,
      setDown: (down) => views.forEach((v) => (v.down = down)),
    };
  }
}

export function staticCatalog(tenants: readonly TenantSpec[]): CatalogSource & { set(t: readonly TenantSpec[]): void } {
  const listeners = new Set<(c: Catalog) => void>();
  let current = catalogOf(tenants);
  return {
    watch: async (cb) => {
      listeners.add(cb);
      cb(current);
      return () => listeners.delete(cb);
    },
    set: (t) => {
      current = catalogOf(t);
      for (const l of listeners) l(current);
    },
  };
}

export const tenant = (name: string, tables: Record<string, number>): TenantSpec =>
  parseTenantSpec({ name, tables: Object.entries(tables).map(([t, shards]) => ({ name: t, shards, columns: [{ name: "price", type: "float64" }] })) });

export function heartbeat(nodeId: string, state: NodePhase = "running", capacityShards = 0): HeartbeatInfo {
  return { nodeId, address: `${nodeId}:8080`, softwareVersion: "test", sentAtMicros: 0, capacityShards, state, clickhouse: "", shards: [] };
}

export type HostCall = { op: "start"; key: string; leaseRevision: number } | { op: "stop"; key: string };

/** Records calls; `failStarts` makes start of those keys fail. */
export class FakeHost implements ShardHost {
  readonly calls: HostCall[] = [];
  readonly running = new Map<string, number>();
  readonly failStarts = new Set<string>();
  async start(shard: ShardRef, leaseRevision: number): Promise<void> {
    const key = shardKey(shard);
    this.calls.push({ op: "start", key, leaseRevision });
    if (this.failStarts.has(key)) throw new Error(`cannot start ${key} (test)`);
    if (this.running.has(key)) throw new Error(`${key} started twice without a stop`);
    this.running.set(key, leaseRevision);
  }
  async stop(shard: ShardRef): Promise<void> {
    const key = shardKey(shard);
    this.calls.push({ op: "stop", key });
    this.running.delete(key);
  }
  status(): ShardStatus[] {
    return [...this.running].map(([key, rev]) => {
      const [tenant, table, bucket] = key.split(".");
      return shardStatus({ tenant: tenant!, table: table!, bucket: Number(bucket) }, "live", { leaseRevision: rev, appliedLsn: 10, persistedLsn: 5 });
    });
  }
}
