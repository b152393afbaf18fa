// EXPLAIN: the plan of a query without running it. The compiled JSON query,
// then per table the ClickHouse statement's WHERE (all of this node's shards
// that reach below their horizon, OR-ed) and per shard where it is answered:
// this node's hot set (rows with ts >= H or LSN > P) and ClickHouse under the
// seam rule (its own condition, with its P and H), or another node when the
// shard is not hosted here.
import { parseQuery } from "../../../protocols/query.js";
import type { Catalog } from "../../catalog.js";
import { qualifiedTable } from "../../clickhouse/index.js";
import { seamWhereAll } from "../../query/index.js";
import type { ColdSlice } from "../../query/index.js";
import type { ShardAddress } from "../../../protocols/subjects.js";

/** What EXPLAIN reads of the node's shard host (LocalShardHost). */
export interface ExplainShards {
  all(): readonly { readonly shard: ShardAddress; readonly runtime: { readonly state: string; readonly stats: { readonly rows: number; readonly persistedLsn: number; readonly horizonMicros: number } } }[];
}

export function explainPlan(tenant: string, query: Record<string, unknown>, catalog: Catalog, shards: ExplainShards, hasCold: boolean): Record<string, unknown> {
  const q = parseQuery(query);
  const names = [q.table, ...("right" in q ? [q.right.table] : [])].map((t) => t.split(".").pop()!);
  const tables = [...new Set(names)].map((name) => {
    const spec = catalog.get(tenant)?.get(name);
    if (spec === undefined) return { table: name, error: `tenant ${tenant} has no table ${name}` };
    const cold: ColdSlice[] = [];
    const parts = Array.from({ length: spec.shards }, (_, bucket) => {
      const h = shards.all().find((x) => x.shard.tenant === tenant && x.shard.table === name && x.shard.bucket === bucket);
      if (h === undefined) return { bucket, where: "another node (the query fans out to the shard's owner)" };
      const s = h.runtime.stats;
      const slice = { tenant, spec, shard: bucket, persistedLsn: s.persistedLsn, horizonMicros: s.horizonMicros, symbols: q.symbols };
      const coldPart = hasCold && q.t0 < s.horizonMicros;
      if (coldPart) cold.push(slice);
      return {
        bucket,
        where: "this node",
        state: h.runtime.state,
        hotRows: s.rows,
        persistedLsn: s.persistedLsn,
        horizonMicros: s.horizonMicros,
        hot: `rows with ${spec.timeColumn} in [${Math.max(q.t0, s.horizonMicros)}, ${q.t1}) or LSN > ${s.persistedLsn}`,
        clickhouse: coldPart ? seamWhereAll([slice], q.t0, q.t1) : null,
      };
    });
    // What is sent: one statement per kind of read for all of this node's shards, their conditions OR-ed.
    const clickhouse = cold.length === 0 ? null : `SELECT ... FROM ${qualifiedTable(tenant, name)} WHERE ${seamWhereAll(cold, q.t0, q.t1)}`;
    return { table: name, shards: spec.shards, clickhouse, parts };
  });
  return { query, op: q.op, tables, ...(hasCold ? {} : { note: "no ClickHouse configured: answers come from RAM only" }) };
}
