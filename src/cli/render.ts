// pxctl output: aligned tables for people, JSON or YAML for scripts (pure).
import { stringify } from "yaml";
import type { CredsInfo, TokenInfo } from "../auth/index.js";
import { formatDiff } from "../control/index.js";
import type { ApplyReply, DescribeReply, GetReply, NodeView, ShardView, StatusView, TableView, TenantView } from "../control/index.js";
import { LAG_STEP_NAMES } from "../../protocols/shardstatus.js";
import type { OutputFormat } from "./args.js";

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return "(none)";
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

export const ago = (ms: number | undefined): string => (ms === undefined ? "-" : ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : ms < 3_600_000 ? `${Math.round(ms / 1000)}s` : `${(ms / 3_600_000).toFixed(1)}h`);
const num = (n: number | undefined): string => (n === undefined ? "-" : String(n));
const micros = (us: number | undefined): string => (!us ? "-" : new Date(Math.floor(us / 1000)).toISOString().replace(".000Z", "Z"));

export function nodesTable(nodes: readonly NodeView[]): string {
  return table(
    ["NODE", "ADDRESS", "STATE", "HEARTBEAT", "SHARDS", "VERSION", "CLICKHOUSE"],
    nodes.map((n) => [n.id, n.address, n.state, `${ago(n.heartbeatAgeMs)} ago`, String(n.shards), n.version, n.clickhouse || "-"]),
  );
}

export function shardsTable(shards: readonly ShardView[]): string {
  return table(
    ["SHARD", "OWNER", "STATE", "LEASE", "APPLIED", "P", "T_PERSISTED", "LAG", "SINK", "SINK_LAG", "REMEDIATION"],
    shards.map((s) => [
      s.shard,
      s.owner || "-",
      s.state,
      s.leaseRevision ? String(s.leaseRevision) : "-",
      num(s.appliedLsn),
      num(s.persistedLsn),
      micros(s.tPersistedMicros),
      num(s.lagRecords),
      s.sinkState ?? "-",
      s.sinkState === undefined ? "-" : ago(s.lagMs),
      s.lagStep === undefined ? "-" : lagStepText(s.lagStep),
    ]),
  );
}

/** "none", or the step's number and name ("2 hold-eviction"). */
const lagStepText = (step: number): string => (step === 0 ? "none" : `${step} ${LAG_STEP_NAMES[step] ?? "unknown"}`);

export const tenantsTable = (items: readonly TenantView[]): string => table(["TENANT", "TABLES", "SHARDS", "REVISION"], items.map((t) => [t.name, String(t.tables), String(t.shards), String(t.revision)]));

export const tablesTable = (items: readonly TableView[]): string =>
  table(["TENANT", "TABLE", "VERSION", "SHARDS", "HOT", "COLUMNS"], items.map((t) => [t.tenant, t.table, String(t.version), String(t.shards), `${t.hotSeconds}s`, t.columns]));

export function statusText(s: StatusView): string {
  const leader = s.leader ? `leader: ${s.leader.holder} (term ${s.leader.term}, renewed ${ago(s.leader.renewedAgoMs)} ago)` : "leader: none (no controller holds the lease)";
  return [leader, "", nodesTable(s.nodes), "", shardsTable(s.shards)].join("\n");
}

export function getText(r: GetReply): string {
  switch (r.kind) {
    case "tenants":
      return tenantsTable(r.items);
    case "tables":
      return tablesTable(r.items);
    case "shards":
      return shardsTable(r.items);
    case "nodes":
      return nodesTable(r.items);
  }
}

/** describe: a summary table, then the details as YAML (readable and complete). */
export function describeText(r: DescribeReply): string {
  switch (r.kind) {
    case "shard":
      return [shardsTable([r.shard]), "", stringify({ assignment: r.assignment ?? null, owner: r.owner ?? null }).trimEnd()].join("\n");
    case "table":
      return [tablesTable([r.table]), "", stringify({ spec: r.spec }).trimEnd(), "", shardsTable(r.shards)].join("\n");
    case "node":
      return [nodesTable([r.node]), "", shardsTable(r.shards)].join("\n");
    case "tenant":
      return [tenantsTable([r.tenant]), "", stringify({ spec: r.spec }).trimEnd()].join("\n");
  }
}

export function applyText(r: ApplyReply, dryRun: boolean): string {
  const lines = formatDiff(r.diff);
  if (r.diff.changes.length === 0) return "no changes: the cluster already has this spec";
  if (dryRun) return [...lines, "", "dry run: nothing applied"].join("\n");
  const revs = Object.entries(r.revisions).map(([t, rev]) => `${t}@${rev}`).join(", ");
  return [...lines, "", r.applied ? `applied (${revs})` : "not applied"].join("\n");
}

export function structured(value: unknown, format: Exclude<OutputFormat, "table">): string {
  return format === "json" ? JSON.stringify(value, null, 2) : stringify(value).trimEnd();
}

const iso = (ms: number | null): string => (ms === null ? "-" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z"));

export function credsTable(list: readonly CredsInfo[], nowMs: number): string {
  return table(
    ["ID", "TENANT", "ROLE", "TABLES", "STATE", "CREATED", "EXPIRES", "PUBLIC KEY", "NOTE"],
    list.map((c) => [
      c.id,
      c.tenant ?? "-",
      c.role,
      c.tables?.join(",") ?? "*",
      c.revokedAtMs !== null ? "revoked" : c.expiresAtMs !== null && c.expiresAtMs <= nowMs ? "expired" : "active",
      iso(c.createdAtMs),
      iso(c.expiresAtMs),
      c.publicKey,
      c.note,
    ]),
  );
}

export function tokensTable(tokens: readonly TokenInfo[], nowMs: number): string {
  return table(
    ["ID", "TENANT", "ROLE", "TABLES", "STATE", "CREATED", "EXPIRES", "NOTE"],
    tokens.map((t) => [
      `px_${t.id}`,
      t.tenant,
      t.role,
      t.tables === null ? "*" : t.tables.join(","),
      t.revokedAtMs !== null ? "revoked" : t.expiresAtMs !== null && t.expiresAtMs <= nowMs ? "expired" : "active",
      iso(t.createdAtMs),
      iso(t.expiresAtMs),
      t.note,
    ]),
  );
}
