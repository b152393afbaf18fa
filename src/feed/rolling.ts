// Rolling aggregates per tick (sum, avg, min, max, count, stddev, vwap over a
// time or row window; ema over the series): each tick gets the values the
// batch rolling query gives it over the ticks up to its record. The window
// math is the query engine's (slidingAggregates, ema) run on the symbol's
// retained rows; a late tick is shifted into place and its window computed there.
// The window pass of each symbol continues from record to record (SlideState):
// a record costs its own ticks, not its ticks' whole windows again.
import type { RollingQuery } from "../../protocols/query.js";
import type { TableSpec, ValueType } from "../../protocols/tablespec.js";
import { SlideState, columnIndex, ema, lowerBound, selectedColumns, slideRange, upperBound } from "../query/index.js";
import type { AggInput, OutField } from "../query/index.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { SeriesBuffer } from "./buffer.js";
import type { SavedSeries } from "./buffer.js";
import { tickTable, unfitState, wantedRows } from "./operator.js";
import type { FeedOperator, FeedRecord } from "./operator.js";

/** One symbol's rows, its window pass, and (during a record) the record's rows of it. */
interface SymbolState {
  readonly buf: SeriesBuffer;
  readonly slide: SlideState;
  readonly ks: number[];
  /** Where each of `ks` sits in the buffer. */
  readonly ps: number[];
  inputs: AggInput[];
  inputsOf: readonly (ValueArray | undefined)[] | undefined;
}

