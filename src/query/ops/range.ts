// range: every row of [t0, t1) in time (or symbol) order, ascending or
// descending, up to `limit`. The range fast path (../rangefast.ts) answers
// hot-only reads without stitching; this is the general form.
import type { RangeQuery } from "../../../protocols/query.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { orderRows } from "../order.js";
import type { OutTable } from "../output.js";
import type { SymbolSeries } from "../series.js";
import { fieldsOf, selectedColumns } from "./fields.js";
import { rowsTable } from "./rows.js";

export function rangeOp(q: RangeQuery, spec: TableSpec, series: readonly SymbolSeries[]): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  const refs = orderRows(series, q.sort, q.order === "desc", q.limit ?? Infinity);
  return rowsTable(fields, spec, selectedColumns(spec, q.columns), series, refs, [], []);
}
