// Tenant scoping. Clients name tables without a tenant (the token supplies
// it); a name qualified with another tenant, or a query that names another
// tenant, is PERMISSION_DENIED before anything is looked up. Unknown tables are
// NOT_FOUND and the message lists only the caller's own tables.
import type { Principal } from "../auth/index.js";
import { AuthError } from "../auth/index.js";
import type { Catalog } from "../catalog.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { ApiError } from "./errors.js";

const NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** Whose scope a name is resolved in: a Principal, or just the tenant. */
export interface Scope {
  readonly tenant: string;
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
  return name;
}

export function tableSpec(catalog: Catalog, p: Principal, table: string): TableSpec {
  const tables = catalog.get(p.tenant);
  const spec = tables?.get(table);
  if (!spec) {
    const known = tables ? [...tables.keys()].sort().join(", ") || "none" : "none";
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
