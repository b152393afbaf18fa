// What the gateway's hotBytes and symbols quotas are measured against on this
// node: every `everyMs`, the hot-set bytes and symbol count of each quota'd
// tenant's shards here (per shard: the exchange with the other nodes counts
// each shard once) and, with a symbols quota, the symbols they hold, sent to
// the gateway machine as a `usage` event. Tenants without those quotas are
// skipped (nothing walked for them).
import type { Catalog } from "../../catalog.js";
import { tenantQuotas } from "../../catalog.js";
import { shardUsageKey, symbolKey } from "../../quota/index.js";
import type { ShardUsage, TenantUsage } from "../../quota/index.js";
import type { GatewayEvent } from "../../../actors/gateway.js";
import type { LocalShardHost } from "../shard/host.js";

export function tenantUsage(catalog: Catalog, shards: Pick<LocalShardHost, "all">): Map<string, TenantUsage> {
  const out = new Map<string, { shards: Map<string, ShardUsage>; symbols?: Set<string> }>();
  for (const tenant of catalog.keys()) {
    const q = tenantQuotas(catalog, tenant);
    if (q.hotBytes === undefined && q.symbols === undefined) continue;
    out.set(tenant, q.symbols === undefined ? { shards: new Map() } : { shards: new Map(), symbols: new Set() });
  }
  if (out.size === 0) return out;
  for (const h of shards.all()) {
    const u = out.get(h.shard.tenant);
    if (u === undefined) continue;
    const table = h.runtime.table;
    u.shards.set(shardUsageKey(h.shard.table, h.shard.bucket), { bytes: table.bytes, symbols: table.symbolCount });
    if (u.symbols !== undefined) for (const sym of table.symbols()) u.symbols.add(symbolKey(h.shard.table, sym));
  }
  return out;
}

/** Reports usage to the gateway every `everyMs` until the returned stop is called. */
export function reportUsage(send: (e: GatewayEvent) => void, catalog: () => Catalog, shards: Pick<LocalShardHost, "all">, everyMs = 250): () => void {
  const timer = setInterval(() => {
    const usage = tenantUsage(catalog(), shards);
    if (usage.size > 0) send({ type: "usage", usage });
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
