// Rolling aggregates per tick (sum, avg, min, max, count, stddev, vwap over a
// time or row window; ema over the series): each tick gets the values the
// batch rolling query gives it over the ticks up to its record. The window
// math is the query engine's (slidingAggregates, ema) run on the symbol's
// retained rows; a late tick is shifted into place and its window computed there.
// The window pass of each symbol continues from record to record (SlideState):
// a record costs its own ticks, not its ticks' whole windows again.
import type { RollingQuery } from "../../protocols/query.js";
import type { TableSpec, ValueType } from "../../protocols/tablespec.js";
import { SlideState, aggInputs, columnIndex, ema, lowerBound, selectedColumns, slidingAggregates, upperBound } from "../query/index.js";
import type { OutField } from "../query/index.js";
import { SeriesBuffer } from "./buffer.js";
import { tickTable, wantedRows } from "./operator.js";
import type { FeedOperator, FeedRecord } from "./operator.js";

export function rollingOperator(q: RollingQuery, spec: TableSpec, fields: readonly OutField[], latenessMicros: number): FeedOperator {
  const cols = selectedColumns(spec, q.columns);
  const symbols = q.symbols === undefined ? undefined : new Set(q.symbols);
  const kept: (ValueType | undefined)[] = spec.columns.map(() => undefined);
  for (const a of q.aggregates) {
    if (a.column !== undefined) kept[columnIndex(spec, a.column, "aggregates.column")] = spec.columns[columnIndex(spec, a.column, "aggregates.column")]!.type;
    if (a.weight !== undefined) kept[columnIndex(spec, a.weight, "aggregates.weight")] = spec.columns[columnIndex(spec, a.weight, "aggregates.weight")]!.type;
  }
  const emaSlot = q.aggregates.map((a, k) => (a.fn === "ema" ? q.aggregates.slice(0, k).filter((x) => x.fn === "ema").length : -1));
  const nEma = q.aggregates.filter((a) => a.fn === "ema").length;
  const windowAggs = q.aggregates.filter((a) => a.fn !== "ema");
  const nullable = fields.slice(2 + cols.length, 2 + cols.length + q.aggregates.length).map((f) => f.nullable);
  /** Per symbol: its retained rows and the window pass over them, continued record after record. */
  const bufs = new Map<string, { buf: SeriesBuffer; slide: SlideState }>();
  const op = { tooLate: 0, snapshot: () => undefined, apply };

  function apply(rec: FeedRecord) {
    if (rec.table !== spec.name) return undefined;
    const b = rec.batch;
    const idx = wantedRows(b, symbols);
    if (idx.length === 0) return undefined;
    // The record's symbols resolved once each (a record holds many ticks of few symbols).
    const ofSym: ({ buf: SeriesBuffer; slide: SlideState; ks: number[] } | undefined)[] = new Array(b.symbols.length);
    const touched: { buf: SeriesBuffer; slide: SlideState; ks: number[] }[] = [];
    for (let k = 0; k < idx.length; k++) {
      const i = idx[k]!;
      const si = b.symbolIndex[i]!;
      let t = ofSym[si];
      if (t === undefined) {
        const s = b.symbols[si]!;
        let entry = bufs.get(s);
        if (entry === undefined) bufs.set(s, (entry = { buf: new SeriesBuffer(s, kept, nEma), slide: new SlideState() }));
        t = ofSym[si] = { buf: entry.buf, slide: entry.slide, ks: [] };
        touched.push(t);
      }
      const buf = t.buf;
      if (b.ts[i]! < buf.maxTs - latenessMicros) op.tooLate++;
      // A late tick lands among rows the window pass has read: that pass starts over.
      if (buf.insert(b.ts[i]!, rec.lsn, i, b.values, i) < t.slide.readTo) t.slide.reset();
      t.ks.push(k);
    }
    const out = q.aggregates.map(() => ({ data: new Float64Array(idx.length), valid: new Uint8Array(idx.length) }));
    for (const { buf, slide, ks } of touched) {
      const pos = ks.map((k) => ({ k, p: buf.indexOf(b.ts[idx[k]!]!, rec.lsn, idx[k]!) })).sort((x, y) => x.p - y.p);
      // EMA: recompute from the earliest new row (a late tick changes the EMA of every row after it).
      const pmin = pos[0]!.p;
      q.aggregates.forEach((a, ai) => {
        if (a.fn !== "ema") return;
        const e = buf.extra[emaSlot[ai]!]!;
        const x = buf.values[columnIndex(spec, a.column!, "aggregates.column")]!;
        e.set(ema(x, pmin, buf.n, a.alpha!, pmin > 0 ? e[pmin - 1]! : undefined), pmin);
        for (const { k, p } of pos) {
          out[ai]!.data[k] = e[p]!;
          out[ai]!.valid[k] = 1;
        }
      });
      const view = buf.view();
      const start = new Int32Array(pos.length);
      const end = new Int32Array(pos.length);
      pos.forEach(({ p }, m) => {
        end[m] = p + 1;
        start[m] = "rows" in q.window ? Math.max(0, p + 1 - q.window.rows) : upperBound(view.ts, view.ts[p]! - q.window.micros, 0, p + 1);
      });
      if (windowAggs.length > 0) {
        const outs = slidingAggregates(aggInputs(spec, view, windowAggs), start, end, slide);
        let w = 0;
        q.aggregates.forEach((a, ai) => {
          if (a.fn === "ema") return;
          const o = outs[w++]!;
          pos.forEach(({ k }, m) => {
            out[ai]!.data[k] = o.data[m]!;
            out[ai]!.valid[k] = o.valid[m]!;
          });
        });
      }
      // Keep what a tick up to `lateness` behind the newest can still need: its window, and the EMA row before it.
      const cutoff = buf.maxTs - latenessMicros;
      const lb = lowerBound(view.ts, cutoff, 0, view.n);
      let drop = "rows" in q.window ? Math.max(0, lb - (q.window.rows - 1)) : upperBound(view.ts, cutoff - q.window.micros, 0, view.n);
      if (nEma > 0) drop = Math.min(drop, Math.max(0, lb - 1));
      slide.shift(buf.dropFront(drop));
    }
    return tickTable(fields, rec, idx, cols, out.map((o, ai) => (nullable[ai] ? o : { data: o.data })));
  }
  return op;
}
