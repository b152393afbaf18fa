// Compaction holds across the cluster. A subscription or a materialized feed
// needs the WAL from some LSN on; the node serving it held only its own
// compaction, so a shard hosted (and compacted) by another node could be
// purged under it. Every node now puts (when it changes, and at least every
// third of the TTL) the lowest LSN its
// subscriptions and feeds need of each table into KV px_holds
// (`<node>.<tenant>.<table>`), deletes the key when nothing needs the table,
// and watches the bucket: its compaction also keeps what the other nodes need.
// A node that dies stops refreshing: its holds count until `ttlMs` after the
// last put it was seen making (the bucket's max age removes them on the
// server too), so a dead node cannot hold the WAL for ever.
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { KV_HOLDS } from "../../protocols/subjects.js";
import type { ShardAddress } from "../../protocols/subjects.js";
import type { Catalog } from "../catalog.js";
import { storeLimits } from "../config/limits.js";

export interface ClusterHoldsOptions {
  readonly nc: NatsConnection;
  readonly nodeId: string;
  readonly replicas: number;
  readonly catalog: () => Catalog;
  /** What this node's subscriptions and feeds need of a table (LSNs). */
  readonly local: (tenant: string, table: string) => readonly number[];
  readonly everyMs?: number;
  readonly ttlMs?: number;
  readonly log?: (line: string) => void;
  readonly now?: () => number;
}

export interface ClusterHolds {
  /** What the other nodes need of the shard's table (LSNs); compaction keeps the WAL from the lowest. */
  holds(shard: ShardAddress): number[];
  /** Stops refreshing and deletes this node's holds. */
  stop(): Promise<void>;
}

export const holdKey = (node: string, tenant: string, table: string): string => `${node}.${tenant}.${table}`;

export async function startClusterHolds(o: ClusterHoldsOptions): Promise<ClusterHolds> {
  const every = o.everyMs ?? 2_000;
  const ttl = o.ttlMs ?? 15_000;
  const now = o.now ?? Date.now;
  const kv: KV = await new Kvm(o.nc).create(KV_HOLDS, { history: 1, replicas: o.replicas, ttl, max_bytes: storeLimits().controlBucketMaxBytes });
  // Other nodes' holds as last seen: key -> LSN and when (this node's clock).
  const seen = new Map<string, { readonly need: number; readonly atMs: number }>();
  let stopped = false;
  const watch = async (): Promise<void> => {
    while (!stopped) {
      try {
        const w = await kv.watch({ key: ">" });
        for await (const e of w) {
          if (stopped) break;
          if (e.key.startsWith(`${o.nodeId}.`)) continue;
          const need = e.operation === "PUT" ? Number(e.string()) : NaN;
          if (Number.isSafeInteger(need) && need > 0) seen.set(e.key, { need, atMs: now() });
          else seen.delete(e.key);
        }
      } catch (err) {
        o.log?.(`compaction holds: the px_holds watch ended (${(err as Error).message}); watching again`);
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 1_000));
    }
  };
  void watch();
  // This node's keys: the value last put and when. An unchanged hold is put again only a third of the TTL after its
  // last put (the refresh that keeps it counting), not every tick.
  const mine = new Map<string, { value: string; atMs: number }>();
  const publish = async (): Promise<void> => {
    const catalog = o.catalog();
    const live = new Set<string>();
    const t = now();
    for (const [tenant, tables] of catalog) {
      for (const table of tables.keys()) {
        const needs = o.local(tenant, table);
        if (needs.length === 0) continue;
        const key = holdKey(o.nodeId, tenant, table);
        live.add(key);
        const value = String(Math.min(...needs));
        const last = mine.get(key);
        if (last !== undefined && last.value === value && t - last.atMs < ttl / 3) continue;
        await kv.put(key, value);
        mine.set(key, { value, atMs: t });
      }
    }
    for (const key of [...mine.keys()]) {
      if (live.has(key)) continue;
      await kv.delete(key);
      mine.delete(key);
    }
  };
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(publish).catch((e: unknown) => o.log?.(`compaction holds: cannot put this node's holds into px_holds (${(e as Error).message}); other nodes may compact what its subscriptions need`));
  }, every);
  timer.unref();
  return {
    holds(shard: ShardAddress): number[] {
      const out: number[] = [];
      const t = now();
      for (const [key, h] of seen) {
        // Node ids, tenant and table names hold no dots: the key is exactly node.tenant.table.
        const [, tenant, table] = key.split(".");
        if (tenant === shard.tenant && table === shard.table && t - h.atMs <= ttl) out.push(h.need);
      }
      return out;
    },
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await running;
      for (const key of mine.keys()) await kv.delete(key).catch(() => {});
    },
  };
}
