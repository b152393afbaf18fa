// As-of enriched tick feed: each left tick with the right table's prevailing
// row of its symbol (backward, within the tolerance) among the right rows
// acknowledged before it. The match is the query engine's asofMatch run on
// the symbol's retained right rows.
import type { AsofQuery } from "../../protocols/query.js";
import type { TableSpec, ValueType } from "../../protocols/tablespec.js";
import { allocValueArray } from "../codec/tickbatch.js";
import { asofMatch, lowerBound, selectedColumns } from "../query/index.js";
import type { OutField } from "../query/index.js";
import { SeriesBuffer } from "./buffer.js";
import type { SavedSeries } from "./buffer.js";
import { tickTable, unfitState, wantedRows } from "./operator.js";
import type { FeedOperator, FeedRecord } from "./operator.js";

export function asofOperator(q: AsofQuery, left: TableSpec, right: TableSpec, fields: readonly OutField[], latenessMicros: number): FeedOperator {
  const cols = selectedColumns(left, q.columns);
  const rc = selectedColumns(right, q.right.columns, "right.columns");
  const symbols = q.symbols === undefined ? undefined : new Set(q.symbols);
  const tol = q.toleranceMicros ?? Infinity;
  const kept: (ValueType | undefined)[] = right.columns.map((c, j) => (rc.includes(j) ? c.type : undefined));
  const quotes = new Map<string, SeriesBuffer>();
  const op: FeedOperator = { tooLate: 0, snapshot: () => undefined, apply, save: () => new Map([...quotes].map(([s, b]) => [s, b.save()])), load };

  function load(state: unknown): void {
    if (!(state instanceof Map)) throw unfitState("as-of", "not a map of symbols");
    quotes.clear();
    for (const [s, saved] of state as Map<string, SavedSeries>) quotes.set(s, SeriesBuffer.load(s, kept, 0, saved));
  }

  function apply(rec: FeedRecord) {
    const b = rec.batch;
    if (rec.table === right.name) {
      const touched = new Set<SeriesBuffer>();
      for (const i of wantedRows(b, symbols)) {
        const s = b.symbols[b.symbolIndex[i]!]!;
        let buf = quotes.get(s);
        if (buf === undefined) quotes.set(s, (buf = new SeriesBuffer(s, kept)));
        buf.insert(b.ts[i]!, rec.lsn, i, b.values, i);
        touched.add(buf);
      }
      // A left tick up to `lateness` behind the newest right row still finds its match: keep one row before that.
      for (const buf of touched) buf.dropFront(Math.max(0, lowerBound(buf.ts, buf.maxTs - latenessMicros, 0, buf.n) - 1));
      return undefined;
    }
    if (rec.table !== left.name) return undefined;
    const idx = wantedRows(b, symbols);
    if (idx.length === 0) return undefined;
    const n = idx.length;
    const rts = new Float64Array(n);
    const valid = new Uint8Array(n);
    const rvals = rc.map((j) => allocValueArray(right.columns[j]!.type, n));
    for (let k = 0; k < n; k++) {
      const i = idx[k]!;
      const buf = quotes.get(b.symbols[b.symbolIndex[i]!]!);
      if (buf === undefined || buf.n === 0) continue;
      if (b.ts[i]! < buf.maxTs - latenessMicros && b.ts[i]! < buf.ts[0]!) op.tooLate++;
      const m = asofMatch(buf.view(), b.ts[i]!, "backward", tol);
      if (m < 0) continue;
      valid[k] = 1;
      rts[k] = buf.ts[m]!;
      rc.forEach((j, c) => (rvals[c]![k] = buf.values[j]![m]!));
    }
    return tickTable(fields, rec, idx, cols, [{ data: rts, valid }, ...rvals.map((v) => ({ data: v, valid }))]);
  }
  return op;
}
