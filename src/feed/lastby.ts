// Live last-by feed: per symbol the last row in (ts, lsn, row) order; a record
// sends the symbols whose last row it changed (a late tick changes nothing).
import type { ByQuery } from "../../protocols/query.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { before, compareStrings, iota, selectedColumns } from "../query/index.js";
import type { OutColumn, OutField, OutTable } from "../query/index.js";
import { wantedRows } from "./operator.js";
import { unfitState } from "./operator.js";
import type { FeedOperator, FeedRecord } from "./operator.js";

interface Last {
  ts: number;
  lsn: number;
  row: number;
  values: number[];
}

export function lastByOperator(q: ByQuery, spec: TableSpec, fields: readonly OutField[]): FeedOperator {
  const cols = selectedColumns(spec, q.columns);
  const symbols = q.symbols === undefined ? undefined : new Set(q.symbols);
  const last = new Map<string, Last>();
  const table = (names: readonly string[]): OutTable => {
    const n = names.length;
    const ts = new Float64Array(n);
    const lsn = new Float64Array(n);
    const vals = cols.map(() => new Float64Array(n));
    names.forEach((s, k) => {
      const r = last.get(s)!;
      ts[k] = r.ts;
      lsn[k] = r.lsn;
      vals.forEach((v, c) => (v[k] = r.values[c]!));
    });
    const columns: OutColumn[] = [
      { field: fields[0]!, data: iota(n) },
      { field: fields[1]!, data: ts },
      ...vals.map((data, c): OutColumn => ({ field: fields[2 + c]!, data: spec.columns[cols[c]!]!.type === "float64" || spec.columns[cols[c]!]!.type === "int64" ? data : convert(data, spec.columns[cols[c]!]!.type) })),
      { field: fields[2 + cols.length]!, data: lsn },
    ];
    return { rows: n, symbols: names, columns };
  };
  return {
    tooLate: 0,
    apply(rec: FeedRecord) {
      if (rec.table !== spec.name) return undefined;
      const b = rec.batch;
      const changed = new Set<string>();
      for (const i of wantedRows(b, symbols)) {
        const s = b.symbols[b.symbolIndex[i]!]!;
        const cur = last.get(s);
        if (cur !== undefined && !before(cur.ts, cur.lsn, cur.row, b.ts[i]!, rec.lsn, i)) continue;
        last.set(s, { ts: b.ts[i]!, lsn: rec.lsn, row: i, values: cols.map((j) => b.values[j]![i]!) });
        changed.add(s);
      }
      return changed.size === 0 ? undefined : table([...changed].sort(compareStrings));
    },
    snapshot: () => (last.size === 0 ? undefined : table([...last.keys()].sort(compareStrings))),
    // Each update replaces a symbol's entry (never mutates one): the map's entries are the state.
    save: () => [...last],
    load(state: unknown) {
      if (!Array.isArray(state)) throw unfitState("last-by", "not a list of symbols");
      last.clear();
      for (const [s, r] of state as [string, Last][]) {
        if (r.values.length !== cols.length) throw unfitState("last-by", `${s} has ${r.values.length} values, the feed keeps ${cols.length}`);
        last.set(s, r);
      }
    },
  };
}

function convert(data: Float64Array, type: string): OutColumn["data"] {
  if (type === "float32") return Float32Array.from(data);
  if (type === "int32") return Int32Array.from(data);
  return Uint8Array.from(data);
}
