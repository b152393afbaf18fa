// Catalog: the decoded specs a node currently serves, keyed by tenant and table.
// Built from the px_config KV bucket by the runtime; pure lookups here.
import { NO_QUOTAS } from "../protocols/tablespec.js";
import type { ClusterSpec, FunctionSpec, TableSpec, TenantQuotas, TenantSpec } from "../protocols/tablespec.js";

export type Catalog = ReadonlyMap<string, ReadonlyMap<string, TableSpec>>;

export const EMPTY_CATALOG: Catalog = new Map();

// A tenant's quotas ride with its table map (the catalog's shape stays a map of
// tables, which every reader already walks); a map built elsewhere has none.
const quotasOfTables = new WeakMap<ReadonlyMap<string, TableSpec>, TenantQuotas>();
// The tenant's user-defined functions ride the same way.
const functionsOfTables = new WeakMap<ReadonlyMap<string, TableSpec>, readonly FunctionSpec[]>();

export function catalogOf(tenants: Iterable<TenantSpec>): Catalog {
  const out = new Map<string, Map<string, TableSpec>>();
  for (const t of tenants) {
    const tables = new Map(t.tables.map((table) => [table.name, table]));
    if (t.quotas !== undefined) quotasOfTables.set(tables, t.quotas);
    if (t.functions !== undefined) functionsOfTables.set(tables, t.functions);
    out.set(t.name, tables);
  }
  return out;
}

/** The quotas of `tenant` in `catalog` (none set, or an unknown tenant: NO_QUOTAS). */
export function tenantQuotas(catalog: Catalog, tenant: string): TenantQuotas {
  const tables = catalog.get(tenant);
  return (tables === undefined ? undefined : quotasOfTables.get(tables)) ?? NO_QUOTAS;
}

/** The user-defined functions of `tenant` in `catalog` (none, or an unknown tenant: []). */
export function tenantFunctions(catalog: Catalog, tenant: string): readonly FunctionSpec[] {
  const tables = catalog.get(tenant);
  return (tables === undefined ? undefined : functionsOfTables.get(tables)) ?? [];
}

/** The kind of each of the tenant's user-defined functions by name (what SQL needs to tell a UDF call from an unknown name). */
export function functionKinds(catalog: Catalog, tenant: string): (name: string) => FunctionSpec["kind"] | undefined {
  const kinds = new Map(tenantFunctions(catalog, tenant).map((f) => [f.name, f.kind]));
  return (name) => kinds.get(name);
}

export function catalogOfCluster(spec: ClusterSpec): Catalog {
  return catalogOf(spec.tenants);
}

export type Lookup =
  | { readonly ok: true; readonly spec: TableSpec }
  | { readonly ok: false; readonly message: string };

/** Finds a table, or explains what is missing and what exists. */
export function lookupTable(catalog: Catalog, tenant: string, table: string): Lookup {
  const tables = catalog.get(tenant);
  if (!tables) {
    const known = [...catalog.keys()].sort().join(", ") || "none";
    return { ok: false, message: `tenant ${tenant} is unknown (known tenants: ${known}); apply a spec that declares it or fix the subject` };
  }
  const spec = tables.get(table);
  if (!spec) {
    const known = [...tables.keys()].sort().join(", ") || "none";
    return { ok: false, message: `tenant ${tenant} has no table ${table} (tables: ${known}); apply a spec that declares it or fix the subject` };
  }
  return { ok: true, spec };
}
