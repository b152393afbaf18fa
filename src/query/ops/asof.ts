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
import { rowsTable } from "./rows.js";

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
  const match: Int32Array[] = [];
  const rightOf: (SymbolSeries | undefined)[] = [];
  for (const s of ls) {
    const r = rs.get(s.symbol);
    rightOf.push(r);
    const m = new Int32Array(s.hi - s.lo).fill(-1);
    if (r !== undefined && r.n > 0) for (let i = s.lo; i < s.hi; i++) m[i - s.lo] = asofMatch(r, s.ts[i]!, q.direction, tol);
    match.push(m);
  }
  const refs = orderRows(ls, q.sort, false);
  const n = refs.n;
  const rts = new Float64Array(n);
  const valid = new Uint8Array(n);
  const rvals = rc.map((j) => allocValueArray(right.columns[j]!.type, n));
  for (let k = 0; k < n; k++) {
    const si = refs.sym[k]!;
    const m = match[si]![refs.idx[k]! - ls[si]!.lo]!;
    if (m < 0) continue;
    const r = rightOf[si]!;
    valid[k] = 1;
    rts[k] = r.ts[m]!;
    rc.forEach((j, c) => (rvals[c]![k] = r.values[j]![m]!));
  }
  return rowsTable(fields, left, selectedColumns(left, q.columns), ls, refs, [rts, ...rvals], [valid, ...rc.map(() => valid)]);
}
