// User-defined function sources shared by the UDF tests and the benchmark.

/** A user-written VWAP: the same sums as the built-in vwap. */
export const VWAP_SOURCE = `const myvwap = {
  init() { return { pv: 0, v: 0 }; },
  accumulate(s, price, size) { s.pv += price * size; s.v += size; },
  merge(a, b) { return { pv: a.pv + b.pv, v: a.v + b.v }; },
  finish(s) { return s.v === 0 ? null : s.pv / s.v; },
};`;

/** The same VWAP with retract: rolling windows slide (add the rows entering, retract the rows leaving). */
export const SLIDING_VWAP_SOURCE = `const slidevwap = {
  init() { return { pv: 0, v: 0 }; },
  accumulate(s, price, size) { s.pv += price * size; s.v += size; },
  retract(s, price, size) { s.pv -= price * size; s.v -= size; },
  merge(a, b) { return { pv: a.pv + b.pv, v: a.v + b.v }; },
  finish(s) { return s.v === 0 ? null : s.pv / s.v; },
};`;

/** The VWAP in AssemblyScript (compiled to WebAssembly): the state is a class that accumulate changes. */
export const AS_VWAP_SOURCE = `class Sums { pv: f64 = 0; v: f64 = 0; }
export function init(): Sums { return new Sums(); }
export function accumulate(s: Sums, price: f64, size: f64): void { s.pv += price * size; s.v += size; }
export function finish(s: Sums): f64 { return s.v == 0 ? NaN : s.pv / s.v; }`;

/** The same with retract (rolling windows slide). */
export const AS_SLIDING_VWAP_SOURCE = `${AS_VWAP_SOURCE}
export function retract(s: Sums, price: f64, size: f64): void { s.pv -= price * size; s.v -= size; }`;
