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

// The compiler's thread: loads the compiler (an ES module, by URL) once and
// compiles what it is sent, one source after another. Plain JavaScript evaluated as it is.
const COMPILER = String.raw`
const { parentPort, workerData } = require("node:worker_threads");
const loaded = import(workerData.url);
let chain = Promise.resolve();
parentPort.on("message", ({ id, sources, options }) => {
  chain = chain.then(async () => {
    try {
      const { default: asc } = await loaded;
      const r = await asc.compileString(sources, options);
      parentPort.postMessage({ id, error: r.error ? String(r.error.message) : null, stderr: r.stderr.toString(), binary: r.binary || null });
    } catch (e) {
      parentPort.postMessage({ id, error: String((e && e.message) || e), stderr: "", binary: null });
    }
  });
});
`;

/** The compiler module's URL (its package exports it for import only, so it is found by its package.json). */
const compilerUrl = (): string => pathToFileURL(join(dirname(createRequire(import.meta.url).resolve("assemblyscript/package.json")), "dist", "asc.js")).href;

/** What the compiler answered. */
interface Compiled {
  readonly id: number;
  readonly error: string | null;
  readonly stderr: string;
  readonly binary: Uint8Array | null;
}

/** How long the compiler's thread stays after its last compile (loading it again takes ~1 s of CPU). */
const COMPILER_IDLE_MS = 30_000;

/**
 * One compiler thread for the process, started on first use and ended after
 * COMPILER_IDLE_MS without work: a thread per compile loaded the compiler
 * (and its ~90 MB of WebAssembly) each time, and ended a thread holding
 * WebAssembly code after every compile (./v8wasm.ts says why that churn is
 * worth avoiding). Neither the thread nor its idle timer keeps the process alive.
 */
class CompilerThread {
  private worker: Worker | null = null;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (c: Compiled) => void; reject: (e: Error) => void }>();
  private idle: NodeJS.Timeout | null = null;
  /** Threads started so far (a test sees the thread reused). */
  threadsStarted = 0;

  compile(sources: Record<string, string>, options: Record<string, unknown>): Promise<Compiled> {
    const w = this.started();
    if (this.idle !== null) clearTimeout(this.idle);
    this.idle = null;
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.ref();
      w.postMessage({ id, sources, options });
    });
  }

  private started(): Worker {
    if (this.worker !== null) return this.worker;
    const w = new Worker(COMPILER, { eval: true, workerData: { url: compilerUrl() } });
    this.threadsStarted++;
    w.on("message", (m: Compiled) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      p?.resolve(m);
      if (this.pending.size === 0) this.rest(w);
    });
    // A thread that failed or ended under a compile: its compiles fail, the next one starts a new thread.
    const ended = (why: Error): void => {
      if (this.worker !== w) return;
      this.worker = null;
      for (const p of this.pending.values()) p.reject(why);
      this.pending.clear();
    };
    w.on("error", (e) => ended(new AsCompileError(`the AssemblyScript compiler's thread failed: ${e.message}`)));
    w.on("exit", (code) => ended(new AsCompileError(`the AssemblyScript compiler's thread ended (exit code ${code}) without an answer`)));
    this.worker = w;
    return w;
  }

  /** No compile waiting: the thread no longer holds the process, and ends if none comes. */
  private rest(w: Worker): void {
    w.unref();
    this.idle = setTimeout(() => {
      this.idle = null;
      if (this.worker === w && this.pending.size === 0) {
        this.worker = null;
        void w.terminate();
      }
    }, COMPILER_IDLE_MS);
    this.idle.unref();
  }
}

const compiler = new CompilerThread();

/** How many compiler threads this process has started. */
export const compilerThreadsStarted = (): number => compiler.threadsStarted;

/** Compiles `spec`'s source with the glue; throws AsSignatureError or AsCompileError naming the problem. */
export async function compileAssemblyScript(spec: Pick<FunctionSpec, "name" | "kind" | "source">, memoryBytes: number): Promise<{ binary: Uint8Array; sig: AsSignature }> {
  const sig = asSignature(spec.source, spec.name, spec.kind);
  const r = await compiler.compile(
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
