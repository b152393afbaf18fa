// groupBy: aggregates per symbol and/or time bucket from combined group
// partials; without keys, one row over everything (as in SQL).
import type { GroupByQuery } from "../../../protocols/query.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import type { OutColumn, OutTable } from "../output.js";
import type { GroupTable } from "../partials.js";
import { fieldsOf } from "./fields.js";

/** Group-by output from combined partials, ordered by symbol then bucket. */
export function groupByOp(q: GroupByQuery, spec: TableSpec, t: GroupTable): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  let groups = t.groups();
  // Without keys the answer is one row, as in SQL (count 0 over no rows).
  if (!q.bySymbol && q.bucketMicros === undefined && groups.length === 0) groups = Int32Array.of(t.add(t.symbolId(""), 0, 0));
  const symbols = t.names;
  const symIndex = new Map(symbols.map((s, i) => [s, i]));
  const columns: OutColumn[] = [];
  let fi = 0;
  if (q.bySymbol) columns.push({ field: fields[fi++]!, data: Int32Array.from(groups, (g) => symIndex.get(t.names[t.sym[g]!]!)!) });
  if (q.bucketMicros !== undefined) columns.push({ field: fields[fi++]!, data: Float64Array.from(groups, (g) => t.bucket[g]!) });
  q.aggregates.forEach((a, k) => {
    const data = Float64Array.from(groups, (g) => t.value(k, g));
    columns.push(a.fn === "count" ? { field: fields[fi++]!, data } : { field: fields[fi++]!, data, valid: Uint8Array.from(data, (x) => (x === x ? 1 : 0)) });
  });
  return { rows: groups.length, symbols, columns };
}
