// One user-defined JavaScript function in its own QuickJS sandbox (QuickJS
// compiled to WebAssembly, quickjs-emscripten): its own WebAssembly instance,
// runtime and context, so it shares no heap with the node or with any other
// function or tenant. The context has only the ECMAScript built-ins: no
// process, require, fetch, fs, network, timers or host objects. A memory limit
// caps its heap, an interrupt handler ends a call at its deadline, and a stack
// limit ends runaway recursion. Rows go in bulk: a trusted driver (evaluated
// before the user's code, its functions held by the host) loops over a batch
// of columns copied in as ArrayBuffers and hands back one Float64Array, so a
// batch costs one host-to-sandbox crossing, not one per row.
import { newQuickJSWASMModule, RELEASE_SYNC } from "quickjs-emscripten";
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime } from "quickjs-emscripten";
import type { FunctionKind } from "../../protocols/tablespec.js";

/** Why a sandbox call failed. cpu/memory/broken leave the sandbox unusable (it is discarded); threw does not. */
export type SandboxFailure = { readonly kind: "cpu"; readonly ms: number } | { readonly kind: "memory"; readonly what: string } | { readonly kind: "threw"; readonly detail: string } | { readonly kind: "broken"; readonly detail: string };

export class SandboxError extends Error {
  constructor(readonly failure: SandboxFailure) {
    super(failure.kind === "threw" || failure.kind === "broken" ? failure.detail : failure.kind);
  }
}

/**
 * Max stack of the sandbox's interpreter: deep recursion ends as QuickJS's
 * "stack overflow". At 512 KiB the host's own stack (the WebAssembly frames run
 * on it) overflowed first; 256 KiB is caught inside.
 */
const STACK_BYTES = 256 * 1024;

// The driver: bulk loops over typed-array batches, run inside the sandbox.
// Aggregate states stay in the sandbox (per slot, per group) between batches;
// the host only ever sees numbers.
const DRIVER = String.raw`(() => {
  "use strict";
  const F64 = Float64Array, I32 = Int32Array, NAN = NaN;
  const num = (v) => (v === null || v === undefined ? NAN : +v);
  const slots = new Map();
  const cols = (bufs) => { const a = []; for (let k = 0; k < bufs.length; k++) a.push(new F64(bufs[k])); return a; };
  // Folds rows [from, end) of columns a into state s.
  const fold = (agg, s, a, from, end) => {
    if (a.length === 1) { const x = a[0]; for (let i = from; i < end; i++) { const t = agg.accumulate(s, x[i]); if (t !== undefined) s = t; } }
    else if (a.length === 2) { const x = a[0], y = a[1]; for (let i = from; i < end; i++) { const t = agg.accumulate(s, x[i], y[i]); if (t !== undefined) s = t; } }
    else if (a.length === 3) { const x = a[0], y = a[1], z = a[2]; for (let i = from; i < end; i++) { const t = agg.accumulate(s, x[i], y[i], z[i]); if (t !== undefined) s = t; } }
    else { const args = new Array(a.length + 1); for (let i = from; i < end; i++) { args[0] = s; for (let k = 0; k < a.length; k++) args[k + 1] = a[k][i]; const t = agg.accumulate.apply(agg, args); if (t !== undefined) s = t; } }
    return s;
  };
  return {
    scalar(f, n, ...bufs) {
      const a = cols(bufs), out = new F64(n);
      if (a.length === 1) { const x = a[0]; for (let i = 0; i < n; i++) out[i] = num(f(x[i])); }
      else if (a.length === 2) { const x = a[0], y = a[1]; for (let i = 0; i < n; i++) out[i] = num(f(x[i], y[i])); }
      else if (a.length === 3) { const x = a[0], y = a[1], z = a[2]; for (let i = 0; i < n; i++) out[i] = num(f(x[i], y[i], z[i])); }
      else { const args = new Array(a.length); for (let i = 0; i < n; i++) { for (let k = 0; k < a.length; k++) args[k] = a[k][i]; out[i] = num(f.apply(undefined, args)); } }
      return out.buffer;
    },
    add(agg, slot, gidsBuf, endsBuf, ...bufs) {
      const gids = new I32(gidsBuf), ends = new I32(endsBuf), a = cols(bufs);
      let st = slots.get(slot);
      if (st === undefined) slots.set(slot, (st = []));
      let from = 0;
      for (let r = 0; r < gids.length; r++) {
        const end = ends[r];
        const s = fold(agg, agg.init(), a, from, end);
        const g = gids[r], prev = st[g];
        st[g] = prev === undefined ? s : agg.merge(prev, s);
        from = end;
      }
    },
    finish(agg, slot, n) {
      const st = slots.get(slot) || [];
      slots.delete(slot);
      const out = new F64(n);
      for (let g = 0; g < n; g++) out[g] = st[g] === undefined ? NAN : num(agg.finish(st[g]));
      return out.buffer;
    },
    drop(slot) { slots.delete(slot); },
    window(agg, startBuf, endBuf, ...bufs) {
      const start = new I32(startBuf), end = new I32(endBuf), a = cols(bufs), n = start.length, out = new F64(n);
      if (typeof agg.retract !== "function") {
        for (let i = 0; i < n; i++) out[i] = num(agg.finish(fold(agg, agg.init(), a, start[i], end[i])));
        return out.buffer;
      }
      // Sliding: windows only move forward, so add the rows entering and retract the rows leaving (O(rows), not O(rows x window)).
      let s = agg.init(), lo = n > 0 ? start[0] : 0, hi = lo;
      const retract = (from, to) => {
        const args = new Array(a.length + 1);
        for (let i = from; i < to; i++) { args[0] = s; for (let k = 0; k < a.length; k++) args[k + 1] = a[k][i]; const t = agg.retract.apply(agg, args); if (t !== undefined) s = t; }
      };
      for (let i = 0; i < n; i++) {
        if (end[i] > hi) { s = fold(agg, s, a, hi, end[i]); hi = end[i]; }
        if (start[i] > lo) { retract(lo, start[i]); lo = start[i]; }
        out[i] = num(agg.finish(s));
      }
      return out.buffer;
    },
  };
})()`;

