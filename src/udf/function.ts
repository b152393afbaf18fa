// A user-defined function loaded into its sandbox: the spec as applied, its
// content hash, and the sandbox that runs it (JavaScript in QuickJS, or
// WebAssembly compiled from AssemblyScript in a worker thread). Loading is
// also the apply-time check: a syntax error, a missing definition or the
// wrong kind is a problem sentence naming the rule and the fix.
import { createHash } from "node:crypto";
import type { FunctionSpec } from "../../protocols/tablespec.js";
import { AsCompileError, compileAssemblyScript } from "./ascompile.js";
import { AsSignatureError, asSignature } from "./asglue.js";
import { limitsOf } from "./limits.js";
import type { UdfLimits } from "./limits.js";
import { JsSandbox, SandboxError } from "./sandbox.js";
import type { UdfSandbox } from "./udfsandbox.js";
import { disableWasmCodeGc } from "./v8wasm.js";
import { Wasm, WasmSandbox } from "./wasmsandbox.js";
import type { QuickJSHandle } from "quickjs-emscripten";

/** Content hash of what runs: kind, language, source and limits (not the name or version). */
export function functionHash(f: FunctionSpec): string {
  const what = { kind: f.kind, language: f.language ?? "javascript", source: f.source, limits: limitsOf(f) };
  return createHash("sha256").update(JSON.stringify(what)).digest("hex").slice(0, 16);
}

export class FunctionLoadError extends Error {}

/** A QuickJS sandbox with the user's function or aggregate object in it. */
class JsFunction implements UdfSandbox {
  constructor(
    private readonly sb: JsSandbox,
    private readonly h: QuickJSHandle,
  ) {}
  get broken(): boolean {
    return this.sb.broken;
  }
  scalar(cols: readonly Float64Array[], n: number, cpuMs: number): { value: Float64Array; ms: number } {
    return this.sb.scalar(this.h, cols, n, cpuMs);
  }
  newSlot(): number {
    return this.sb.newSlot();
  }
  add(slot: number, gids: Int32Array, ends: Int32Array, cols: readonly Float64Array[], cpuMs: number): number {
    return this.sb.add(this.h, slot, gids, ends, cols, cpuMs);
  }
  finish(slot: number, n: number, cpuMs: number): { value: Float64Array; ms: number } {
    return this.sb.finish(this.h, slot, n, cpuMs);
  }
  drop(slot: number): void {
    this.sb.drop(slot);
  }
  window(start: Int32Array, end: Int32Array, cols: readonly Float64Array[], cpuMs: number): { value: Float64Array; ms: number } {
    return this.sb.window(this.h, start, end, cols, cpuMs);
  }
  dispose(): void {
    if (!this.sb.broken) this.h.dispose();
    this.sb.dispose();
  }
}

export class LoadedFunction {
  private constructor(
    readonly tenant: string,
    readonly spec: FunctionSpec,
    readonly hash: string,
    readonly limits: UdfLimits,
    readonly sandbox: UdfSandbox,
    /** AssemblyScript: the compiled module (what apply stores in the spec). */
    readonly wasm?: Uint8Array,
  ) {}

  get version(): number {
    return this.spec.version ?? 1;
  }

  /** Loads `spec` into a fresh sandbox; throws FunctionLoadError with the problem (what, rule, fix). */
  static async load(tenant: string, spec: FunctionSpec, limits: UdfLimits = limitsOf(spec)): Promise<LoadedFunction> {
    // Both languages run WebAssembly (QuickJS is compiled to it): ./v8wasm.ts.
    disableWasmCodeGc();
    if (spec.language === "assemblyscript") return LoadedFunction.loadWasm(tenant, spec, limits);
    const sandbox = await JsSandbox.create({ memoryBytes: limits.memoryBytes });
    let handle: QuickJSHandle | undefined;
    try {
      handle = sandbox.load(spec.source, spec.name, limits.cpuMsPerCall).handle;
      const shape = sandbox.shapeOf(handle, spec.kind);
      if (shape !== undefined) {
        const how = spec.kind === "scalar" ? `define it as function ${spec.name}(a, b) { return ...; }` : `define it as const ${spec.name} = { init() {...}, accumulate(state, ...values) {...}, merge(a, b) {...}, finish(state) {...} }`;
        throw new FunctionLoadError(`kind ${spec.kind}: ${spec.name} ${shape}; ${how}, or set kind to match what the source defines`);
      }
      return new LoadedFunction(tenant, spec, functionHash(spec), limits, new JsFunction(sandbox, handle));
    } catch (e) {
      handle?.dispose();
      sandbox.dispose();
      if (e instanceof FunctionLoadError) throw e;
      if (e instanceof SandboxError) {
        const f = e.failure;
        const why =
          f.kind === "threw"
            ? /SyntaxError/.test(f.detail)
              ? `the source does not parse: ${f.detail}; fix the syntax`
              : `running the source's top level threw ${f.detail}; its top level should only define the function`
            : f.kind === "cpu"
              ? `running the source's top level passed the CPU-time limit of ${f.ms} ms per call (limits.cpuMsPerCall); its top level should only define the function`
              : f.kind === "memory"
                ? `running the source's top level: ${f.what} (limits.memoryBytes ${limits.memoryBytes}); its top level should only define the function`
                : f.detail;
        throw new FunctionLoadError(why);
      }
      throw e;
    }
  }

  /** AssemblyScript: the module apply compiled (spec.wasm), or compiled here; started in its worker. */
  private static async loadWasm(tenant: string, spec: FunctionSpec, limits: UdfLimits): Promise<LoadedFunction> {
    try {
      const sig = asSignature(spec.source, spec.name, spec.kind);
      const binary = spec.wasm !== undefined ? new Uint8Array(Buffer.from(spec.wasm, "base64")) : (await compileAssemblyScript(spec, limits.memoryBytes)).binary;
      const module = await Wasm.compile(binary);
      // The sandbox gives the module its memory and abort, nothing else of the host.
      const reach = Wasm.Module.imports(module).filter((i) => !(i.module === "env" && (i.name === "memory" || i.name === "abort")));
      if (reach.length > 0) {
        throw new FunctionLoadError(
          `the module imports ${reach.map((i) => `${i.module}.${i.name}`).join(", ")} from the host; a function may import nothing but its memory and abort (Math.random imports env.seed, trace env.trace, a declared function its module): remove what needs it`,
        );
      }
      const sandbox = await WasmSandbox.create(module, sig, limits.memoryBytes);
      return new LoadedFunction(tenant, spec, functionHash(spec), limits, sandbox, binary);
    } catch (e) {
      if (e instanceof AsSignatureError || e instanceof AsCompileError) throw new FunctionLoadError(e.message);
      // The instance refused: an import the sandbox does not give (the host's functions), or an invalid module.
      if (e instanceof SandboxError) throw new FunctionLoadError(`the module does not start in the sandbox: ${e.message}; apply the function again to compile it anew`);
      if (e instanceof Error && /WebAssembly|wasm/i.test(e.name + e.message)) throw new FunctionLoadError(`the compiled module (wasm) does not load: ${e.message}; apply the function again to compile it anew`);
      throw e;
    }
  }

  dispose(): void {
    this.sandbox.dispose();
  }
}
