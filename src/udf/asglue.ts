// The AssemblyScript side of a user-defined function: what the user's source
// must define (read from its text: the compiler is not asked twice), and the
// glue compiled with it, which loops over a batch of columns in the module's
// own memory and calls the user's functions row by row, so a batch costs one
// crossing into WebAssembly and the user's code is inlined into the loop.
//
// Scalar:    export function <name>(a: f64, b: f64, ...): f64
// Aggregate: export function init(): State                      (State: a class, or StaticArray<f64>: what accumulate changes)
//            export function accumulate(s: State, a: f64, ...): void
//            export function retract(s: State, a: f64, ...): void   (optional: rolling windows slide)
//            export function finish(s: State): f64
// Arguments arrive as f64 (NaN for null); a NaN result is null.
import type { FunctionKind } from "../../protocols/tablespec.js";

export class AsSignatureError extends Error {}

/** What the glue needs to know of the user's source. */
export interface AsSignature {
  readonly kind: FunctionKind;
  /** Argument columns per call. */
  readonly arity: number;
  /** The aggregate's state type (init's declared return type). */
  readonly state?: string;
  readonly retract: boolean;
}

/** The parameter list of `export function name(...)`, or undefined when the source exports no such function. */
function params(source: string, name: string): string[] | undefined {
  const m = new RegExp(`export\\s+function\\s+${name}\\s*\\(`).exec(source);
  if (m === null) return undefined;
  let depth = 0;
  let cur = "";
  const out: string[] = [];
  for (let i = m.index + m[0].length; i < source.length; i++) {
    const c = source[i]!;
    if (depth === 0 && c === ")") {
      if (cur.trim() !== "") out.push(cur.trim());
      return out;
    }
    if (depth === 0 && c === ",") {
      out.push(cur.trim());
      cur = "";
      continue;
    }
    if ("(<[{".includes(c)) depth++;
    if (")>]}".includes(c)) depth--;
    cur += c;
  }
  return undefined;
}

/** Reads what the user's source exports; throws AsSignatureError naming the definition that is missing or wrong, with its form. */
export function asSignature(source: string, name: string, kind: FunctionKind): AsSignature {
  if (kind === "scalar") {
    const p = params(source, name);
    if (p === undefined || p.length === 0) throw new AsSignatureError(`kind scalar: the source exports no function ${name} with arguments; define it as export function ${name}(a: f64, b: f64): f64 { return ...; }`);
    return { kind, arity: p.length, retract: false };
  }
  const need = (fn: string, form: string): string[] => {
    const p = params(source, fn);
    if (p === undefined) throw new AsSignatureError(`kind aggregate: the source exports no function ${fn}; define ${form}`);
    return p;
  };
  need("init", "export function init(): State { return new State(); }");
  const state = /export\s+function\s+init\s*\(\s*\)\s*:\s*([A-Za-z_$][\w$]*(?:\s*<[^>{]*>)?)\s*\{/.exec(source)?.[1]?.trim();
  if (state === undefined) throw new AsSignatureError(`kind aggregate: init must declare the state type it returns, e.g. export function init(): State { return new State(); } (State a class, or StaticArray<f64>)`);
  const acc = need("accumulate", "export function accumulate(s: State, a: f64): void { ... }");
  if (acc.length < 2) throw new AsSignatureError(`kind aggregate: accumulate takes the state and at least one argument column, e.g. export function accumulate(s: State, price: f64, size: f64): void`);
  need("finish", "export function finish(s: State): f64 { return ...; }");
  const ret = params(source, "retract");
  if (ret !== undefined && ret.length !== acc.length) throw new AsSignatureError(`kind aggregate: retract takes ${ret.length} parameters and accumulate ${acc.length}; give retract the same parameters as accumulate`);
  return { kind, arity: acc.length - 1, state, retract: ret !== undefined };
}

const cols = (k: number): string => Array.from({ length: k }, (_, i) => `, c${i}: usize`).join("");
const at = (k: number, row: string): string => Array.from({ length: k }, (_, i) => `, __px_col(c${i}, ${row})`).join("");

/** The glue compiled after the user's source (its exports are what the sandbox calls). */
export function asGlue(sig: AsSignature, name: string): string {
  const head = `
// ---- Proxist glue ----
@inline function __px_col(p: usize, i: i32): f64 { return load<f64>(p + (<usize>i << 3)); }
@inline function __px_i32(p: usize, i: i32): i32 { return load<i32>(p + (<usize>i << 2)); }
export function __px_alloc(bytes: i32): usize { return heap.alloc(<usize>bytes); }
export function __px_free(p: usize): void { heap.free(p); }
`;
  if (sig.kind === "scalar") {
    return `${head}
export function __px_scalar(n: i32, out: usize${cols(sig.arity)}): void {
  for (let i = 0; i < n; i++) store<f64>(out + (<usize>i << 3), <f64>${name}(${at(sig.arity, "i").slice(2)}));
}
`;
  }
  const S = sig.state!;
  const args = (row: string): string => at(sig.arity, row);
  const window = sig.retract
    ? `
  if (n == 0) return;
  let s = init();
  let lo = __px_i32(start, 0);
  let hi = lo;
  for (let i = 0; i < n; i++) {
    const e = __px_i32(end, i);
    for (; hi < e; hi++) accumulate(s${args("hi")});
    const b = __px_i32(start, i);
    for (; lo < b; lo++) retract(s${args("lo")});
    store<f64>(out + (<usize>i << 3), <f64>finish(s));
  }`
    : `
  for (let i = 0; i < n; i++) {
    const s = init();
    const e = __px_i32(end, i);
    for (let r = __px_i32(start, i); r < e; r++) accumulate(s${args("r")});
    store<f64>(out + (<usize>i << 3), <f64>finish(s));
  }`;
  return `${head}
const __px_slots = new Map<i32, Array<${S} | null>>();
export function __px_add(slot: i32, nseg: i32, gids: usize, ends: usize${cols(sig.arity)}): void {
  let st: Array<${S} | null>;
  if (__px_slots.has(slot)) st = __px_slots.get(slot);
  else {
    st = new Array<${S} | null>(0);
    __px_slots.set(slot, st);
  }
  let row = 0;
  for (let r = 0; r < nseg; r++) {
    const g = __px_i32(gids, r);
    while (st.length <= g) st.push(null);
    let s = st[g];
    if (s === null) {
      s = init();
      st[g] = s;
    }
    const e = __px_i32(ends, r);
    for (; row < e; row++) accumulate(s!${args("row")});
  }
}
export function __px_finish(slot: i32, n: i32, out: usize): void {
  const st = __px_slots.has(slot) ? __px_slots.get(slot) : new Array<${S} | null>(0);
  __px_slots.delete(slot);
  for (let g = 0; g < n; g++) {
    const s = g < st.length ? st[g] : null;
    if (s === null) store<f64>(out + (<usize>g << 3), NaN);
    else store<f64>(out + (<usize>g << 3), <f64>finish(s));
  }
}
export function __px_drop(slot: i32): void { __px_slots.delete(slot); }
export function __px_window(n: i32, start: usize, end: usize, out: usize${cols(sig.arity)}): void {${window}
}
`;
}