export interface SandboxOptions {
  readonly memoryBytes: number;
}

/** A loaded function: call it only through these methods; after a cpu/memory/broken failure `broken` is true and it must be dropped. */
export class JsSandbox {
  broken = false;
  private deadline = 0;
  private interrupted = false;
  private slotSeq = 0;
  private readonly driver: { scalar: QuickJSHandle; add: QuickJSHandle; finish: QuickJSHandle; drop: QuickJSHandle; window: QuickJSHandle };

  private constructor(
    private readonly rt: QuickJSRuntime,
    private readonly ctx: QuickJSContext,
    driverObj: QuickJSHandle,
  ) {
    const get = (k: string): QuickJSHandle => ctx.getProp(driverObj, k);
    this.driver = { scalar: get("scalar"), add: get("add"), finish: get("finish"), drop: get("drop"), window: get("window") };
    driverObj.dispose();
    rt.setInterruptHandler(() => {
      if (this.deadline !== 0 && performance.now() > this.deadline) this.interrupted = true;
      return this.interrupted;
    });
  }

  /** A fresh sandbox (its own WebAssembly instance) with the driver loaded. */
  static async create(o: SandboxOptions): Promise<JsSandbox> {
    const mod = await newQuickJSWASMModule(RELEASE_SYNC);
    const rt = mod.newRuntime();
    rt.setMemoryLimit(o.memoryBytes);
    rt.setMaxStackSize(STACK_BYTES);
    const ctx = rt.newContext();
    const driver = ctx.evalCode(DRIVER, "px-driver.js");
    if (driver.error !== undefined) {
      const d = ctx.dump(driver.error) as unknown;
      driver.error.dispose();
      throw new Error(`the UDF sandbox driver did not load: ${JSON.stringify(d)}`);
    }
    return new JsSandbox(rt, ctx, driver.value);
  }

