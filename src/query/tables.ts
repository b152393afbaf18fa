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
    readonly runtime: { readonly table: HotTable; waitForLsn(lsn: number, timeoutMs: number): Promise<void> };
  }[];
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
        .map((h): HotShard => ({ bucket: h.shard.bucket, table: h.runtime.table, waitForLsn: (lsn, ms) => h.runtime.waitForLsn(lsn, ms) })),
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
