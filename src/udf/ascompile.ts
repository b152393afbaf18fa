// AssemblyScript source of a user-defined function compiled to WebAssembly
// (the `assemblyscript` compiler, loaded on first use: it is large). The
// module imports its memory (shared, so the host writes a batch's columns
// into it while the function runs in its own thread, ./wasmsandbox.ts) and
// `env.abort`, nothing else: a source that reaches for anything of the host
// (Math.random's seed, trace, a declared import) fails to load by name.
import type { FunctionSpec } from "../../protocols/tablespec.js";
import { asGlue, asSignature } from "./asglue.js";
import type { AsSignature } from "./asglue.js";

export class AsCompileError extends Error {}

/** Pages of 64 KiB a module starts with (its static data fits many times over). */
export const AS_INITIAL_PAGES = 16;

/** WebAssembly pages of a memory limit (at least the initial ones). */
export const pagesOf = (memoryBytes: number): number => Math.max(AS_INITIAL_PAGES, Math.floor(memoryBytes / 65_536));

/** Compiles `spec`'s source with the glue; throws AsSignatureError or AsCompileError naming the problem. */
export async function compileAssemblyScript(spec: Pick<FunctionSpec, "name" | "kind" | "source">, memoryBytes: number): Promise<{ binary: Uint8Array; sig: AsSignature }> {
  const sig = asSignature(spec.source, spec.name, spec.kind);
  const { default: asc } = await import("assemblyscript/asc");
  const r = await asc.compileString(
    { [`${spec.name}.ts`]: `${spec.source}\n${asGlue(sig, spec.name)}` },
    {
      optimizeLevel: 3,
      shrinkLevel: 0,
      runtime: "incremental",
      importMemory: true,
      sharedMemory: true,
      enable: ["threads"],
      initialMemory: AS_INITIAL_PAGES,
      maximumMemory: pagesOf(memoryBytes),
    },
  );
  if (r.error !== null || r.binary === undefined || r.binary === null) {
    // The compiler's first diagnostics, without its colour codes.
    const text = r.stderr
      .toString()
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;]*m/g, "")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(0, 6)
      .join(" | ");
    throw new AsCompileError(`the AssemblyScript source does not compile: ${text || r.error?.message || "no binary"}; fix it`);
  }
  return { binary: r.binary, sig };
}
