// One user-defined function compiled from AssemblyScript, run in a worker
// thread of its own: its WebAssembly instance imports only its memory and
// `abort`, so it reaches nothing of the node, the file system, the network or
// another function. Its memory is shared with the host and capped (the
// module's maximum pages, limits.memoryBytes): the host writes a batch's
// columns straight into it and reads the results back. A call is synchronous
// for the query (the host waits on an Atomics word) but the code runs in the
// worker, so a call past its CPU-time limit is ended by terminating the
// worker: WebAssembly running on the host's own thread could not be stopped.
import { Worker } from "node:worker_threads";
import type { AsSignature } from "./asglue.js";
import { AS_INITIAL_PAGES, pagesOf } from "./ascompile.js";
import { SandboxError } from "./sandbox.js";
import type { UdfSandbox } from "./udfsandbox.js";

// The WebAssembly API as used here (the project's TypeScript libs carry no WebAssembly types).
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
}
export type WasmModule = object;
interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: { exports(m: WasmModule): { name: string; kind: string }[]; imports(m: WasmModule): { module: string; name: string; kind: string }[] };
  compile(bytes: Uint8Array): Promise<WasmModule>;
}
export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The glue's exports, called by index. */
const OPS = ["__px_alloc", "__px_free", "__px_scalar", "__px_add", "__px_finish", "__px_drop", "__px_window"] as const;
type Op = (typeof OPS)[number];

/** Call words: [state, op, argc, result, args...]; state 0 idle, 1 asked, 2 done, 3 failed. */
const CTRL_WORDS = 64;
const MAX_ARGS = CTRL_WORDS - 4;
const ERR_BYTES = 2048;

// The worker: instantiates the module and serves calls until terminated. Plain
// JavaScript evaluated as it is (no module loading, no bundle).
const WORKER = String.raw`
const { parentPort, workerData } = require("node:worker_threads");
const { module, memory, ctrl: ctrlBuf, err: errBuf, names } = workerData;
const ctrl = new Int32Array(ctrlBuf), err = new Uint8Array(errBuf);
const str = (p) => {
  try {
    if (!p) return "";
    const n = new Uint32Array(memory.buffer, p - 4, 1)[0] >>> 1;
    return String.fromCharCode.apply(null, new Uint16Array(memory.buffer, p, Math.min(n, 256)));
  } catch { return ""; }
};
const imports = { env: { memory, abort(m, f, l, c) { throw new Error("abort: " + str(m) + " (" + str(f) + ":" + l + ":" + c + ")"); } } };
let fns;
try {
  const inst = new WebAssembly.Instance(module, imports);
  fns = names.map((n) => inst.exports[n]);
  parentPort.postMessage({ ok: true });
} catch (e) {
  parentPort.postMessage({ ok: false, error: String((e && e.message) || e) });
}
if (fns) for (;;) {
  for (let s = Atomics.load(ctrl, 0); s !== 1; s = Atomics.load(ctrl, 0)) Atomics.wait(ctrl, 0, s);
  const args = [];
  for (let i = 0; i < ctrl[2]; i++) args.push(ctrl[4 + i] >>> 0);
  try {
    const r = fns[ctrl[1]].apply(null, args);
    ctrl[3] = typeof r === "number" ? r : 0;
    Atomics.store(ctrl, 0, 2);
  } catch (e) {
    const t = new TextEncoder().encode(String((e && e.message) || e)).slice(0, err.length - 4);
    new DataView(errBuf).setUint32(0, t.length);
    err.set(t, 4);
    Atomics.store(ctrl, 0, 3);
  }
  Atomics.notify(ctrl, 0);
}
`;

/** CPU time allowed for the host's own bookkeeping calls (scratch memory). */
const BOOKKEEPING_MS = 1_000;

export class WasmSandbox implements UdfSandbox {
  broken = false;
  private slotSeq = 0;
  private scratch = { ptr: 0, bytes: 0 };

  private constructor(
    private readonly worker: Worker,
    private readonly memory: WasmMemory,
    private readonly ctrl: Int32Array,
    private readonly err: SharedArrayBuffer,
    private readonly maxPages: number,
    readonly sig: AsSignature,
  ) {}

  /** Starts the worker with `module` instantiated over a fresh shared memory of at most `memoryBytes`; rejects with what the instance refused (an import the host does not give). */
  static async create(module: WasmModule, sig: AsSignature, memoryBytes: number): Promise<WasmSandbox> {
    if (sig.arity + 4 > MAX_ARGS) throw new SandboxError({ kind: "threw", detail: `the function takes ${sig.arity} argument columns, at most ${MAX_ARGS - 4} are supported` });
    const maxPages = pagesOf(memoryBytes);
    const memory = new Wasm.Memory({ initial: AS_INITIAL_PAGES, maximum: maxPages, shared: true });
    const ctrlBuf = new SharedArrayBuffer(CTRL_WORDS * 4);
    const err = new SharedArrayBuffer(ERR_BYTES);
    const names = OPS.map((op) => (Wasm.Module.exports(module).some((e) => e.name === op) ? op : "__px_alloc"));
    const worker = new Worker(WORKER, { eval: true, workerData: { module, memory, ctrl: ctrlBuf, err, names } });
    worker.unref();
    const ready = await new Promise<{ ok: boolean; error?: string }>((resolve) => {
      worker.once("message", resolve);
      worker.once("error", (e) => resolve({ ok: false, error: e.message }));
    });
    if (!ready.ok) {
      void worker.terminate();
      throw new SandboxError({ kind: "threw", detail: ready.error ?? "the module did not instantiate" });
    }
    const sb = new WasmSandbox(worker, memory, new Int32Array(ctrlBuf), err, maxPages, sig);
    worker.on("error", () => (sb.broken = true));
    return sb;
  }

