// Seam stitching: builds each symbol's SymbolSeries over [t0, t1) plus
// look-behind/ahead rows as the exact union ClickHouse{ts < H, lsn <= P} ∪
// RAM{ts >= H or lsn > P} of every shard touched. P and H are read with the hot
// rows in one synchronous step (copies when anything is awaited afterwards), so
// an eviction running meanwhile cannot drop or double a row.
import type { DecodedRows } from "../clickhouse/index.js";
import type { ColumnSlice } from "../hotset/index.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { allocValueArray } from "../codec/tickbatch.js";
import type { ColdSlice, ColdSource } from "./source.js";
import { isLastShape, lastRows, needsCold, seriesOfRows } from "./lastrows.js";
import { plan } from "./plan.js";
import { compareStrings } from "./symorder.js";
import type { LoadRequest, ShardPlan } from "./plan.js";
import { EMPTY_ROWS, RowArena, flattenCopies, flattenSlices, mergeRows, seamRows, toSeries } from "./series.js";
import type { FlatRows, SymbolSeries } from "./series.js";

export interface Loaded {
  /** Per symbol, sorted by symbol name. */
  readonly series: SymbolSeries[];
  /** Caveats for the result metadata (e.g. cold rows left out without a cold store). */
  readonly notes: string[];
  /** Rows that came from the cold store. */
  readonly coldRows: number;
}

/** Plans and runs the load; `signal` aborts cold reads. */
export async function loadSeries(req: LoadRequest, cold: ColdSource | undefined, signal?: AbortSignal): Promise<Loaded> {
  const plans = plan(req);
  // lastBy's shape (an empty range at t1 with one row behind) that no shard needs ClickHouse for.
  if (isLastShape(req) && !plans.some(needsCold)) {
    return { series: lastRowsHot(req, plans), notes: [], coldRows: 0 };
  }
  const anyCold = cold !== undefined && plans.some(needsCold);
  // Hot part first, synchronously: copies if a cold read will be awaited or the caller holds the rows across a wait.
  const hot = plans.map((p) => hotPart(req, p, anyCold || req.views !== true));
  const notes: string[] = [];
  let coldRows = 0;
  // Below the horizons, one read of each kind for every shard that needs it (their slices OR-ed): a read per
  // shard scanned the whole range once per shard (the sort key does not start with _shard).
  const reads: Promise<DecodedRows>[] = [];
  if (cold === undefined) {
    for (const p of plans.filter(needsCold)) {
      notes.push(
        `table ${req.spec.name} shard ${p.shard.bucket}: rows before the horizon ${new Date(p.slice.horizonMicros / 1000).toISOString()} (${p.slice.horizonMicros} us) are in ClickHouse, which this engine has no access to; the result holds hot rows only`,
      );
    }
  } else {
    const slicesOf = (need: (p: ShardPlan) => boolean): ColdSlice[] => plans.filter(need).map((p) => p.slice);
    const ranged = slicesOf((p) => p.needRange);
    const before = slicesOf((p) => p.needBefore);
    const after = slicesOf((p) => p.needAfter);
    if (ranged.length > 0) reads.push(req.maxColdRows === undefined ? cold.range(ranged, req.t0, req.t1, signal) : cold.range(ranged, req.t0, req.t1, signal, req.maxColdRows));
    // Each shard's look-behind ends at min(t0, its H), its look-ahead at its H: seamWhereAll bounds each slice by its own H.
    if (before.length > 0) reads.push(cold.edge(before, "before", req.t0, req.behind, signal));
    if (after.length > 0) reads.push(cold.edge(after, "after", req.t1, req.ahead, signal));
  }
  const coldParts = (await Promise.all(reads)).map((r) => {
    coldRows += r.batch.rows;
    return bySymbol(r, req.wanted);
  });
  const out = new Map<string, FlatRows[]>();
  const add = (sym: string, rows: FlatRows): void => {
    const list = out.get(sym);
    if (list === undefined) out.set(sym, [rows]);
    else list.push(rows);
  };
  for (const m of coldParts) for (const [sym, rows] of m) add(sym, rows);
  for (const m of hot) for (const [sym, rows] of m) add(sym, rows);
  if (req.symbols !== undefined) for (const s of req.symbols) if (!out.has(s)) out.set(s, []);
  const ncols = req.wanted.length;
  const series: SymbolSeries[] = [];
  for (const sym of [...out.keys()].sort(compareStrings)) {
    const merged = mergeRows(out.get(sym)!, ncols);
    series.push(toSeries(sym, merged.n === 0 ? emptyRows(req) : merged, req.t0, req.t1, req.behind, req.ahead));
  }
  return { series, notes, coldRows };
}

/**
 * Hot rows only, synchronously, as views (use them before any await), plus the
 * cold slices of [t0, t1) that a pushed-down aggregate must cover.
 */
export function loadHotOnly(req: LoadRequest): { series: SymbolSeries[]; coldSlices: ColdSlice[] } {
  const plans = plan(req);
  const hot = plans.map((p) => hotPart(req, { ...p, useSeam: false }, false));
  const out = new Map<string, FlatRows[]>();
  for (const m of hot) {
    for (const [sym, rows] of m) {
      const list = out.get(sym);
      if (list === undefined) out.set(sym, [rows]);
      else list.push(rows);
    }
  }
  const series = [...out.keys()].sort(compareStrings).map((sym) => toSeries(sym, mergeRows(out.get(sym)!, req.wanted.length), req.t0, req.t1, 0, 0));
  return { series, coldSlices: plans.filter((p) => p.needRange).map((p) => p.slice) };
}

