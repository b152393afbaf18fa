// What a query's session calls in a function's sandbox, whatever the language:
// JavaScript in QuickJS (./sandbox.ts, through ./function.ts) or WebAssembly
// compiled from AssemblyScript (./wasmsandbox.ts). Rows go in as batches of
// float64 columns (NaN = null); a failure is a SandboxError.
export interface UdfSandbox {
  /** Set once a failure left it unusable: the host loads the function again. */
  readonly broken: boolean;
  /** Scalar: f(row values) for each of n rows. */
  scalar(cols: readonly Float64Array[], n: number, cpuMs: number): { value: Float64Array; ms: number };
  /** A new aggregate slot (one use of an aggregate in one query). */
  newSlot(): number;
  /** Aggregate: folds segment r (rows up to ends[r], from the previous end) into group gids[r] of `slot`; returns the ms it took. */
  add(slot: number, gids: Int32Array, ends: Int32Array, cols: readonly Float64Array[], cpuMs: number): number;
  /** Aggregate: finish(state) of groups 0..n-1 of `slot` (NaN for a group without rows); frees the slot. */
  finish(slot: number, n: number, cpuMs: number): { value: Float64Array; ms: number };
  /** Frees a slot a failed query left (best effort). */
  drop(slot: number): void;
  /** Aggregate over windows: finish(fold(rows [start[i], end[i]))) per i. */
  window(start: Int32Array, end: Int32Array, cols: readonly Float64Array[], cpuMs: number): { value: Float64Array; ms: number };
  dispose(): void;
}
