// Raw tick feed (op range): each wanted tick once, in WAL order, with the
// chosen columns.
import type { RangeQuery } from "../../protocols/query.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { selectedColumns } from "../query/index.js";
import type { OutField } from "../query/index.js";
import { tickTable, wantedRows } from "./operator.js";
import type { FeedOperator, FeedRecord } from "./operator.js";

export function rawOperator(q: RangeQuery, spec: TableSpec, fields: readonly OutField[]): FeedOperator {
  const cols = selectedColumns(spec, q.columns);
  const symbols = q.symbols === undefined ? undefined : new Set(q.symbols);
  return {
    tooLate: 0,
    snapshot: () => undefined,
    // Stateless: nothing to save beyond the runner's offset.
    save: () => null,
    load: () => {},
    apply(rec: FeedRecord) {
      if (rec.table !== spec.name) return undefined;
      const idx = wantedRows(rec.batch, symbols);
      return idx.length === 0 ? undefined : tickTable(fields, rec, idx, cols, []);
    },
  };
}
