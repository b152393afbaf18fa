// Apply-time checks of a tenant's user-defined functions (pxctl apply): each
// is loaded into a sandbox once, so a syntax error, a missing definition, the
// wrong kind, a built-in's name or limits past the node's caps are refused
// before anything is written. Stamps each function's content hash and version
// (the version goes up by one whenever the hash changes), and an AssemblyScript
// function's compiled module (compiled here, once per source: an unchanged
// function keeps the module it has; nodes then only instantiate it).
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
    for (const given of t.functions) {
      const where = `tenant ${t.name} function ${given.name}`;
      const hash = functionHash(given);
      const prev = before.get(given.name);
      // The module is apply's to make: one in the input is not taken; an unchanged function keeps its own.
      const { wasm: _given, ...f } = given;
      const reuse = prev?.hash === hash && prev.wasm !== undefined && f.language === "assemblyscript" ? { wasm: prev.wasm } : {};
      const { problems, wasm } = await checkFunction(t.name, { ...f, ...reuse });
      if (problems.length > 0) {
        refused.push(...problems.map((p) => `${where}: ${p}`));
        continue;
      }
      const version = prev === undefined ? 1 : prev.hash === hash ? (prev.version ?? 1) : (prev.version ?? 1) + 1;
      functions.push({ ...f, hash, version, ...(wasm === undefined ? {} : { wasm: Buffer.from(wasm).toString("base64") }) });
    }
    tenants.push({ ...t, functions });
  }
  return { spec: { tenants }, refused };
}

/** What is wrong with one function (empty: it loads and has the declared kind). */
export async function functionProblems(tenant: string, f: FunctionSpec): Promise<string[]> {
  return (await checkFunction(tenant, f)).problems;
}

/** Loads `f` once: its problems, or (AssemblyScript) its compiled module. */
async function checkFunction(tenant: string, f: FunctionSpec): Promise<{ problems: string[]; wasm?: Uint8Array }> {
  if (BUILTIN_FNS.includes(f.name)) return { problems: [`the name "${f.name}" is a built-in aggregate (${BUILTIN_FNS.join(", ")}); give the function another name`] };
  const limits = limitProblems(f);
  if (limits.length > 0) return { problems: limits };
  try {
    const loaded = await LoadedFunction.load(tenant, f);
    loaded.dispose();
    return loaded.wasm === undefined ? { problems: [] } : { problems: [], wasm: loaded.wasm };
  } catch (e) {
    if (e instanceof FunctionLoadError) return { problems: [e.message] };
    throw e;
  }
}
