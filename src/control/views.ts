// What pxctl shows, built from what the KV buckets hold (pure): the leader,
// nodes with heartbeat age, shards with owner and the owner's report of them.
import type { ShardStatus } from "../../protocols/shardstatus.js";
import type { TenantSpec } from "../../protocols/tablespec.js";
import type { Assignment } from "./assignments.js";
import type { StoredHeartbeat } from "./heartbeat.js";
import type { StoredLease } from "./lease.js";
import { parseShardKey, shardKey } from "./shard.js";

export interface LeaderView {
  readonly holder: string;
  readonly term: number;
  readonly revision: number;
  readonly leaseMs: number;
  /** Since the holder's last renewal (by the NATS server's clock). */
  readonly renewedAgoMs: number | undefined;
}

export interface NodeView {
  readonly id: string;
  readonly address: string;
  readonly version: string;
  readonly state: string;
  readonly capacity: number;
  readonly heartbeatAgeMs: number;
  readonly shards: number;
  readonly clickhouse: string;
}

/** The figures of the owner's report that `pxctl status` shows; undefined when there is no report. */
type ReportedFigures = { readonly [K in "appliedLsn" | "persistedLsn" | "tPersistedMicros" | "lagRecords" | "rows"]: ShardStatus[K] | undefined };

/** A shard's assignment with its owner's report (ShardStatus). */
export interface ShardView extends Pick<ShardStatus, "tenant" | "table" | "bucket">, ReportedFigures {
  readonly shard: string;
  readonly owner: string;
  /** The assignment's revision (the report's own is compared with it: stale-lease). */
  readonly leaseRevision: number;
  readonly term: number;
  /** The owner's report, or why there is none: unassigned, owner-down, pending, stale-lease. */
  readonly state: string;
  /** The sink's state (degraded while ClickHouse keeps failing), its time lag and the lag remediation step; undefined without a sink. */
  readonly sinkState: string | undefined;
  readonly lagMs: number | undefined;
  readonly lagStep: number | undefined;
}

export interface TenantView {
  readonly name: string;
  readonly tables: number;
  readonly shards: number;
  readonly revision: number;
}

export interface TableView {
  readonly tenant: string;
  readonly table: string;
  readonly version: number;
  readonly shards: number;
  readonly columns: string;
  readonly hotSeconds: number;
}

export interface ClusterState {
  readonly nowMs: number;
  readonly lease: StoredLease | undefined;
  readonly leaseCreatedMs: number | undefined;
  readonly heartbeats: ReadonlyMap<string, StoredHeartbeat>;
  readonly assignments: ReadonlyMap<string, Assignment>;
  readonly tenants: ReadonlyMap<string, { readonly spec: TenantSpec; readonly revision: number }>;
}

export interface StatusView {
  readonly leader: LeaderView | undefined;
  readonly nodes: readonly NodeView[];
  readonly shards: readonly ShardView[];
}

export function leaderView(s: ClusterState): LeaderView | undefined {
  const l = s.lease;
  if (!l || l.record.holder === "") return undefined;
  return {
    holder: l.record.holder,
    term: l.record.term,
    revision: l.revision,
    leaseMs: l.record.leaseMs,
    renewedAgoMs: s.leaseCreatedMs === undefined ? undefined : Math.max(0, s.nowMs - s.leaseCreatedMs),
  };
}

export function nodeViews(s: ClusterState): NodeView[] {
  const owned = new Map<string, number>();
  for (const a of s.assignments.values()) owned.set(a.node, (owned.get(a.node) ?? 0) + 1);
  return [...s.heartbeats.values()]
    .map((h) => ({
      id: h.info.nodeId,
      address: h.info.address,
      version: h.info.softwareVersion,
      state: h.info.state,
      capacity: h.info.capacityShards,
      heartbeatAgeMs: Math.max(0, s.nowMs - h.createdMs),
      shards: owned.get(h.info.nodeId) ?? 0,
      clickhouse: h.info.clickhouse,
    }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

export function shardViews(s: ClusterState): ShardView[] {
  const keys = new Set(s.assignments.keys());
  // Shards the spec asks for but the leader has not placed yet show as unassigned.
  for (const { spec } of s.tenants.values()) {
    for (const t of spec.tables) for (let b = 0; b < t.shards; b++) keys.add(shardKey({ tenant: spec.name, table: t.name, bucket: b }));
  }
  const out: ShardView[] = [];
  for (const key of [...keys].sort()) {
    const ref = parseShardKey(key);
    if (!ref) continue;
    const a = s.assignments.get(key);
    const hb = a ? s.heartbeats.get(a.node) : undefined;
    const rep = hb?.info.shards.find((x) => shardKey(x) === key);
    let state: string;
    if (!a) state = "unassigned";
    else if (!hb) state = "owner-down";
    else if (!rep) state = "pending";
    else if (rep.leaseRevision > 0 && rep.leaseRevision < a.leaseRevision) state = "stale-lease";
    else state = rep.state;
    out.push({
      shard: key,
      ...ref,
      owner: a?.node ?? "",
      leaseRevision: a?.leaseRevision ?? 0,
      term: a?.term ?? 0,
      state,
      appliedLsn: rep?.appliedLsn,
      persistedLsn: rep?.persistedLsn,
      tPersistedMicros: rep?.tPersistedMicros,
      lagRecords: rep?.lagRecords,
      rows: rep?.rows,
      sinkState: rep?.sinkState,
      lagMs: rep?.lagMs,
      lagStep: rep?.lagStep,
    });
  }
  return out;
}

export function statusView(s: ClusterState): StatusView {
  return { leader: leaderView(s), nodes: nodeViews(s), shards: shardViews(s) };
}

export function tenantViews(s: ClusterState): TenantView[] {
  return [...s.tenants.values()]
    .map(({ spec, revision }) => ({ name: spec.name, tables: spec.tables.length, shards: spec.tables.reduce((n, t) => n + t.shards, 0), revision }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

export function tableViews(s: ClusterState): TableView[] {
  const out: TableView[] = [];
  for (const { spec } of s.tenants.values()) {
    for (const t of spec.tables) {
      out.push({
        tenant: spec.name,
        table: t.name,
        version: t.version,
        shards: t.shards,
        columns: [t.symbolColumn + ":symbol", t.timeColumn + ":time", ...t.columns.map((c) => `${c.name}:${c.type}`)].join(" "),
        hotSeconds: t.retention.hotSeconds,
      });
    }
  }
  return out.sort((a, b) => (`${a.tenant}.${a.table}` < `${b.tenant}.${b.table}` ? -1 : 1));
}
