// The node's user-defined functions: each tenant's functions (from its spec in
// px_config) loaded on first use into their own sandbox and kept until the
// spec's hash changes or a failure discarded the sandbox; and, per query, a
// session that batches rows into sandbox calls and holds the query's CPU-time
// budget per function. The per-tenant rate of queries calling them
// (udfQueriesPerSecond) is a query quota: src/quota/query.ts admitUdf.
import { QueryError } from "../../protocols/errors.js";
import type { Aggregate } from "../../protocols/query.js";
import type { FunctionSpec } from "../../protocols/tablespec.js";
import type { UdfFold, UdfRunner } from "../query/ops/index.js";
import { cpuCallError, cpuQueryError, memoryError, threwError } from "./errors.js";
import { FoldBuffer } from "./foldbuffer.js";
import { LoadedFunction, functionHash } from "./function.js";
import { UDF_BATCH_ROWS, limitsOf } from "./limits.js";
import type { UdfLimits } from "./limits.js";
import { SandboxError } from "./sandbox.js";

export interface UdfHostOptions {
  /** The tenant's functions as applied (its spec's `functions`). */
  readonly functions: (tenant: string) => readonly FunctionSpec[];
  /** Replaces limits of every function (tests: e.g. cpuMsPerCall 0 = off for a negative control). */
  readonly limitsOverride?: Partial<UdfLimits>;
}

interface Cached {
  readonly hash: string;
  readonly fn: Promise<LoadedFunction>;
}

export class UdfHost {
  private readonly loaded = new Map<string, Cached>();

  constructor(private readonly o: UdfHostOptions) {}

  /** Starts one query's use of the functions `calls` name: resolves and loads them. */
  async session(tenant: string, calls: readonly { readonly a: Aggregate; readonly kind: FunctionSpec["kind"] }[]): Promise<UdfSession> {
    const specs = this.o.functions(tenant);
    const fns = new Map<string, LoadedFunction>();
    for (const { a, kind } of calls) {
      const name = a.udf!.name;
      const spec = specs.find((f) => f.name === name);
      if (spec === undefined) {
        const known = specs.map((f) => f.name).join(", ") || "none";
        throw new QueryError("INVALID_ARGUMENT", `query names function ${name}, but tenant ${tenant} has none of that name (its functions: ${known}); apply it with pxctl apply (functions: in the tenant spec) or fix the name`);
      }
      if (spec.kind !== kind) {
        const use = spec.kind === "scalar" ? `use it in "derived" of a range query` : `use it in "aggregates" of groupBy, bars or rolling`;
        throw new QueryError("INVALID_ARGUMENT", `function ${name} of tenant ${tenant} is a ${spec.kind} function, and ${kind === "scalar" ? `"derived"` : `"aggregates"`} need a ${kind} one; ${use}`);
      }
      fns.set(name, await this.fn(tenant, spec));
    }
    return new UdfSession(fns, this.o.limitsOverride);
  }

  private async fn(tenant: string, spec: FunctionSpec): Promise<LoadedFunction> {
    const key = `${tenant}\u0000${spec.name}`;
    const hash = spec.hash ?? functionHash(spec);
    const c = this.loaded.get(key);
    if (c !== undefined && c.hash === hash) {
      const f = await c.fn.catch(() => undefined);
      if (f !== undefined && !f.sandbox.broken) return f;
    }
    if (c !== undefined) void c.fn.then((f) => f.dispose()).catch(() => undefined);
    const fn = LoadedFunction.load(tenant, spec, { ...limitsOf(spec), ...this.o.limitsOverride });
    this.loaded.set(key, { hash, fn });
    try {
      return await fn;
    } catch (e) {
      this.loaded.delete(key);
      throw new QueryError("FAILED_PRECONDITION", `function ${spec.name} of tenant ${tenant} does not load on this node: ${(e as Error).message}; fix it and apply it again`, { cause: e });
    }
  }

  /** Frees every sandbox. */
  close(): void {
    for (const c of this.loaded.values()) void c.fn.then((f) => f.dispose()).catch(() => undefined);
    this.loaded.clear();
  }
}

/** One query's calls: batches rows into the sandboxes and spends each function's per-query CPU budget. */
export class UdfSession implements UdfRunner {
  private readonly spent = new Map<string, number>();
  private readonly open: { fn: LoadedFunction; slot: number }[] = [];

