// OHLCV bar feed: per (symbol, bucket) the bar's group partials, folded in
// record by record with the query engine's partials (hotPartials, GroupTable)
// and shown with its bars operator. A record sends every bar it changed: the
// open bar's updates, and a late tick's revision of an older bar. `closed`
// says the feed has seen a tick at or past the bar's end.
import type { BarsQuery } from "../../protocols/query.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { GroupTable, barAggregates, barsOp, hotPartials } from "../query/index.js";
import type { OutField, OutTable, SymbolSeries } from "../query/index.js";
import { unfitState, wantedRows } from "./operator.js";
import type { FeedOperator, FeedRecord } from "./operator.js";

interface SavedBars {
  readonly maxTs: number;
  readonly names: readonly string[];
  readonly bucket: Float64Array;
  readonly n: Float64Array;
  readonly fields: readonly Float64Array[];
}

export function barsOperator(q: BarsQuery, spec: TableSpec, fields: readonly OutField[], latenessMicros: number): FeedOperator {
  const aggs = barAggregates(q);
  const b = q.bucketMicros;
  const symbols = q.symbols === undefined ? undefined : new Set(q.symbols);
  let state = new GroupTable(aggs);
  let index = new Map<string, number>();
  let maxTs = -Infinity;
  const key = (sym: string, bucket: number): string => `${sym}\u0000${bucket}`;
  const op: FeedOperator = { tooLate: 0, apply, snapshot: () => (index.size === 0 ? undefined : tableOf([...index.values()])), save, load };

  /** The bars still held (as columns: symbol, bucket, count, then each partial field) and the newest ts seen. */
  function save(): SavedBars {
    const rows = [...index.values()];
    return {
      maxTs,
      names: rows.map((r) => state.names[state.sym[r]!]!),
      bucket: Float64Array.from(rows, (r) => state.bucket[r]!),
      n: Float64Array.from(rows, (r) => state.n[r]!),
      fields: state.arrs.map((a) => Float64Array.from(rows, (r) => a[r]!)),
    };
  }

  function load(saved: unknown): void {
    const s = saved as SavedBars;
    if (typeof s !== "object" || s === null || !Array.isArray(s.names)) throw unfitState("bars", "not a table of bars");
    const next = new GroupTable(aggs);
    if (s.fields.length !== next.arrs.length) throw unfitState("bars", `${s.fields.length} partial fields, the feed's aggregates have ${next.arrs.length}`);
    const nextIndex = new Map<string, number>();
    s.names.forEach((name, k) => {
      const r = next.add(next.symbolId(name), s.bucket[k]!, s.n[k]!);
      for (let f = 0; f < s.fields.length; f++) next.arrs[f]![r] = s.fields[f]![k]!;
      nextIndex.set(key(name, s.bucket[k]!), r);
    });
    state = next;
    index = nextIndex;
    maxTs = s.maxTs;
  }

  /** The bars of state rows `rows`, as the bars query shows them, plus `closed`. */
  function tableOf(rows: readonly number[]): OutTable {
    const t = new GroupTable(aggs);
    for (const r of rows) t.combineFrom(t.add(t.symbolId(state.names[state.sym[r]!]!), state.bucket[r]!, 0), state, r);
    const out = barsOp({ ...q, fill: "none" }, spec, t, undefined);
    const ts = out.columns[1]!.data;
    const closed = new Uint8Array(out.rows);
    for (let k = 0; k < out.rows; k++) closed[k] = ts[k]! + b <= maxTs ? 1 : 0;
    return { ...out, columns: [...out.columns, { field: fields[fields.length - 1]!, data: closed }] };
  }

  function apply(rec: FeedRecord): OutTable | undefined {
    if (rec.table !== spec.name) return undefined;
    const batch = rec.batch;
    const idx = wantedRows(batch, symbols);
    if (idx.length === 0) return undefined;
    const delta = new GroupTable(aggs);
    hotPartials(delta, spec, recordSeries(batch, rec.lsn, idx), b, true);
    const changed = new Set<number>();
    for (let g = 0; g < delta.size; g++) {
      const name = delta.names[delta.sym[g]!]!;
      const bk = delta.bucket[g]!;
      const k = key(name, bk);
      let r = index.get(k);
      if (r === undefined) {
        if (bk + b <= maxTs - latenessMicros) op.tooLate += delta.n[g]!;
        r = state.add(state.symbolId(name), bk, 0);
        index.set(k, r);
      }
      state.combineFrom(r, delta, g);
      changed.add(r);
    }
    for (const i of idx) if (batch.ts[i]! > maxTs) maxTs = batch.ts[i]!;
    const out = tableOf([...changed]);
    evict();
    return out;
  }

  /** Forgets bars no tick within the lateness can reach; rebuilds the state table once half of it is forgotten. */
  function evict(): void {
    const limit = maxTs - latenessMicros;
    for (const [k, r] of index) if (state.bucket[r]! + b <= limit) index.delete(k);
    if (index.size * 2 >= state.size || state.size < 1024) return;
    const next = new GroupTable(aggs);
    const nextIndex = new Map<string, number>();
    for (const [k, r] of index) {
      const i = next.add(next.symbolId(state.names[state.sym[r]!]!), state.bucket[r]!, 0);
      next.combineFrom(i, state, r);
      nextIndex.set(k, i);
    }
    state = next;
    index = nextIndex;
  }
  return op;
}

/** The record's wanted rows as one (ts, row)-sorted series per symbol (one record: one LSN). */
function recordSeries(batch: FeedRecord["batch"], lsn: number, idx: Int32Array): SymbolSeries[] {
  const bySym = new Map<number, number[]>();
  for (const i of idx) {
    const s = batch.symbolIndex[i]!;
    let l = bySym.get(s);
    if (l === undefined) bySym.set(s, (l = []));
    l.push(i);
  }
  return [...bySym].map(([s, rows]) => {
    rows.sort((x, y) => batch.ts[x]! - batch.ts[y]! || x - y);
    const n = rows.length;
    const values = batch.values.map((v): ValueArray => {
      const C = v.constructor as new (n: number) => ValueArray;
      const out = new C(n);
      rows.forEach((i, k) => (out[k] = v[i]!));
      return out;
    });
    return { symbol: batch.symbols[s]!, n, ts: Float64Array.from(rows, (i) => batch.ts[i]!), lsn: new Float64Array(n).fill(lsn), row: Float64Array.from(rows), values, lo: 0, hi: n };
  });
}