interface SavedSymbol {
  readonly buf: SavedSeries;
  readonly slide: ReturnType<SlideState["save"]>;
}

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
  const windowAi = q.aggregates.flatMap((a, ai) => (a.fn === "ema" ? [] : [ai]));
  const xCol = windowAggs.map((a) => (a.column === undefined ? -1 : columnIndex(spec, a.column, "aggregates.column")));
  const wCol = windowAggs.map((a) => (a.weight === undefined ? -1 : columnIndex(spec, a.weight, "aggregates.weight")));
  /** Per symbol: its retained rows and the window pass over them, continued record after record. */
  const bufs = new Map<string, SymbolState>();
  const op: FeedOperator = { tooLate: 0, snapshot: () => undefined, apply, save, load };

  /** Per symbol its rows and where its window passes stand (so a loaded feed sums on in the same order). */
  function save(): Map<string, SavedSymbol> {
    return new Map([...bufs].map(([s, t]) => [s, { buf: t.buf.save(), slide: t.slide.save() }]));
  }

  function load(state: unknown): void {
    if (!(state instanceof Map)) throw unfitState("rolling", "not a map of symbols");
    bufs.clear();
    for (const [s, saved] of state as Map<string, SavedSymbol>) {
      bufs.set(s, { buf: SeriesBuffer.load(s, kept, nEma, saved.buf), slide: SlideState.load(saved.slide), ks: [], ps: [], inputs: [], inputsOf: undefined });
    }
  }

  /** The window aggregates' inputs over the symbol's columns (rebuilt when the buffer grew into new arrays). */
  function inputsOf(t: SymbolState): AggInput[] {
    if (t.inputsOf !== t.buf.values) {
      const v = t.buf.values;
      t.inputs = windowAggs.map((agg, wi) => ({ agg, x: xCol[wi]! < 0 ? undefined : v[xCol[wi]!], w: wCol[wi]! < 0 ? undefined : v[wCol[wi]!] }));
      t.inputsOf = v;
    }
    return t.inputs;
  }

  function apply(rec: FeedRecord) {
    if (rec.table !== spec.name) return undefined;
    const b = rec.batch;
    const idx = wantedRows(b, symbols);
    const n = idx.length;
    if (n === 0) return undefined;
    // The record's rows grouped by symbol (each symbol resolved once per record).
    const ofSym: (SymbolState | undefined)[] = new Array(b.symbols.length);
    const touched: SymbolState[] = [];
    for (let k = 0; k < n; k++) {
      const i = idx[k]!;
      const si = b.symbolIndex[i]!;
      let t = ofSym[si];
      if (t === undefined) {
        const s = b.symbols[si]!;
        t = bufs.get(s);
        if (t === undefined) bufs.set(s, (t = { buf: new SeriesBuffer(s, kept, nEma), slide: new SlideState(), ks: [], ps: [], inputs: [], inputsOf: undefined }));
        ofSym[si] = t;
        t.ks.length = 0;
        t.ps.length = 0;
        touched.push(t);
      }
      const buf = t.buf;
      if (b.ts[i]! < buf.maxTs - latenessMicros) op.tooLate++;
      const p = buf.insert(b.ts[i]!, rec.lsn, i, b.values, i);
      // A late tick lands among rows the window pass has read: that pass starts over.
      if (p < t.slide.readTo) t.slide.reset();
      // The symbol's rows of this record inserted before at or after p moved one place up.
      for (let x = 0; x < t.ps.length; x++) if (t.ps[x]! >= p) t.ps[x]!++;
      t.ks.push(k);
      t.ps.push(p);
    }
    const out = q.aggregates.map(() => ({ data: new Float64Array(n), valid: new Uint8Array(n) }));
    // Windows in symbol-grouped order (gk: the row's place in the record, gp: its place in the symbol's buffer).
    const gk = new Int32Array(n);
    const gp = new Int32Array(n);
    const start = new Int32Array(n);
    const end = new Int32Array(n);
    const grouped = windowAggs.map(() => ({ data: new Float64Array(n), valid: new Uint8Array(n) }));
    let j = 0;
    for (const t of touched) {
      const { buf, slide, ks, ps } = t;
      const from = j;
      for (let x = 0; x < ks.length; x++) {
        gk[j] = ks[x]!;
        gp[j++] = ps[x]!;
      }
      // In buffer order (a symbol has few rows per record: insertion sort).
      for (let x = from + 1; x < j; x++) {
        for (let y = x; y > from && gp[y - 1]! > gp[y]!; y--) {
          const p = gp[y]!;
          gp[y] = gp[y - 1]!;
          gp[y - 1] = p;
          const k = gk[y]!;
          gk[y] = gk[y - 1]!;
          gk[y - 1] = k;
        }
      }
      if (nEma > 0) {
        // EMA: recompute from the earliest new row (a late tick changes the EMA of every row after it).
        const pmin = gp[from]!;
        q.aggregates.forEach((a, ai) => {
          if (a.fn !== "ema") return;
          const e = buf.extra[emaSlot[ai]!]!;
          const x = buf.values[columnIndex(spec, a.column!, "aggregates.column")]!;
          e.set(ema(x, pmin, buf.n, a.alpha!, pmin > 0 ? e[pmin - 1]! : undefined), pmin);
          for (let m = from; m < j; m++) {
            out[ai]!.data[gk[m]!] = e[gp[m]!]!;
            out[ai]!.valid[gk[m]!] = 1;
          }
        });
      }
      for (let m = from; m < j; m++) {
        const p = gp[m]!;
        end[m] = p + 1;
        start[m] = "rows" in q.window ? Math.max(0, p + 1 - q.window.rows) : upperBound(buf.ts, buf.ts[p]! - q.window.micros, 0, p + 1);
      }
      if (windowAggs.length > 0) slideRange(inputsOf(t), start, end, from, j, grouped, slide);
      // Keep what a tick up to `lateness` behind the newest can still need: its window, and the EMA row before it.
      const cutoff = buf.maxTs - latenessMicros;
      // Nothing to drop while the first row is still inside the window of a tick at the cutoff (the searches are skipped).
      if ("rows" in q.window ? buf.n <= q.window.rows : buf.ts[0]! > cutoff - q.window.micros) continue;
      const lb = lowerBound(buf.ts, cutoff, 0, buf.n);
      let drop = "rows" in q.window ? Math.max(0, lb - (q.window.rows - 1)) : upperBound(buf.ts, cutoff - q.window.micros, 0, buf.n);
      if (nEma > 0) drop = Math.min(drop, Math.max(0, lb - 1));
      slide.shift(buf.dropFront(drop));
    }
    windowAi.forEach((ai, wi) => {
      const { data, valid } = grouped[wi]!;
      const o = out[ai]!;
      for (let m = 0; m < n; m++) {
        o.data[gk[m]!] = data[m]!;
        o.valid[gk[m]!] = valid[m]!;
      }
    });
    return tickTable(fields, rec, idx, cols, out.map((o, ai) => (nullable[ai] ? o : { data: o.data })));
  }
  return op;
}
