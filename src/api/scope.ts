// Tenant scoping. Clients name tables without a tenant (the token supplies
// it); a name qualified with another tenant, or a query that names another
// tenant, is PERMISSION_DENIED before anything is looked up. Unknown tables are
// NOT_FOUND and the message lists only the caller's own tables. A token with
// table grants reaches only those tables: any other one, whether it exists or
// not, is PERMISSION_DENIED, and listings show only the granted ones.
import type { Principal } from "../auth/index.js";
import { AuthError } from "../auth/index.js";
import type { Catalog } from "../catalog.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { ApiError } from "./errors.js";

const NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** Whose scope a name is resolved in: a Principal, or just the tenant. */
export interface Scope {
  readonly tenant: string;
  /** The token's table grants; undefined: every table of the tenant. */
  readonly tables?: readonly string[] | undefined;
}

/** Refuses `table` (bare name) when the scope's grants do not name it. */
export function checkGranted(p: Scope, table: string): void {
  if (p.tables === undefined || p.tables.includes(table)) return;
  throw new AuthError(
    "PERMISSION_DENIED",
    `table ${table.slice(0, 70)} is not granted to this token (it may use only ${p.tables.join(", ")} of tenant ${p.tenant}); ask an admin for a token whose --tables names it`,
  );
}

/** The names among `tables` the scope may see, in their order. */
export function grantedTables(p: Scope, tables: Iterable<string>): string[] {
  return [...tables].filter((t) => p.tables === undefined || p.tables.includes(t));
}

function denied(p: Scope, tenant: string): AuthError {
  return new AuthError("PERMISSION_DENIED", `tenant ${tenant.slice(0, 40)} is not this token's tenant (${p.tenant}); a token reaches only its own tenant's tables`);
}

/** Accepts `table`, `<tenant>.<table>` or path parts [tenant, table]; returns the bare table name. */
export function scopedTable(p: Scope, parts: readonly string[]): string {
  const flat = parts.length === 1 ? parts[0]!.split(".") : [...parts];
  if (flat.length === 2) {
    if (flat[0] !== p.tenant) throw denied(p, flat[0]!);
    flat.shift();
  }
  const name = flat[0];
  if (flat.length !== 1 || name === undefined || !NAME.test(name)) {
    throw new ApiError("INVALID_ARGUMENT", `"${parts.join("/").slice(0, 80)}" is not a table name; name a table as \`trades\` (or \`${p.tenant}.trades\`)`);
  }
  checkGranted(p, name);
  return name;
}

export function tableSpec(catalog: Catalog, p: Principal, table: string): TableSpec {
  checkGranted(p, table);
  const tables = catalog.get(p.tenant);
  const spec = tables?.get(table);
  if (!spec) {
    const known = tables ? grantedTables(p, tables.keys()).sort().join(", ") || "none" : "none";
    throw new ApiError("NOT_FOUND", `tenant ${p.tenant} has no table ${table} (its tables: ${known})`);
  }
  return spec;
}

/** A query may say which tenant it means; if it does, it must be the token's. */
export function checkQueryTenant(p: Scope, query: unknown): void {
  if (typeof query !== "object" || query === null || !("tenant" in query)) return;
  const tenant = (query as { tenant: unknown }).tenant;
  if (tenant !== p.tenant) throw denied(p, String(tenant));
}

/**
 * The tenant check, then every table the query reads (`table`, and `right.table`
 * of joins; either may be tenant-qualified) against the scope's grants. Names
 * that are not strings are left to the engine's validation.
 */
export function checkQueryScope(p: Scope, query: unknown): void {
  checkQueryTenant(p, query);
  if (p.tables === undefined || typeof query !== "object" || query === null) return;
  const q = query as { table?: unknown; right?: { table?: unknown } };
  for (const name of [q.table, typeof q.right === "object" && q.right !== null ? q.right.table : undefined]) {
    if (typeof name !== "string") continue;
    const parts = name.split(".");
    if (parts.length === 2 && parts[0] !== p.tenant) throw denied(p, parts[0]!);
    checkGranted(p, parts.at(-1)!);
  }
}