  /** One call into the worker, waiting at most `cpuMs` (0: no limit). */
  private call(op: Op, args: readonly number[], cpuMs: number): { result: number; ms: number } {
    if (this.broken) throw new SandboxError({ kind: "broken", detail: "the sandbox was stopped by an earlier failure" });
    const c = this.ctrl;
    c[1] = OPS.indexOf(op);
    c[2] = args.length;
    for (let i = 0; i < args.length; i++) c[4 + i] = args[i]!;
    const t0 = performance.now();
    Atomics.store(c, 0, 1);
    Atomics.notify(c, 0);
    const waited = Atomics.wait(c, 0, 1, cpuMs > 0 ? cpuMs : undefined);
    const ms = performance.now() - t0;
    if (waited === "timed-out" && Atomics.load(c, 0) === 1) {
      // Still running: only ending the thread stops it.
      this.broken = true;
      void this.worker.terminate();
      throw new SandboxError({ kind: "cpu", ms: cpuMs });
    }
    const state = Atomics.load(c, 0);
    Atomics.store(c, 0, 0);
    if (state === 3) {
      // A trap may have left the module's heap half-changed: the sandbox is rebuilt for the next query.
      this.broken = true;
      void this.worker.terminate();
      const n = new DataView(this.err).getUint32(0);
      const detail = new TextDecoder().decode(new Uint8Array(this.err, 4, n).slice());
      // The heap at its cap when the call failed: it could not grow (an allocation past limits.memoryBytes).
      if (this.memory.buffer.byteLength >= (this.maxPages - 1) * 65_536) throw new SandboxError({ kind: "memory", what: `it ran out of memory (${detail})` });
      throw new SandboxError({ kind: "threw", detail });
    }
    return { result: c[3]!, ms };
  }

  /** A scratch region of at least `bytes` in the module's memory (reused across calls). */
  private room(bytes: number): number {
    if (bytes <= this.scratch.bytes) return this.scratch.ptr;
    if (this.scratch.ptr !== 0) this.call("__px_free", [this.scratch.ptr], BOOKKEEPING_MS);
    this.scratch = { ptr: 0, bytes: 0 };
    const ptr = this.call("__px_alloc", [bytes], BOOKKEEPING_MS).result >>> 0;
    this.scratch = { ptr, bytes };
    return ptr;
  }

  private arity(cols: readonly Float64Array[]): void {
    if (cols.length !== this.sig.arity) throw new SandboxError({ kind: "threw", detail: `it takes ${this.sig.arity} argument column${this.sig.arity === 1 ? "" : "s"} and the query passes ${cols.length}; pass ${this.sig.arity} in args` });
  }

  /**
   * Writes `arrays` one after another into the scratch region, 8-byte
   * aligned, with `outRows` float64 after them for the results; returns the
   * arrays' addresses and the results'.
   */
  private put(arrays: readonly (Float64Array | Int32Array)[], outRows: number): { at: number[]; out: number } {
    const offsets: number[] = [];
    let p = 0;
    for (const a of arrays) {
      offsets.push(p);
      p += Math.ceil((a.length * a.BYTES_PER_ELEMENT) / 8) * 8;
    }
    const base = this.room(Math.max(64, p + outRows * 8));
    const buf = this.memory.buffer;
    arrays.forEach((a, i) => {
      if (a instanceof Float64Array) new Float64Array(buf, base + offsets[i]!, a.length).set(a);
      else new Int32Array(buf, base + offsets[i]!, a.length).set(a);
    });
    return { at: offsets.map((o) => base + o), out: base + p };
  }

  private take(ptr: number, n: number): Float64Array {
    return new Float64Array(this.memory.buffer, ptr, n).slice();
  }

  scalar(cols: readonly Float64Array[], n: number, cpuMs: number): { value: Float64Array; ms: number } {
    this.arity(cols);
    const { at, out } = this.put(cols, n);
    const r = this.call("__px_scalar", [n, out, ...at], cpuMs);
    return { value: this.take(out, n), ms: r.ms };
  }

  newSlot(): number {
    return ++this.slotSeq;
  }

  add(slot: number, gids: Int32Array, ends: Int32Array, cols: readonly Float64Array[], cpuMs: number): number {
    this.arity(cols);
    const { at } = this.put([gids, ends, ...cols], 0);
    const [g, e, ...ptrs] = at;
    return this.call("__px_add", [slot, gids.length, g!, e!, ...ptrs], cpuMs).ms;
  }

  finish(slot: number, n: number, cpuMs: number): { value: Float64Array; ms: number } {
    const { out } = this.put([], n);
    const r = this.call("__px_finish", [slot, n, out], cpuMs);
    return { value: this.take(out, n), ms: r.ms };
  }

  drop(slot: number): void {
    if (this.broken) return;
    try {
      this.call("__px_drop", [slot], BOOKKEEPING_MS);
    } catch {
      // Cleanup: a failure here marked the sandbox broken already.
    }
  }

  window(start: Int32Array, end: Int32Array, cols: readonly Float64Array[], cpuMs: number): { value: Float64Array; ms: number } {
    this.arity(cols);
    const { at, out } = this.put([start, end, ...cols], start.length);
    const [s, e, ...ptrs] = at;
    const r = this.call("__px_window", [start.length, s!, e!, out, ...ptrs], cpuMs);
    return { value: this.take(out, start.length), ms: r.ms };
  }

  dispose(): void {
    this.broken = true;
    void this.worker.terminate();
  }
}
