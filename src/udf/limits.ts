// Sandbox limits of user-defined functions (issue 17): the defaults a function
// without `limits` gets, and the caps no function may exceed (refused at apply).
import type { FunctionSpec } from "../../protocols/tablespec.js";

export interface UdfLimits {
  /** Heap of the function's sandbox (QuickJS runtime memory limit), bytes. */
  readonly memoryBytes: number;
  /** One call into the sandbox (one batch of rows); 0 = no limit (tests' negative control only: apply refuses 0). */
  readonly cpuMsPerCall: number;
  /** All the function's calls in one query. */
  readonly cpuMsPerQuery: number;
}

export const UDF_DEFAULT_LIMITS: UdfLimits = { memoryBytes: 64 << 20, cpuMsPerCall: 1_000, cpuMsPerQuery: 10_000 };
export const UDF_MAX_LIMITS: UdfLimits = { memoryBytes: 512 << 20, cpuMsPerCall: 60_000, cpuMsPerQuery: 300_000 };
/** Smallest heap a function may ask for: the sandbox itself and one batch of inputs need it. */
export const UDF_MIN_MEMORY_BYTES = 4 << 20;

/** Rows passed into the sandbox per call (bounds the input copy held in the sandbox's heap). */
export const UDF_BATCH_ROWS = 65_536;

/** A function's limits with the defaults filled in. */
export function limitsOf(f: Pick<FunctionSpec, "limits">): UdfLimits {
  return { ...UDF_DEFAULT_LIMITS, ...f.limits };
}

/** Why `f`'s limits cannot be accepted, one sentence each naming the limit and the fix (empty: fine). */
export function limitProblems(f: Pick<FunctionSpec, "limits">): string[] {
  const l = limitsOf(f);
  const out: string[] = [];
  for (const k of ["memoryBytes", "cpuMsPerCall", "cpuMsPerQuery"] as const) {
    if (l[k] > UDF_MAX_LIMITS[k]) out.push(`limits.${k} ${l[k]} is above this node's cap ${UDF_MAX_LIMITS[k]}; lower it to at most ${UDF_MAX_LIMITS[k]}`);
  }
  if (l.memoryBytes < UDF_MIN_MEMORY_BYTES) out.push(`limits.memoryBytes ${l.memoryBytes} is below ${UDF_MIN_MEMORY_BYTES} (the sandbox and one batch of rows need it); raise it`);
  if (l.cpuMsPerCall > l.cpuMsPerQuery) out.push(`limits.cpuMsPerCall ${l.cpuMsPerCall} is above limits.cpuMsPerQuery ${l.cpuMsPerQuery}; a call cannot take longer than its query may, lower cpuMsPerCall`);
  return out;
}
