// asof: each left row joined with the right table's row of the same symbol at
// or before (after, nearest) its time, within an optional tolerance.
import type { AsofQuery } from "../../../protocols/query.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { allocValueArray } from "../../codec/tickbatch.js";
import { orderRows } from "../order.js";
import type { OutTable } from "../output.js";
import { lowerBound, upperBound } from "../series.js";
import type { SymbolSeries } from "../series.js";
import { fieldsOf, selectedColumns } from "./fields.js";
import { placeRows, rowsTable } from "./rows.js";

/** Index of the right row matched by a left row at ts, or -1 (feeds use it too: one matching rule). */
export function asofMatch(r: SymbolSeries, ts: number, direction: AsofQuery["direction"], tol: number): number {
  const back = upperBound(r.ts, ts, 0, r.n) - 1;
  const fwd = lowerBound(r.ts, ts, 0, r.n);
  const db = back >= 0 ? ts - r.ts[back]! : Infinity;
  const df = fwd < r.n ? r.ts[fwd]! - ts : Infinity;
  let m: number;
  let d: number;
  if (direction === "backward") [m, d] = [back, db];
  else if (direction === "forward") [m, d] = [fwd, df];
  else [m, d] = db <= df ? [back, db] : [fwd, df];
  return d !== Infinity && d <= tol ? m : -1;
}

export function asofOp(q: AsofQuery, left: TableSpec, right: TableSpec, ls: readonly SymbolSeries[], rs: ReadonlyMap<string, SymbolSeries>): OutTable {
  const fields = fieldsOf(q, left, right);
  const rc = selectedColumns(right, q.right.columns, "right.columns");
  const tol = q.toleranceMicros ?? Infinity;
  // The matched right row of each left row [lo, hi), series after series in one array (-1: none).
  const first = new Int32Array(ls.length + 1);
  for (let si = 0; si < ls.length; si++) first[si + 1] = first[si]! + ls[si]!.hi - ls[si]!.lo;
  const matches = new Int32Array(first[ls.length]!).fill(-1);
  const match = ls.map((_, si) => matches.subarray(first[si]!, first[si + 1]!));
  const rightOf = ls.map((s) => rs.get(s.symbol));
  ls.forEach((s, si) => {
    const r = rightOf[si];
    if (r !== undefined && r.n > 0) matchSorted(s, r, q.direction, tol, match[si]!);
  });
  const refs = orderRows(ls, q.sort, false);
  const n = refs.n;
  const rts = new Float64Array(n);
  const valid = new Uint8Array(n);
  const rvals = rc.map((j) => allocValueArray(right.columns[j]!.type, n));
  // The matched right rows, series by series (each series' columns read in order, see placeRows).
  const at = placeRows(ls, refs);
  for (let si = 0; at !== undefined && si < ls.length; si++) {
    const r = rightOf[si];
    if (r === undefined) continue;
    const m = match[si]!;
    const s = ls[si]!;
    const pos = at.pos.subarray(at.start[si]! + s.lo, at.start[si]! + s.hi);
    for (let i = 0; i < m.length; i++) {
      const mi = m[i]!;
      const k = pos[i]!;
      if (mi < 0 || k < 0) continue;
      valid[k] = 1;
      rts[k] = r.ts[mi]!;
    }
    rc.forEach((j, c) => {
      const src = r.values[j]!;
      const dst = rvals[c]!;
      for (let i = 0; i < m.length; i++) {
        const mi = m[i]!;
        const k = pos[i]!;
        if (mi >= 0 && k >= 0) dst[k] = src[mi]!;
      }
    });
  }
  if (at === undefined) {
    // A few rows of many (a limit): gathered in output order.
    for (let k = 0; k < n; k++) {
      const si = refs.sym[k]!;
      const mi = match[si]![refs.idx[k]! - ls[si]!.lo]!;
      if (mi < 0) continue;
      const r = rightOf[si]!;
      valid[k] = 1;
      rts[k] = r.ts[mi]!;
      rc.forEach((j, c) => (rvals[c]![k] = r.values[j]![mi]!));
    }
  }
  return rowsTable(fields, left, selectedColumns(left, q.columns), ls, refs, [rts, ...rvals], [valid, ...rc.map(() => valid)], at);
}

/**
 * `asofMatch` of every left row [lo, hi) of `s` into `m` (from index 0): the
 * left rows ascend in ts, so the matches only move forward and one walk over
 * the right rows finds them all (a binary search per row cost ~15x more).
 */
function matchSorted(s: SymbolSeries, r: SymbolSeries, direction: AsofQuery["direction"], tol: number, m: Int32Array): void {
  const rt = r.ts;
  const rn = r.n;
  // back: last right row with ts <= t (upperBound - 1); fwd: first with ts >= t (lowerBound).
  let back = -1;
  let fwd = 0;
  for (let i = s.lo; i < s.hi; i++) {
    const t = s.ts[i]!;
    while (back + 1 < rn && rt[back + 1]! <= t) back++;
    while (fwd < rn && rt[fwd]! < t) fwd++;
    const db = back >= 0 ? t - rt[back]! : Infinity;
    const df = fwd < rn ? rt[fwd]! - t : Infinity;
    let at: number;
    let d: number;
    if (direction === "backward" || (direction === "nearest" && db <= df)) {
      at = back;
      d = db;
    } else {
      at = fwd;
      d = df;
    }
    m[i - s.lo] = d !== Infinity && d <= tol ? at : -1;
  }
}
