// Control verbs (px.ctl.<verb>) as plain functions over a ControlBackend:
// status, get, describe, apply, move (a shard to another node: move.ts). The server (ctlserver.ts) decodes requests and
// encodes replies; errors carry a code pxctl turns into an exit status.
import { SpecError, parseClusterSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec, TableSpec, TenantSpec } from "../../protocols/tablespec.js";
import { MetadataConflictError } from "./metadata.js";
import type { MetadataStore, StoredTenant } from "./metadata.js";
import type { Assignment } from "./assignments.js";
import type { HeartbeatInfo } from "./heartbeat.js";
import { diffClusterSpec } from "./specdiff.js";
import { planFeed } from "../feed/index.js";
import { stampFunctions } from "../udf/index.js";
import { evolveClusterSpec } from "./specevolve.js";
import type { SpecDiff } from "./specdiff.js";
import type { ControlStores } from "./stores.js";
import { nodeViews, shardViews, statusView, tableViews, tenantViews } from "./views.js";
import type { ClusterState, NodeView, ShardView, StatusView, TableView, TenantView } from "./views.js";
import { ControlError } from "./errors.js";
import { moveShard } from "./move.js";
import type { OverrideStore } from "./overrides.js";
import { MOVE_VERB } from "../../protocols/placement.js";

export const CONTROL_VERBS = ["status", "get", "describe", "apply", MOVE_VERB] as const;
export const GET_KINDS = ["tenants", "tables", "shards", "nodes"] as const;
export const DESCRIBE_KINDS = ["shard", "table", "node", "tenant"] as const;
export type GetKind = (typeof GET_KINDS)[number];
export type DescribeKind = (typeof DESCRIBE_KINDS)[number];

export { ControlError } from "./errors.js";
export type { ControlErrorCode } from "./errors.js";

export interface ApplyRequest {
  /** The spec document as parsed from YAML/JSON (validated here again). */
  readonly spec: unknown;
  readonly dryRun?: boolean;
  /** Tenant revisions the caller's diff was made against; a tenant changed since is a conflict. */
  readonly expectedRevisions?: Readonly<Record<string, number>>;
}

export interface ApplyReply {
  readonly diff: SpecDiff;
  readonly applied: boolean;
  /** Revisions of the tenants in the spec: before the write on a dry run, after it otherwise. */
  readonly revisions: Record<string, number>;
}

export type GetReply = { readonly kind: "tenants"; readonly items: TenantView[] } | { readonly kind: "tables"; readonly items: TableView[] } | { readonly kind: "shards"; readonly items: ShardView[] } | { readonly kind: "nodes"; readonly items: NodeView[] };

export type DescribeReply =
  | { readonly kind: "shard"; readonly shard: ShardView; readonly assignment: Assignment | undefined; readonly owner: NodeView | undefined }
  | { readonly kind: "table"; readonly table: TableView; readonly spec: TableSpec; readonly shards: ShardView[] }
  | { readonly kind: "node"; readonly node: NodeView; readonly heartbeat: HeartbeatInfo; readonly shards: ShardView[] }
  | { readonly kind: "tenant"; readonly tenant: TenantView; readonly spec: TenantSpec };

export interface ControlBackend {
  readState(): Promise<ClusterState>;
  tenants(): Promise<Map<string, StoredTenant>>;
  apply(spec: ClusterSpec, expected: ReadonlyMap<string, number>): Promise<Map<string, number>>;
  /** Placement overrides (px_placement); undefined on a standalone node, which has no other node to move shards to. */
  readonly overrides?: OverrideStore;
  /** A node counts as live for a move while its heartbeat is younger than this (the controller's node timeout). */
  readonly liveWithinMs?: number;
  /** A node live for less than this is settling: a move picks it only when no settled node can take the shard (placement's settle period). */
  readonly settleMs?: number;
  readonly nowMs?: () => number;
  /** Where a placement change is written down for people (`pxctl events`); best effort, never fails the request. */
  readonly record?: (e: { readonly kind: string; readonly message: string }) => void;
}

