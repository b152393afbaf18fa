// Shard identity in the control plane: `(tenant, table, bucket)` and its key in
// px_assign, `<tenant>.<table>.<bucket>`. The desired shard set is derived from
// the catalog (every table has `shards` buckets).
import type { Catalog } from "../catalog.js";

export interface ShardRef {
  readonly tenant: string;
  readonly table: string;
  readonly bucket: number;
}

export const shardKey = (s: ShardRef): string => `${s.tenant}.${s.table}.${s.bucket}`;

/** Parses `<tenant>.<table>.<bucket>`; undefined for other keys (e.g. the `_leader` marker). */
export function parseShardKey(key: string): ShardRef | undefined {
  const parts = key.split(".");
  if (parts.length !== 3) return undefined;
  const [tenant, table, b] = parts as [string, string, string];
  if (!/^[a-z][a-z0-9_]*$/.test(tenant) || !/^[a-z][a-z0-9_]*$/.test(table) || !/^(0|[1-9][0-9]*)$/.test(b)) return undefined;
  return { tenant, table, bucket: Number(b) };
}

/** Every shard the catalog asks for, sorted by key. */
export function shardsOfCatalog(catalog: Catalog): ShardRef[] {
  const out: ShardRef[] = [];
  for (const [tenant, tables] of catalog) {
    for (const [table, spec] of tables) {
      for (let bucket = 0; bucket < spec.shards; bucket++) out.push({ tenant, table, bucket });
    }
  }
  return out.sort((a, b) => (shardKey(a) < shardKey(b) ? -1 : shardKey(a) > shardKey(b) ? 1 : 0));
}
