// What applying a cluster spec would change, per tenant and table (pure). A
// tenant's spec is replaced whole, so tables missing from the file are removed;
// tenants missing from the file are left alone.
import type { ClusterSpec, FeedSpec, FunctionSpec, TableSpec, TenantSpec } from "../../protocols/tablespec.js";

export interface FieldChange {
  readonly path: string;
  readonly from: unknown;
  readonly to: unknown;
}

export type SpecChange =
  | { readonly kind: "tenant.add"; readonly tenant: string; readonly tables: number }
  | { readonly kind: "table.add"; readonly tenant: string; readonly table: string; readonly shards: number; readonly columns: number }
  | { readonly kind: "table.remove"; readonly tenant: string; readonly table: string }
  | { readonly kind: "table.change"; readonly tenant: string; readonly table: string; readonly fields: readonly FieldChange[] }
  | { readonly kind: "feed.add"; readonly tenant: string; readonly feed: string }
  | { readonly kind: "feed.remove"; readonly tenant: string; readonly feed: string }
  | { readonly kind: "feed.change"; readonly tenant: string; readonly feed: string; readonly fields: readonly FieldChange[] }
  | { readonly kind: "function.add"; readonly tenant: string; readonly name: string; readonly version: number; readonly hash: string }
  | { readonly kind: "function.remove"; readonly tenant: string; readonly name: string }
  | { readonly kind: "function.change"; readonly tenant: string; readonly name: string; readonly from: number; readonly to: number; readonly hash: string }
  | { readonly kind: "quotas.change"; readonly tenant: string; readonly fields: readonly FieldChange[] };

export interface SpecDiff {
  readonly changes: readonly SpecChange[];
  /** Tenants whose spec differs (and so would be written). */
  readonly changedTenants: readonly string[];
  /** Consequences a person should know before applying. */
  readonly warnings: readonly string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function diffValues(path: string, a: unknown, b: unknown, out: FieldChange[]): void {
  if (isObject(a) && isObject(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) diffValues(path ? `${path}.${k}` : k, a[k], b[k], out);
    return;
  }
  // Columns are matched by name, so adding one column reads as one change, not a shifted list.
  const named = (v: unknown): v is { name: string }[] => Array.isArray(v) && v.every((e) => isObject(e) && typeof e.name === "string");
  if (named(a) && named(b)) {
    const am = new Map(a.map((e) => [e.name, e]));
    const bm = new Map(b.map((e) => [e.name, e]));
    for (const name of [...new Set([...am.keys(), ...bm.keys()])]) diffValues(`${path}.${name}`, am.get(name), bm.get(name), out);
    if (am.size === bm.size && [...am.keys()].join() !== [...bm.keys()].join()) out.push({ path: `${path}[order]`, from: [...am.keys()], to: [...bm.keys()] });
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, from: a, to: b });
}

export function diffTables(before: TableSpec, after: TableSpec): FieldChange[] {
  const out: FieldChange[] = [];
  diffValues("", before, after, out);
  return out;
}

export function diffClusterSpec(current: ReadonlyMap<string, TenantSpec>, desired: ClusterSpec): SpecDiff {
  const changes: SpecChange[] = [];
  const changedTenants: string[] = [];
  const warnings: string[] = [];
  for (const t of desired.tenants) {
    const before = current.get(t.name);
    const start = changes.length;
    if (!before) changes.push({ kind: "tenant.add", tenant: t.name, tables: t.tables.length });
    const old = new Map((before?.tables ?? []).map((x) => [x.name, x]));
    for (const table of t.tables) {
      const prev = old.get(table.name);
      if (!prev) {
        changes.push({ kind: "table.add", tenant: t.name, table: table.name, shards: table.shards, columns: table.columns.length });
        continue;
      }
      const fields = diffTables(prev, table);
      if (fields.length > 0) changes.push({ kind: "table.change", tenant: t.name, table: table.name, fields });
      // Shard-count changes and column removals are refused before diffing (specevolve.ts).
      const added = table.columns.filter((c) => !prev.columns.some((p) => p.name === c.name));
      if (added.length > 0) {
        warnings.push(`tenant ${t.name} table ${table.name}: adding column(s) ${added.map((c) => c.name).join(", ")} restarts its shards and sinks (snapshot + WAL replay); older rows read the default`);
      }
    }
    const kept = new Set(t.tables.map((x) => x.name));
    for (const name of old.keys()) {
      if (!kept.has(name)) {
        changes.push({ kind: "table.remove", tenant: t.name, table: name });
        warnings.push(`tenant ${t.name}: table ${name} is not in the file and will be removed (its WAL and ClickHouse data are kept)`);
      }
    }
    diffFeeds(t.name, before?.feeds ?? [], t.feeds ?? [], changes, warnings);
    diffFunctions(t.name, before?.functions ?? [], t.functions ?? [], changes);
    // Quotas apply live (the gateway and the query engine read them from the catalog): a change is one line.
    const quotaFields: FieldChange[] = [];
    diffValues("quotas", before?.quotas ?? {}, t.quotas ?? {}, quotaFields);
    if (quotaFields.length > 0) changes.push({ kind: "quotas.change", tenant: t.name, fields: quotaFields });
    if (changes.length > start) changedTenants.push(t.name);
  }
  return { changes, changedTenants, warnings };
}