  /** Runs `f` with a deadline `cpuMs` from now (0: none); a failure is thrown as SandboxError. Returns the ms spent. */
  private guarded<T>(cpuMs: number, f: () => T): { value: T; ms: number } {
    if (this.broken) throw new SandboxError({ kind: "broken", detail: "the sandbox was discarded after an earlier failure" });
    const t0 = performance.now();
    this.interrupted = false;
    this.deadline = cpuMs === 0 ? 0 : t0 + cpuMs;
    try {
      return { value: f(), ms: performance.now() - t0 };
    } catch (e) {
      if (e instanceof SandboxError) {
        if (e.failure.kind !== "threw") this.broken = true;
        throw e;
      }
      // The host side failed (the WebAssembly frames overflowed the host's stack, or the instance aborted): drop the whole instance.
      this.broken = true;
      if (e instanceof RangeError && /call stack/i.test(e.message)) throw new SandboxError({ kind: "memory", what: "its call stack overflowed (too deep a recursion)" });
      throw new SandboxError({ kind: "broken", detail: `the sandbox failed: ${(e as Error).message}` });
    } finally {
      this.deadline = 0;
    }
  }

  /** The failure of an error value the sandbox threw (and disposes it). */
  private failure(err: QuickJSHandle, cpuMs: number): SandboxFailure {
    let d: { name?: unknown; message?: unknown; stack?: unknown } | unknown;
    try {
      d = this.ctx.dump(err);
    } catch {
      d = undefined;
    } finally {
      err.dispose();
    }
    const o = (typeof d === "object" && d !== null ? d : { message: String(d) }) as { name?: unknown; message?: unknown; stack?: unknown };
    // Our handler interrupted it: the deadline, whatever the error object says.
    if (this.interrupted) return { kind: "cpu", ms: cpuMs };
    // Out of memory even for the error object: QuickJS throws null.
    if (d === null || d === undefined) return { kind: "memory", what: "it ran out of memory" };
    if (o.name === "InternalError" && o.message === "out of memory") return { kind: "memory", what: "it ran out of memory" };
    if (o.name === "InternalError" && o.message === "stack overflow") return { kind: "memory", what: "its call stack overflowed (too deep a recursion)" };
    const where = typeof o.stack === "string" && o.stack.trim() !== "" ? ` (${o.stack.trim().split("\n")[0]!.trim()})` : "";
    return { kind: "threw", detail: `${typeof o.name === "string" ? o.name : "Error"}: ${typeof o.message === "string" ? o.message : JSON.stringify(d)}${where}` };
  }

  private unwrap(r: ReturnType<QuickJSContext["evalCode"]>, cpuMs: number): QuickJSHandle {
    if (r.error !== undefined) throw new SandboxError(this.failure(r.error, cpuMs));
    return r.value;
  }

  /** Evaluates the user's source (its top level runs under the call limit) and returns the handle of the global `name`. */
  load(source: string, name: string, cpuMs: number): { handle: QuickJSHandle; ms: number } {
    const r = this.guarded(cpuMs, () => {
      this.unwrap(this.ctx.evalCode(source, `${name}.js`), cpuMs).dispose();
      return this.unwrap(this.ctx.evalCode(`typeof ${name} === "undefined" ? undefined : ${name}`, "px-bind.js"), cpuMs);
    });
    return { handle: r.value, ms: r.ms };
  }

  /** What `h` is, for the kind check at apply: undefined, a function (scalar), an aggregate object, or something else. */
  shapeOf(h: QuickJSHandle, kind: FunctionKind): string | undefined {
    const t = this.ctx.typeof(h);
    if (t === "undefined") return "is not defined";
    if (kind === "scalar") return t === "function" ? undefined : `is a ${t}, not a function`;
    if (t !== "object") return `is a ${t}, not an object with init, accumulate, merge and finish`;
    const missing = ["init", "accumulate", "merge", "finish"].filter((k) => {
      const p = this.ctx.getProp(h, k);
      const ok = this.ctx.typeof(p) === "function";
      p.dispose();
      return !ok;
    });
    return missing.length === 0 ? undefined : `has no function ${missing.join(", ")} (an aggregate is an object with init(), accumulate(state, ...values), merge(a, b) and finish(state))`;
  }

