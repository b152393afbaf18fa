// TableSource adapters: `shardHostSource` reads a node's catalog and shard host
// (what production wires), `staticSource` serves plain HotTables (tests, bench).
import type { TableSpec } from "../../protocols/tablespec.js";
import type { Catalog } from "../catalog.js";
import type { HotTable } from "../hotset/index.js";
import type { HotShard, TableSource } from "./source.js";

/** What the engine needs of a node's shard host (LocalShardHost satisfies it). */
export interface ShardHostLike {
  all(): readonly {
    readonly shard: { readonly tenant: string; readonly table: string; readonly bucket: number };
    readonly runtime: ShardRuntimeLike;
  }[];
}

/** What the engine reads of one shard runtime. */
export interface ShardRuntimeLike {
  readonly table: HotTable;
  /** e.g. "running.live", "recovering", "running.replaying", "failed". */
  readonly state: string;
  readonly stats: { readonly appliedLsn: number };
  waitForLsn(lsn: number, timeoutMs: number): Promise<void>;
  /** The shard's last LSN in the WAL now (what "caught up" means). */
  lastLsn(): Promise<number>;
}

/** Serving and caught up: replayed to the WAL's end ("running.snapshotting" still applies and answers). */
export const isLiveState = (state: string): boolean => /running\.(live|snapshotting)/.test(state);

/** A runtime's readiness for the completeness notes. */
export async function readinessOf(r: ShardRuntimeLike): Promise<{ kind: "live" | "lagging"; why: string }> {
  if (isLiveState(r.state)) return { kind: "live", why: "" };
  const applied = r.stats.appliedLsn;
  if (r.state === "failed") return { kind: "lagging", why: `failed (applied LSN ${applied})` };
  const last = await r.lastLsn().catch(() => undefined);
  return { kind: "lagging", why: `${r.state.replace(/^running\./, "")} at LSN ${applied} of ${last ?? "unknown"}` };
}

/** A node's tables: specs from its catalog, hot shards from its shard host. */
export function shardHostSource(catalog: () => Catalog, host: ShardHostLike): TableSource {
  return {
    spec: (tenant, table) => catalog().get(tenant)?.get(table),
    tables: (tenant) => [...(catalog().get(tenant)?.keys() ?? [])],
    shards: (tenant, table) =>
      host
        .all()
        .filter((h) => h.shard.tenant === tenant && h.shard.table === table)
        .map((h): HotShard => ({
          bucket: h.shard.bucket,
          // Read when the rows are read: a shard recovering now swaps in its snapshot's table once loaded.
          get table() {
            return h.runtime.table;
          },
          waitForLsn: (lsn, ms) => h.runtime.waitForLsn(lsn, ms), readiness: () => readinessOf(h.runtime) })),
  };
}

/** Fixed tables: tenant -> table -> { spec, shards }. */
export function staticSource(tables: ReadonlyMap<string, ReadonlyMap<string, { readonly spec: TableSpec; readonly shards: readonly HotShard[] }>>): TableSource {
  return {
    spec: (tenant, table) => tables.get(tenant)?.get(table)?.spec,
    tables: (tenant) => [...(tables.get(tenant)?.keys() ?? [])],
    shards: (tenant, table) => tables.get(tenant)?.get(table)?.shards ?? [],
  };
}
