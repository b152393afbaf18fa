// AssemblyScript source of a user-defined function compiled to WebAssembly
// (the `assemblyscript` compiler, loaded on first use: it is large). The
// module imports its memory (shared, so the host writes a batch's columns
// into it while the function runs in its own thread, ./wasmsandbox.ts) and
// `env.abort`, nothing else: a source that reaches for anything of the host
// (Math.random's seed, trace, a declared import) fails to load by name. The
// compiler runs in a worker thread: it takes ~1-1.5 s of CPU, which on the
// node's own thread would hold every ingest ack and query for that long.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { FunctionSpec } from "../../protocols/tablespec.js";
import { asGlue, asSignature } from "./asglue.js";
import type { AsSignature } from "./asglue.js";

export class AsCompileError extends Error {}

/** Pages of 64 KiB a module starts with (its static data fits many times over). */
export const AS_INITIAL_PAGES = 16;

/** WebAssembly pages of a memory limit (at least the initial ones). */
export const pagesOf = (memoryBytes: number): number => Math.max(AS_INITIAL_PAGES, Math.floor(memoryBytes / 65_536));

// The compiler's thread: loads the compiler (an ES module, by URL) and compiles once. Plain JavaScript evaluated as it is.
const COMPILER = String.raw`
const { parentPort, workerData } = require("node:worker_threads");
import(workerData.url)
  .then(async ({ default: asc }) => {
    const r = await asc.compileString(workerData.sources, workerData.options);
    parentPort.postMessage({ error: r.error ? String(r.error.message) : null, stderr: r.stderr.toString(), binary: r.binary || null });
  })
  .catch((e) => parentPort.postMessage({ error: String((e && e.message) || e), stderr: "", binary: null }));
`;

/** The compiler module's URL (its package exports it for import only, so it is found by its package.json). */
const compilerUrl = (): string => pathToFileURL(join(dirname(createRequire(import.meta.url).resolve("assemblyscript/package.json")), "dist", "asc.js")).href;

/** What the compiler answered. */
interface Compiled {
  readonly error: string | null;
  readonly stderr: string;
  readonly binary: Uint8Array | null;
}

function compileInWorker(sources: Record<string, string>, options: Record<string, unknown>): Promise<Compiled> {
  return new Promise((resolve, reject) => {
    const w = new Worker(COMPILER, { eval: true, workerData: { url: compilerUrl(), sources, options } });
    w.once("message", (m: Compiled) => {
      resolve(m);
      void w.terminate();
    });
    w.once("error", reject);
    w.once("exit", (code) => reject(new AsCompileError(`the AssemblyScript compiler's thread ended (exit code ${code}) without an answer`)));
  });
}

/** Compiles `spec`'s source with the glue; throws AsSignatureError or AsCompileError naming the problem. */
export async function compileAssemblyScript(spec: Pick<FunctionSpec, "name" | "kind" | "source">, memoryBytes: number): Promise<{ binary: Uint8Array; sig: AsSignature }> {
  const sig = asSignature(spec.source, spec.name, spec.kind);
  const r = await compileInWorker(
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
  if (r.error !== null || r.binary === null) {
    // The compiler's first diagnostics, without its colour codes.
    const text = r.stderr
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;]*m/g, "")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(0, 6)
      .join(" | ");
    throw new AsCompileError(`the AssemblyScript source does not compile: ${text || r.error || "no binary"}; fix it`);
  }
  return { binary: r.binary, sig };
}