  constructor(
    private readonly fns: ReadonlyMap<string, LoadedFunction>,
    private readonly override: Partial<UdfLimits> | undefined,
  ) {}

  private fnOf(a: Aggregate): LoadedFunction {
    return this.fns.get(a.udf!.name)!;
  }

  /** Runs one sandbox call with the function's remaining budget; maps a failure to the query error naming the function and the limit. */
  private run<T>(f: LoadedFunction, body: (cpuMs: number) => { value: T; ms: number }): T {
    const l = { ...f.limits, ...this.override };
    const spent = this.spent.get(f.spec.name) ?? 0;
    const left = l.cpuMsPerQuery === 0 ? Infinity : Math.max(1, l.cpuMsPerQuery - spent);
    const perCall = l.cpuMsPerCall === 0 ? Infinity : l.cpuMsPerCall;
    const cpu = Math.min(left, perCall);
    const name = { tenant: f.tenant, name: f.spec.name, version: f.version };
    try {
      const r = body(cpu === Infinity ? 0 : cpu);
      this.spent.set(f.spec.name, spent + r.ms);
      return r.value;
    } catch (e) {
      if (!(e instanceof SandboxError)) throw e;
      const x = e.failure;
      switch (x.kind) {
        case "cpu":
          throw left < perCall ? cpuQueryError(name, l.cpuMsPerQuery) : cpuCallError(name, l.cpuMsPerCall);
        case "memory":
          throw memoryError(name, l.memoryBytes, x.what);
        case "threw":
          throw threwError(name, x.detail);
        case "broken":
          throw new QueryError("FAILED_PRECONDITION", `function ${name.name} (tenant ${name.tenant}): ${x.detail}; retry (the sandbox is rebuilt)`);
      }
    }
  }

  scalar(a: Aggregate, cols: readonly Float64Array[], n: number): Float64Array {
    const f = this.fnOf(a);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i += UDF_BATCH_ROWS) {
      const j = Math.min(n, i + UDF_BATCH_ROWS);
      out.set(
        this.run(f, (cpu) => f.sandbox.scalar(cols.map((c) => c.subarray(i, j)), j - i, cpu)),
        i,
      );
    }
    return out;
  }

  aggregate(a: Aggregate): UdfFold {
    const f = this.fnOf(a);
    const slot = f.sandbox.newSlot();
    const entry = { fn: f, slot };
    this.open.push(entry);
    let buffer: FoldBuffer | undefined;
    const send = (gids: Int32Array, ends: Int32Array, cols: readonly Float64Array[]): void => {
      this.run(f, (cpu) => ({ value: undefined, ms: f.sandbox.add(slot, gids, ends, cols, cpu) }));
    };
    return {
      add: (gids, ends, cols) => {
        buffer ??= new FoldBuffer(cols.length, UDF_BATCH_ROWS, send);
        buffer.add(gids, ends, cols);
      },
      finish: (groups) => {
        buffer?.flush();
        const out = this.run(f, (cpu) => f.sandbox.finish(slot, groups, cpu));
        this.open.splice(this.open.indexOf(entry), 1);
        return out;
      },
    };
  }

  window(a: Aggregate, start: Int32Array, end: Int32Array, cols: readonly Float64Array[]): Float64Array {
    const f = this.fnOf(a);
    const n = start.length;
    const out = new Float64Array(n);
    // Windows move forward (start and end never decrease): a batch of outputs needs rows [start[i], end[j-1]).
    for (let i = 0; i < n; i += UDF_BATCH_ROWS) {
      const j = Math.min(n, i + UDF_BATCH_ROWS);
      let lo = start[i]!;
      let hi = end[j - 1]!;
      for (let k = i; k < j; k++) {
        if (start[k]! < lo) lo = start[k]!;
        if (end[k]! > hi) hi = end[k]!;
      }
      const s = Int32Array.from(start.subarray(i, j), (x) => x - lo);
      const e = Int32Array.from(end.subarray(i, j), (x) => x - lo);
      out.set(
        this.run(f, (cpu) => f.sandbox.window(s, e, cols.map((c) => c.subarray(lo, hi)), cpu)),
        i,
      );
    }
    return out;
  }

  /** Frees aggregate states a failed query left in the sandboxes. */
  close(): void {
    for (const { fn, slot } of this.open.splice(0)) fn.sandbox.drop(slot);
  }
}