export function controlBackend(metadata: MetadataStore, stores: ControlStores, nowMs: () => number = Date.now, liveWithinMs = 5_000, record?: ControlBackend["record"], settleMs = 0): ControlBackend {
  return {
    ...(record === undefined ? {} : { record }),
    overrides: stores.overrides,
    liveWithinMs,
    settleMs,
    nowMs,
    readState: async () => {
      const [lease, heartbeats, assignments, tenants] = await Promise.all([stores.lease.read(), stores.heartbeats.read(), stores.assignments.read(), metadata.snapshot().then((s) => s.tenants)]);
      return { nowMs: nowMs(), lease, leaseCreatedMs: lease?.createdMs, heartbeats, assignments, tenants };
    },
    // The compare-and-set token must come from the stream leader, not a possibly lagging replica.
    tenants: async () => (await metadata.snapshot()).tenants,
    apply: (spec, expected) => metadata.apply(spec, expected),
  };
}

/** Who asked for a move, as the event names it: lag remediation or an operator. */
const moveRequester = (b: Record<string, unknown>): string => (b.by === "remediation" ? `lag remediation on ${String(b.from)}` : "pxctl move shard");

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function oneOf<T extends string>(what: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
  throw new ControlError("INVALID_ARGUMENT", `${what} must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
}

async function apply(backend: ControlBackend, req: ApplyRequest): Promise<ApplyReply> {
  let spec: ClusterSpec;
  try {
    spec = parseClusterSpec(req.spec);
  } catch (e) {
    if (e instanceof SpecError) throw new ControlError("INVALID_ARGUMENT", e.message, { cause: e });
    throw e;
  }
  const current = await backend.tenants();
  const currentSpecs = new Map([...current].map(([k, v]) => [k, v.spec]));
  // Refused changes fail the dry run and the apply alike, before anything is written.
  const evolved = evolveClusterSpec(currentSpecs, spec);
  if (evolved.refused.length > 0) {
    throw new ControlError("INVALID_ARGUMENT", `apply refused, nothing was changed:\n${evolved.refused.map((r) => `  ${r}`).join("\n")}`);
  }
  spec = evolved.spec;
  checkFeeds(spec);
  // Each user-defined function is loaded into a sandbox once: a bad one is refused by name before anything is written.
  const fns = await stampFunctions(currentSpecs, spec);
  if (fns.refused.length > 0) throw new ControlError("INVALID_ARGUMENT", `apply refused, nothing was changed:\n${fns.refused.map((r) => `  ${r}`).join("\n")}`);
  spec = fns.spec;
  const diff = diffClusterSpec(currentSpecs, spec);
  const revisions: Record<string, number> = {};
  for (const t of spec.tenants) revisions[t.name] = current.get(t.name)?.revision ?? 0;
  if (req.dryRun || diff.changedTenants.length === 0) return { diff, applied: false, revisions };
  const changed = new Set(diff.changedTenants);
  const expected = new Map(spec.tenants.map((t) => [t.name, req.expectedRevisions?.[t.name] ?? revisions[t.name] ?? 0]));
  try {
    const written = await backend.apply({ tenants: spec.tenants.filter((t) => changed.has(t.name)) }, expected);
    for (const [name, rev] of written) revisions[name] = rev;
  } catch (e) {
    if (e instanceof MetadataConflictError) throw new ControlError("CONFLICT", e.message, { cause: e });
    throw e;
  }
  return { diff, applied: true, revisions };
}

/** Every feed's query must run on its tenant's tables as applied: refused by name before anything is written. */
function checkFeeds(spec: ClusterSpec): void {
  const refused: string[] = [];
  for (const t of spec.tenants) {
    const tables = new Map(t.tables.map((x) => [x.name, x]));
    for (const f of t.feeds ?? []) {
      try {
        planFeed(t.name, f.lateness === undefined ? { query: f.query } : { query: f.query, lateness: f.lateness }, (name) => tables.get(name), () => [...tables.keys()]);
      } catch (e) {
        refused.push(`tenant ${t.name} feed ${f.name}: ${(e as Error).message}`);
      }
    }
  }
  if (refused.length > 0) throw new ControlError("INVALID_ARGUMENT", `apply refused, nothing was changed:\n${refused.map((r) => `  ${r}`).join("\n")}`);
}

function describe(state: ClusterState, kind: DescribeKind, name: string): DescribeReply {
  const notFound = (what: string, known: string[]): never => {
    throw new ControlError("NOT_FOUND", `${what} ${name} does not exist (known: ${known.slice(0, 20).join(", ") || "none"})`);
  };
  const shards = shardViews(state);
  const nodes = nodeViews(state);
  switch (kind) {
    case "shard": {
      const shard = shards.find((s) => s.shard === name) ?? notFound("shard", shards.map((s) => s.shard));
      return { kind, shard, assignment: state.assignments.get(name), owner: nodes.find((n) => n.id === shard.owner) };
    }
    case "node": {
      const node = nodes.find((n) => n.id === name) ?? notFound("node", nodes.map((n) => n.id));
      return { kind, node, heartbeat: state.heartbeats.get(name)!.info, shards: shards.filter((s) => s.owner === name) };
    }
    case "table": {
      const tables = tableViews(state);
      const matches = tables.filter((t) => `${t.tenant}.${t.table}` === name || (!name.includes(".") && t.table === name));
      if (matches.length > 1) throw new ControlError("INVALID_ARGUMENT", `table ${name} exists in several tenants (${matches.map((t) => t.tenant).join(", ")}); name it as <tenant>.<table>`);
      const table = matches[0] ?? notFound("table", tables.map((t) => `${t.tenant}.${t.table}`));
      const spec = state.tenants.get(table.tenant)!.spec.tables.find((t) => t.name === table.table)!;
      return { kind, table, spec, shards: shards.filter((s) => s.tenant === table.tenant && s.table === table.table) };
    }
    case "tenant": {
      const tenant = tenantViews(state).find((t) => t.name === name) ?? notFound("tenant", [...state.tenants.keys()]);
      return { kind, tenant, spec: state.tenants.get(name)!.spec };
    }
  }
}

/** Runs one verb; throws ControlError for anything the caller did wrong. */
export async function handleControl(verb: string, body: unknown, backend: ControlBackend): Promise<unknown> {
  const b = isObject(body) ? body : {};
  switch (verb) {
    case "status":
      return statusView(await backend.readState()) satisfies StatusView;
    case "get": {
      const kind = oneOf("get: kind", b.kind, GET_KINDS);
      const s = await backend.readState();
      const items = kind === "tenants" ? tenantViews(s) : kind === "tables" ? tableViews(s) : kind === "shards" ? shardViews(s) : nodeViews(s);
      return { kind, items } as GetReply;
    }
    case "describe": {
      const kind = oneOf("describe: kind", b.kind, DESCRIBE_KINDS);
      if (typeof b.name !== "string" || b.name === "") throw new ControlError("INVALID_ARGUMENT", `describe ${kind}: name the ${kind} to describe`);
      return describe(await backend.readState(), kind, b.name);
    }
    case "apply":
      if (!("spec" in b)) throw new ControlError("INVALID_ARGUMENT", "apply: the request has no spec");
      return apply(backend, b as unknown as ApplyRequest);
    case MOVE_VERB: {
      if (backend.overrides === undefined) throw new ControlError("UNSUPPORTED", "move: this node runs standalone (--shards all): there is no other node to move a shard to; run nodes with --shards assigned");
      const reply = await moveShard(await backend.readState(), backend.overrides, b, backend.liveWithinMs ?? 5_000, (backend.nowMs ?? Date.now)(), backend.settleMs ?? 0);
      // Only a change is an event: clearing an override that is not there changed nothing.
      if (reply.changed) backend.record?.({ kind: reply.to === "" ? "shard.move_cleared" : "shard.move", message: `${moveRequester(b)}: ${reply.message}` });
      return reply;
    }
    default:
      throw new ControlError("UNSUPPORTED", `verb ${verb} is not supported by this node (supported: ${CONTROL_VERBS.join(", ")})`);
  }
}
