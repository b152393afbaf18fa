// A user-defined function loaded into its sandbox: the spec as applied, its
// content hash, and the handle of the user's function (scalar) or aggregate
// object. Loading is also the apply-time check: a syntax error, a missing
// definition or the wrong kind is a problem sentence naming the rule and the fix.
import { createHash } from "node:crypto";
import type { FunctionSpec } from "../../protocols/tablespec.js";
import { limitsOf } from "./limits.js";
import type { UdfLimits } from "./limits.js";
import { JsSandbox, SandboxError } from "./sandbox.js";
import type { QuickJSHandle } from "quickjs-emscripten";

/** Content hash of what runs: kind, language, source and limits (not the name or version). */
export function functionHash(f: FunctionSpec): string {
  const what = { kind: f.kind, language: f.language ?? "javascript", source: f.source, limits: limitsOf(f) };
  return createHash("sha256").update(JSON.stringify(what)).digest("hex").slice(0, 16);
}

export class FunctionLoadError extends Error {}

export class LoadedFunction {
  private constructor(
    readonly tenant: string,
    readonly spec: FunctionSpec,
    readonly hash: string,
    readonly limits: UdfLimits,
    readonly sandbox: JsSandbox,
    readonly handle: QuickJSHandle,
  ) {}

  get version(): number {
    return this.spec.version ?? 1;
  }

  /** Loads `spec` into a fresh sandbox; throws FunctionLoadError with the problem (what, rule, fix). */
  static async load(tenant: string, spec: FunctionSpec, limits: UdfLimits = limitsOf(spec)): Promise<LoadedFunction> {
    const sandbox = await JsSandbox.create({ memoryBytes: limits.memoryBytes });
    let handle: QuickJSHandle | undefined;
    try {
      handle = sandbox.load(spec.source, spec.name, limits.cpuMsPerCall).handle;
      const shape = sandbox.shapeOf(handle, spec.kind);
      if (shape !== undefined) {
        const how = spec.kind === "scalar" ? `define it as function ${spec.name}(a, b) { return ...; }` : `define it as const ${spec.name} = { init() {...}, accumulate(state, ...values) {...}, merge(a, b) {...}, finish(state) {...} }`;
        throw new FunctionLoadError(`kind ${spec.kind}: ${spec.name} ${shape}; ${how}, or set kind to match what the source defines`);
      }
      return new LoadedFunction(tenant, spec, functionHash(spec), limits, sandbox, handle);
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

  dispose(): void {
    if (!this.sandbox.broken) this.handle.dispose();
    this.sandbox.dispose();
  }
}