/**
 * As loadHotOnly, but each chunk of the hot set is a series of its own, in no
 * order (a symbol may repeat): for consumers that combine by key whatever the
 * order (the aggregate partials). Flattening the chunks copied every column of
 * the range (10 M rows: ~120 ms).
 */
export function loadHotPieces(req: LoadRequest): { series: SymbolSeries[]; coldSlices: ColdSlice[] } {
  const plans = plan(req);
  const series: SymbolSeries[] = [];
  for (const p of plans) for (const [sym, rows] of hotPart(req, { ...p, useSeam: false }, false, true)) series.push(toSeries(sym, rows, req.t0, req.t1, 0, 0));
  return { series, coldSlices: plans.filter((p) => p.needRange).map((p) => p.slice) };
}

/** lastBy's rows from RAM as series, with an empty series for a symbol asked for that no shard holds (as in the general path). */
function lastRowsHot(req: LoadRequest, plans: readonly ShardPlan[]): SymbolSeries[] {
  const series = seriesOfRows(lastRows(req, plans), req);
  if (req.symbols === undefined) return series;
  const held = new Set(series.map((s) => s.symbol));
  const unheld = req.symbols.filter((sym) => !held.has(sym));
  if (unheld.length === 0) return series;
  for (const sym of unheld) series.push(toSeries(sym, emptyRows(req), req.t0, req.t1, 1, 0));
  return series.sort((x, y) => compareStrings(x.symbol, y.symbol));
}

function emptyRows(req: LoadRequest): FlatRows {
  const e = EMPTY_ROWS(req.wanted.length);
  return { ...e, values: req.spec.columns.map((c, j) => (req.wanted[j] ? allocValueArray(c.type, 0) : undefined)) };
}

function hotPart(req: LoadRequest, p: ShardPlan, copy: boolean): Map<string, FlatRows>;
/** `split`: each hot chunk's rows on their own (views; with the seam row apart), as [symbol, rows] pairs. */
function hotPart(req: LoadRequest, p: ShardPlan, copy: false, split: true): [string, FlatRows][];
function hotPart(req: LoadRequest, p: ShardPlan, copy: boolean, split = false): Map<string, FlatRows> | [string, FlatRows][] {
  const table = p.shard.table;
  const out = new Map<string, FlatRows>();
  const pieces: [string, FlatRows][] = [];
  const types = req.spec.columns.map((c) => allocValueArray(c.type, 0));
  const template = req.wanted.map((w, j) => (w ? types[j] : undefined));
  // First each symbol's slices and how many rows they flatten to, then one arena for all of them.
  const picked: { sym: string; id: number; slices: ColumnSlice[] }[] = [];
  let rows = 0;
  let copied = 0;
  const one = (id: number, sym: string): void => {
    const s = table.series(id);
    if (s === undefined) return;
    const lo = s.lowerBound(req.t0);
    const hi = s.lowerBound(req.t1);
    const from = Math.max(0, lo - req.behind);
    const to = Math.min(s.length, hi + req.ahead);
    const slices = to > from ? s.slices(from, to) : [];
    if (slices.length === 0 && !p.useSeam) return;
    picked.push({ sym, id, slices });
    rows += to - from;
    if (!split && flattenCopies(slices, copy || p.useSeam)) copied += to - from;
  };
  if (p.symbols === undefined) {
    const syms = table.symbols();
    for (let id = 0; id < syms.length; id++) one(id, syms[id]!);
  } else {
    for (const sym of p.symbols) {
      const id = table.lookup(sym);
      if (id !== undefined) one(id, sym);
    }
  }
  const arena = new RowArena(rows, copied, template);
  for (const { sym, id, slices } of picked) {
    const parts: FlatRows[] = split ? slices.map((x) => flattenSlices([x], req.wanted, false, arena)) : slices.length > 0 ? [flattenSlices(slices, req.wanted, copy || p.useSeam, arena)] : [];
    if (p.useSeam) {
      const seam = table.seam(id);
      if (seam !== null) parts.push(seamRows(seam, template, types));
    }
    if (split) for (const x of parts) pieces.push([sym, x]);
    else if (parts.length > 0) out.set(sym, parts.length === 1 ? parts[0]! : mergeRows(parts, req.wanted.length));
  }
  return split ? pieces : out;
}

/** Cold rows (sorted by symbol, ts, lsn, row) split into per-symbol views. */
function bySymbol(d: DecodedRows, wanted: readonly boolean[]): Map<string, FlatRows> {
  const out = new Map<string, FlatRows>();
  const b = d.batch;
  const n = b.rows;
  const rowAll = Float64Array.from(d.row);
  let start = 0;
  for (let i = 1; i <= n; i++) {
    if (i < n && b.symbolIndex[i] === b.symbolIndex[start]) continue;
    const sub = <T extends ValueArray>(v: T): T => v.subarray(start, i) as T;
    out.set(b.symbols[b.symbolIndex[start]!]!, {
      n: i - start,
      ts: sub(b.ts),
      lsn: sub(d.lsn),
      row: sub(rowAll),
      values: b.values.map((v, j) => (wanted[j] ? sub(v) : undefined)),
    });
    start = i;
  }
  return out;
}