function diffFeeds(tenant: string, before: readonly FeedSpec[], after: readonly FeedSpec[], changes: SpecChange[], warnings: string[]): void {
  const old = new Map(before.map((f) => [f.name, f]));
  for (const f of after) {
    const prev = old.get(f.name);
    if (prev === undefined) {
      changes.push({ kind: "feed.add", tenant, feed: f.name });
      continue;
    }
    const fields: FieldChange[] = [];
    diffValues("", prev, f, fields);
    if (fields.length > 0) {
      changes.push({ kind: "feed.change", tenant, feed: f.name, fields });
      if (fields.some((c) => c.path.startsWith("query") || c.path === "lateness")) warnings.push(`tenant ${tenant} feed ${f.name}: a changed definition cannot continue the stream px.${tenant}.feed.${f.name} (its offsets name the old feed); give the new definition a new name`);
    }
  }
  const kept = new Set(after.map((f) => f.name));
  for (const name of old.keys()) if (!kept.has(name)) changes.push({ kind: "feed.remove", tenant, feed: name });
}

/** Functions compare by content hash (apply stamps it with the version). */
function diffFunctions(tenant: string, before: readonly FunctionSpec[], after: readonly FunctionSpec[], changes: SpecChange[]): void {
  const old = new Map(before.map((f) => [f.name, f]));
  for (const f of after) {
    const prev = old.get(f.name);
    if (prev === undefined) changes.push({ kind: "function.add", tenant, name: f.name, version: f.version ?? 1, hash: f.hash ?? "" });
    else if (prev.hash !== f.hash) changes.push({ kind: "function.change", tenant, name: f.name, from: prev.version ?? 1, to: f.version ?? 1, hash: f.hash ?? "" });
  }
  const kept = new Set(after.map((f) => f.name));
  for (const name of old.keys()) if (!kept.has(name)) changes.push({ kind: "function.remove", tenant, name });
}

const show = (v: unknown): string => (v === undefined ? "(none)" : JSON.stringify(v));

/** One line per change, `+` added, `-` removed, `~` changed. */
export function formatDiff(diff: SpecDiff): string[] {
  const lines = diff.changes.map((c) => {
    switch (c.kind) {
      case "tenant.add":
        return `+ tenant ${c.tenant} (${c.tables} tables)`;
      case "table.add":
        return `+ table ${c.tenant}.${c.table} (${c.shards} shards, ${c.columns} value columns)`;
      case "table.remove":
        return `- table ${c.tenant}.${c.table}`;
      case "table.change":
        return `~ table ${c.tenant}.${c.table}: ${c.fields.map((f) => `${f.path} ${show(f.from)} -> ${show(f.to)}`).join("; ")}`;
      case "feed.add":
        return `+ feed ${c.tenant}.${c.feed}`;
      case "feed.remove":
        return `- feed ${c.tenant}.${c.feed}`;
      case "feed.change":
        return `~ feed ${c.tenant}.${c.feed}: ${c.fields.map((f) => `${f.path} ${show(f.from)} -> ${show(f.to)}`).join("; ")}`;
      case "function.add":
        return `+ function ${c.tenant}.${c.name} (version ${c.version}, hash ${c.hash})`;
      case "function.remove":
        return `- function ${c.tenant}.${c.name}`;
      case "function.change":
        return `~ function ${c.tenant}.${c.name}: version ${c.from} -> ${c.to} (hash ${c.hash})`;
      case "quotas.change":
        return `~ tenant ${c.tenant}: ${c.fields.map((f) => `${f.path} ${show(f.from)} -> ${show(f.to)}`).join("; ")}`;
    }
  });
  return [...lines, ...diff.warnings.map((w) => `! ${w}`)];
}
