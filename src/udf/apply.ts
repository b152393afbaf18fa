// Apply-time checks of a tenant's user-defined functions (pxctl apply): each
// is loaded into a sandbox once, so a syntax error, a missing definition, the
// wrong kind, a built-in's name or limits past the node's caps are refused
// before anything is written. Stamps each function's content hash and version
// (the version goes up by one whenever the hash changes).
import { BUILTIN_FNS } from "../../protocols/query.js";
import type { ClusterSpec, FunctionSpec, TenantSpec } from "../../protocols/tablespec.js";
import { FunctionLoadError, LoadedFunction, functionHash } from "./function.js";
import { limitProblems } from "./limits.js";

/** `desired` with every function's hash and version set, and one sentence per refused function. */
export async function stampFunctions(current: ReadonlyMap<string, TenantSpec>, desired: ClusterSpec): Promise<{ spec: ClusterSpec; refused: string[] }> {
  const refused: string[] = [];
  const tenants: TenantSpec[] = [];
  for (const t of desired.tenants) {
    if (t.functions === undefined) {
      tenants.push(t);
      continue;
    }
    const before = new Map((current.get(t.name)?.functions ?? []).map((f) => [f.name, f]));
    const functions: FunctionSpec[] = [];
    for (const f of t.functions) {
      const where = `tenant ${t.name} function ${f.name}`;
      const problems = await functionProblems(t.name, f);
      if (problems.length > 0) {
        refused.push(...problems.map((p) => `${where}: ${p}`));
        continue;
      }
      const hash = functionHash(f);
      const prev = before.get(f.name);
      const version = prev === undefined ? 1 : prev.hash === hash ? (prev.version ?? 1) : (prev.version ?? 1) + 1;
      functions.push({ ...f, hash, version });
    }
    tenants.push({ ...t, functions });
  }
  return { spec: { tenants }, refused };
}

/** What is wrong with one function (empty: it loads and has the declared kind). */
export async function functionProblems(tenant: string, f: FunctionSpec): Promise<string[]> {
  if (BUILTIN_FNS.includes(f.name)) return [`the name "${f.name}" is a built-in aggregate (${BUILTIN_FNS.join(", ")}); give the function another name`];
  const limits = limitProblems(f);
  if (limits.length > 0) return limits;
  try {
    (await LoadedFunction.load(tenant, f)).dispose();
    return [];
  } catch (e) {
    if (e instanceof FunctionLoadError) return [e.message];
    throw e;
  }
}
