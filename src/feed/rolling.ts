// Rolling aggregates per tick (sum, avg, min, max, count, stddev, vwap over a
// time or row window; ema over the series): each tick gets the values the
// batch rolling query gives it over the ticks up to its record. The window
// math is the query engine's (slidingAggregates, ema) run on the symbol's
// retained rows; a late tick is shifted into place and its window computed there.
// The window pass of each symbol continues from record to record (SlideState):
// a record costs its own ticks, not its ticks' whole windows again.
import type { RollingQuery } from "../../protocols/query.js";
import type { TableSpec, ValueType } from "../../protocols/tablespec.js";
import { SlideState, columnIndex, ema, lowerBound, selectedColumns, slideRange, upperBound, upperBoundFrom } from "../query/index.js";
import type { AggInput, OutField } from "../query/index.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { SeriesBuffer } from "./buffer.js";
import type { SavedSeries } from "./buffer.js";
import { tickTable, unfitState, wantedRows } from "./operator.js";
import type { FeedOperator, FeedRecord } from "./operator.js";

/** One symbol's rows and its window pass. */
interface SymbolState {
  readonly buf: SeriesBuffer;
  readonly slide: SlideState;
  /** Where the last window computed started (a time window's next start is searched from there). */
  start: number;
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
      bufs.set(s, { buf: SeriesBuffer.load(s, kept, nEma, saved.buf), slide: SlideState.load(saved.slide), start: 0, inputs: [], inputsOf: undefined });
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
    // The record's rows grouped by symbol: per symbol (in order of first appearance) a chain of its rows in record
    // order (first[], next[]), in record-wide typed arrays. Then each symbol's rows are inserted and their windows
    // computed in one go, while its buffer is in cache: with 1,000 symbols a record touches 1,000 buffers, and a
    // second pass over them (inserting all rows first) paid every cache miss twice.
    const slot = new Int32Array(b.symbols.length).fill(-1);
    const symOf: number[] = [];
    const first = new Int32Array(Math.min(n, b.symbols.length));
    const last = new Int32Array(first.length);
    const next = new Int32Array(n).fill(-1);
    for (let k = 0; k < n; k++) {
      const si = b.symbolIndex[idx[k]!]!;
      let ti = slot[si]!;
      if (ti < 0) {
        ti = slot[si] = symOf.length;
        symOf.push(si);
        first[ti] = k;
      } else next[last[ti]!] = k;
      last[ti] = k;
    }
    const out = q.aggregates.map(() => ({ data: new Float64Array(n), valid: new Uint8Array(n) }));
    // Windows in symbol-grouped order (gk: the row's place in the record, gp: its place in the symbol's buffer).
    const gk = new Int32Array(n);
    const gp = new Int32Array(n);
    const start = new Int32Array(n);
    const end = new Int32Array(n);
    const grouped = windowAggs.map(() => ({ data: new Float64Array(n), valid: new Uint8Array(n) }));
    let j = 0;
    for (let ti = 0; ti < symOf.length; ti++) {
      const s = b.symbols[symOf[ti]!]!;
      let t = bufs.get(s);
      if (t === undefined) bufs.set(s, (t = { buf: new SeriesBuffer(s, kept, nEma), slide: new SlideState(), start: 0, inputs: [], inputsOf: undefined }));
      const { buf, slide } = t;
      const from = j;
      for (let k = first[ti]!; k >= 0; k = next[k]!) {
        const i = idx[k]!;
        if (b.ts[i]! < buf.maxTs - latenessMicros) op.tooLate++;
        const p = buf.insert(b.ts[i]!, rec.lsn, i, b.values, i);
        if (p < buf.n - 1) {
          // A late tick lands among rows the window pass has read: that pass starts over.
          if (p < slide.readTo) slide.reset();
          // The symbol's rows of this record inserted before at or after p moved one place up.
          for (let x = from; x < j; x++) if (gp[x]! >= p) gp[x]!++;
        }
        gk[j] = k;
        gp[j++] = p;
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
        if ("rows" in q.window) start[m] = Math.max(0, p + 1 - q.window.rows);
        else {
          // Searched forward from the last start when the answer lies after it (a window moves forward), else from 0.
          const target = b.ts[idx[gk[m]!]!]! - q.window.micros;
          const h = Math.min(t.start, p + 1);
          start[m] = t.start = h > 0 && buf.ts[h - 1]! > target ? upperBound(buf.ts, target, 0, h) : upperBoundFrom(buf.ts, target, h, p + 1);
        }
      }
      if (windowAggs.length > 0) slideRange(inputsOf(t), start, end, from, j, grouped, slide);
      // Keep what a tick up to `lateness` behind the newest can still need: its window, and the EMA row before it.
      const cutoff = buf.maxTs - latenessMicros;
      // Nothing to drop while the first row is still inside the window of a tick at the cutoff (the searches are skipped).
      if ("rows" in q.window ? buf.n <= q.window.rows : buf.firstTs > cutoff - q.window.micros) continue;
      // A time window without EMA needs only the front's search (forward from 0: the rows to drop are few).
      const lb = "rows" in q.window || nEma > 0 ? lowerBound(buf.ts, cutoff, 0, buf.n) : 0;
      let drop = "rows" in q.window ? Math.max(0, lb - (q.window.rows - 1)) : upperBoundFrom(buf.ts, cutoff - q.window.micros, 0, buf.n);
      if (nEma > 0) drop = Math.min(drop, Math.max(0, lb - 1));
      const dropped = buf.dropFront(drop);
      slide.shift(dropped);
      t.start = Math.max(0, t.start - dropped);
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