  private buffers(cols: readonly Float64Array[]): QuickJSHandle[] {
    return cols.map((c) => this.ctx.newArrayBuffer(c.byteOffset === 0 && c.byteLength === c.buffer.byteLength ? c.buffer : c.slice().buffer));
  }

  private call(fn: QuickJSHandle, args: QuickJSHandle[], cpuMs: number): QuickJSHandle {
    try {
      return this.unwrap(this.ctx.callFunction(fn, this.ctx.undefined, ...args), cpuMs);
    } finally {
      for (const a of args) a.dispose();
    }
  }

  private takeF64(h: QuickJSHandle, n: number, what: string): Float64Array {
    try {
      if (this.ctx.typeof(h) !== "object") throw new SandboxError({ kind: "threw", detail: `${what} did not return an ArrayBuffer` });
      const life = this.ctx.getArrayBuffer(h);
      try {
        const out = new Float64Array(life.value.slice().buffer);
        if (out.length !== n) throw new SandboxError({ kind: "threw", detail: `${what} returned ${out.length} values for ${n}` });
        return out;
      } finally {
        life.dispose();
      }
    } finally {
      h.dispose();
    }
  }

  /** Scalar: f(row values) for each of n rows. */
  scalar(f: QuickJSHandle, cols: readonly Float64Array[], n: number, cpuMs: number): { value: Float64Array; ms: number } {
    return this.guarded(cpuMs, () => {
      const h = this.call(this.driver.scalar, [f.dup(), this.ctx.newNumber(n), ...this.buffers(cols)], cpuMs);
      return this.takeF64(h, n, "the scalar driver");
    });
  }

  /** A new aggregate slot (one use of an aggregate in one query). */
  newSlot(): number {
    return ++this.slotSeq;
  }

  /** Aggregate: folds segment r (rows up to ends[r], from the previous end) into group gids[r] of `slot`. */
  add(agg: QuickJSHandle, slot: number, gids: Int32Array, ends: Int32Array, cols: readonly Float64Array[], cpuMs: number): number {
    return this.guarded(cpuMs, () => {
      const b = (a: Int32Array): QuickJSHandle => this.ctx.newArrayBuffer(a.slice().buffer);
      this.call(this.driver.add, [agg.dup(), this.ctx.newNumber(slot), b(gids), b(ends), ...this.buffers(cols)], cpuMs).dispose();
    }).ms;
  }

  /** Aggregate: finish(state) of groups 0..n-1 of `slot` (NaN for a group without rows); frees the slot. */
  finish(agg: QuickJSHandle, slot: number, n: number, cpuMs: number): { value: Float64Array; ms: number } {
    return this.guarded(cpuMs, () => this.takeF64(this.call(this.driver.finish, [agg.dup(), this.ctx.newNumber(slot), this.ctx.newNumber(n)], cpuMs), n, "finish"));
  }

  /** Frees a slot a failed query left (best effort). */
  drop(slot: number): void {
    if (this.broken) return;
    try {
      this.guarded(1_000, () => this.call(this.driver.drop, [this.ctx.newNumber(slot)], 1_000).dispose());
    } catch {
      // Dropping is cleanup: a failure here marked the sandbox broken already.
    }
  }

  /** Aggregate over windows: finish(fold(rows [start[i], end[i]))) per i. */
  window(agg: QuickJSHandle, start: Int32Array, end: Int32Array, cols: readonly Float64Array[], cpuMs: number): { value: Float64Array; ms: number } {
    return this.guarded(cpuMs, () => {
      const b = (a: Int32Array): QuickJSHandle => this.ctx.newArrayBuffer(a.slice().buffer);
      return this.takeF64(this.call(this.driver.window, [agg.dup(), b(start), b(end), ...this.buffers(cols)], cpuMs), start.length, "the window driver");
    });
  }

  /** Frees the sandbox; a broken one is left to the garbage collector whole (freeing a runtime a failure left inconsistent could abort the instance). */
  dispose(): void {
    if (this.broken) return;
    try {
      for (const h of Object.values(this.driver)) h.dispose();
      this.ctx.dispose();
      this.rt.dispose();
    } catch {
      // Same as broken: the instance is dropped with its memory.
    }
    this.broken = true;
  }
}
