// windowJoin: each left row with aggregates over the right table's rows of the
// same symbol in [ts - before, ts + after].
import type { WindowJoinQuery } from "../../../protocols/query.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { orderRows } from "../order.js";
import type { OutTable } from "../output.js";
import { lowerBound, upperBound } from "../series.js";
import type { SymbolSeries } from "../series.js";
import { slidingAggregates } from "../window.js";
import { fieldsOf, selectedColumns } from "./fields.js";
import { aggInputs, gatherPerSeries, gatherValid, rowsTable } from "./rows.js";

export function windowJoinOp(q: WindowJoinQuery, left: TableSpec, right: TableSpec, ls: readonly SymbolSeries[], rs: ReadonlyMap<string, SymbolSeries>): OutTable {
  const fields = fieldsOf(q, left, right);
  const per = q.aggregates.map(() => ({ data: [] as Float64Array[], valid: [] as Uint8Array[] }));
  for (const s of ls) {
    const m = s.hi - s.lo;
    const r = rs.get(s.symbol);
    const start = new Int32Array(m);
    const end = new Int32Array(m);
    if (r !== undefined) {
      for (let i = 0; i < m; i++) {
        const t = s.ts[s.lo + i]!;
        start[i] = lowerBound(r.ts, t - q.beforeMicros, 0, r.n);
        end[i] = upperBound(r.ts, t + q.afterMicros, start[i]!, r.n);
      }
    }
    const outs = r === undefined ? q.aggregates.map((a) => ({ data: new Float64Array(m), valid: new Uint8Array(m).fill(a.fn === "count" ? 1 : 0) })) : slidingAggregates(aggInputs(right, r, q.aggregates), start, end);
    outs.forEach((o, a) => {
      per[a]!.data.push(o.data);
      per[a]!.valid.push(o.valid);
    });
  }
  const refs = orderRows(ls, q.sort, false);
  return rowsTable(
    fields,
    left,
    selectedColumns(left, q.columns),
    ls,
    refs,
    per.map((p) => gatherPerSeries(p.data, ls, refs)),
    per.map((p, a) => (q.aggregates[a]!.fn === "count" ? undefined : gatherValid(p.valid, ls, refs))),
  );
}
