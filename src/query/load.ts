// Seam stitching: builds each symbol's SymbolSeries over [t0, t1) plus
// look-behind/ahead rows as the exact union ClickHouse{ts < H, lsn <= P} ∪
// RAM{ts >= H or lsn > P} of every shard touched. P and H are read with the hot
// rows in one synchronous step (copies when anything is awaited afterwards), so
// an eviction running meanwhile cannot drop or double a row.
import { bucketOf } from "../../protocols/routing.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { DecodedRows } from "../clickhouse/index.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { allocValueArray } from "../codec/tickbatch.js";
import type { HotShard, ColdSlice, ColdSource } from "./source.js";
import type { SeamRow, Series as HotSeries } from "../hotset/index.js";
import { EMPTY_ROWS, before, flattenSlices, mergeRows, seamRows, toSeries } from "./series.js";
import type { FlatRows, SymbolSeries } from "./series.js";

export interface LoadRequest {
  readonly tenant: string;
  readonly spec: TableSpec;
  readonly shards: readonly HotShard[];
  /** undefined = every symbol the shards (and the cold store) hold. */
  readonly symbols: readonly string[] | undefined;
  readonly t0: number;
  readonly t1: number;
  /** Rows needed before t0 (per symbol). */
  readonly behind: number;
  /** Rows needed from t1 on (per symbol). */
  readonly ahead: number;
  /** Per value column (spec order): read it? */
  readonly wanted: readonly boolean[];
  /** Most rows a cold range read may return before the query is refused for its memory quota (absent: no cap). */
  readonly maxColdRows?: number;
  /**
   * Hot rows may come back as views of the hot set's memory instead of copies. A view is valid only until
   * the event loop turns: a record applied or an eviction moves rows in place. Only for a caller that uses
   * the rows before its next await on anything but this load (a fan-out waiting for remote parts, or a
   * join loading its other table from ClickHouse, held views across that wait and read moved rows).
   */
  readonly views?: boolean;
}

export interface Loaded {
  /** Per symbol, sorted by symbol name. */
  readonly series: SymbolSeries[];
  /** Caveats for the result metadata (e.g. cold rows left out without a cold store). */
  readonly notes: string[];
  /** Rows that came from the cold store. */
  readonly coldRows: number;
}

export interface ShardPlan {
  readonly shard: HotShard;
  readonly slice: ColdSlice;
  readonly symbols: readonly string[] | undefined;
  readonly needRange: boolean;
  readonly needBefore: boolean;
  readonly needAfter: boolean;
  readonly useSeam: boolean;
}

/** Plans and runs the load; `signal` aborts cold reads. */
export async function loadSeries(req: LoadRequest, cold: ColdSource | undefined, signal?: AbortSignal): Promise<Loaded> {
  const plans = plan(req);
  // lastBy's shape (an empty range at t1 with one row behind) that no shard needs ClickHouse for.
  if (req.behind === 1 && req.ahead === 0 && req.t0 === req.t1 && plans.every((p) => !(p.needRange || p.needBefore || p.needAfter))) {
    return { series: lastRowsHot(req, plans), notes: [], coldRows: 0 };
  }
  const anyCold = cold !== undefined && plans.some((p) => p.needRange || p.needBefore || p.needAfter);
  // Hot part first, synchronously: copies if a cold read will be awaited or the caller holds the rows across a wait.
  const hot = plans.map((p) => hotPart(req, p, anyCold || req.views !== true));
  const notes: string[] = [];
  let coldRows = 0;
  const coldParts = await Promise.all(
    plans.map(async (p): Promise<Map<string, FlatRows>[]> => {
      if (!(p.needRange || p.needBefore || p.needAfter)) return [];
      if (cold === undefined) {
        notes.push(
          `table ${req.spec.name} shard ${p.shard.bucket}: rows before the horizon ${new Date(p.slice.horizonMicros / 1000).toISOString()} (${p.slice.horizonMicros} us) are in ClickHouse, which this engine has no access to; the result holds hot rows only`,
        );
        return [];
      }
      const parts: Promise<DecodedRows>[] = [];
      if (p.needRange) parts.push(req.maxColdRows === undefined ? cold.range(p.slice, req.t0, req.t1, signal) : cold.range(p.slice, req.t0, req.t1, signal, req.maxColdRows));
      if (p.needBefore) parts.push(cold.edge(p.slice, "before", Math.min(req.t0, p.slice.horizonMicros), req.behind, signal));
      if (p.needAfter) parts.push(cold.edge(p.slice, "after", req.t1, req.ahead, signal));
      const rows = await Promise.all(parts);
      for (const r of rows) coldRows += r.batch.rows;
      return rows.map((r) => bySymbol(r, req.wanted));
    }),
  );
  const out = new Map<string, FlatRows[]>();
  const add = (sym: string, rows: FlatRows): void => {
    const list = out.get(sym);
    if (list === undefined) out.set(sym, [rows]);
    else list.push(rows);
  };
  plans.forEach((_, i) => {
    for (const [sym, rows] of hot[i]!) add(sym, rows);
    for (const m of coldParts[i]!) for (const [sym, rows] of m) add(sym, rows);
  });
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
 * Per symbol the row before t1 that a merge of its hot rows and seam row would
 * put last (the later by (ts, lsn, row)), written into one set of columns
 * shared by every symbol: no per-symbol copies and merges. Same result as the
 * general path for this shape (the query oracle tests cover both).
 */
function lastRowsHot(req: LoadRequest, plans: readonly ShardPlan[]): SymbolSeries[] {
  const picks: { sym: string; s: HotSeries | undefined; i: number; seam: SeamRow | null }[] = [];
  const seen = new Set<string>();
  for (const p of plans) {
    const table = p.shard.table;
    const visit = (id: number, sym: string): void => {
      const s = table.series(id);
      if (s === undefined) return;
      let i = s.lowerBound(req.t1) - 1;
      let seam = p.useSeam ? table.seam(id) : null;
      if (seam !== null && i >= 0 && !before(s.tsAt(i), s.lsnAt(i), s.rowInRecordAt(i), seam.tsMicros, seam.lsn, seam.rowInRecord)) seam = null;
      else if (seam !== null) i = -1;
      if (i < 0 && seam === null) return;
      picks.push({ sym, s, i, seam });
      seen.add(sym);
    };
    if (p.symbols === undefined) {
      const syms = table.symbols();
      for (let id = 0; id < syms.length; id++) visit(id, syms[id]!);
    } else {
      for (const sym of p.symbols) {
        const id = table.lookup(sym);
        if (id !== undefined) visit(id, sym);
      }
    }
  }
  // A symbol asked for that no shard holds gets an empty series, as in the general path.
  if (req.symbols !== undefined) for (const sym of req.symbols) if (!seen.has(sym)) picks.push({ sym, s: undefined, i: -1, seam: null });
  picks.sort((a, b) => compareStrings(a.sym, b.sym));
  const n = picks.length;
  const ts = new Float64Array(n);
  const lsn = new Float64Array(n);
  const row = new Float64Array(n);
  const values = req.spec.columns.map((c, j) => (req.wanted[j] ? allocValueArray(c.type, n) : undefined));
  const series: SymbolSeries[] = [];
  picks.forEach(({ sym, s, i, seam }, k) => {
    if (s === undefined) return void series.push(toSeries(sym, emptyRows(req), req.t0, req.t1, 1, 0));
    const hot = i >= 0;
    ts[k] = hot ? s.tsAt(i) : seam!.tsMicros;
    lsn[k] = hot ? s.lsnAt(i) : seam!.lsn;
    row[k] = hot ? s.rowInRecordAt(i) : seam!.rowInRecord;
    values.forEach((v, j) => {
      if (v !== undefined) v[k] = hot ? s.valueAt(j, i) : seam!.values[j]!;
    });
    const one = <T extends ValueArray>(v: T): T => v.subarray(k, k + 1) as T;
    series.push(toSeries(sym, { n: 1, ts: one(ts), lsn: one(lsn), row: one(row), values: values.map((v) => (v === undefined ? undefined : one(v))) }, req.t0, req.t1, 1, 0));
  });
  return series;
}

export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function emptyRows(req: LoadRequest): FlatRows {
  const e = EMPTY_ROWS(req.wanted.length);
  return { ...e, values: req.spec.columns.map((c, j) => (req.wanted[j] ? allocValueArray(c.type, 0) : undefined)) };
}

export function plan(req: LoadRequest): ShardPlan[] {
  const { spec, t0, t1 } = req;
  return req.shards.map((shard) => {
    const table = shard.table;
    const H = table.horizonMicros;
    const P = table.persistedLsn;
    const symbols = req.symbols?.filter((s) => bucketOf(s, spec.shards) === shard.bucket);
    const none = symbols !== undefined && symbols.length === 0;
    const slice: ColdSlice = { tenant: req.tenant, spec, shard: shard.bucket, persistedLsn: P, horizonMicros: H, symbols };
    // Nothing was ever evicted (H = 0): the cold side of the rule is empty.
    const hasCold = H > 0 && !none;
    const needRange = hasCold && t0 < H && t0 < t1;
    // One row behind a range starting at or above H is the seam cache row.
    const useSeam = hasCold && req.behind === 1 && t0 >= H;
    const needBefore = hasCold && req.behind > 0 && !useSeam;
    const needAfter = hasCold && req.ahead > 0 && t1 < H;
    return { shard, slice, symbols: none ? [] : symbols, needRange, needBefore, needAfter, useSeam };
  });
}

function hotPart(req: LoadRequest, p: ShardPlan, copy: boolean): Map<string, FlatRows> {
  const table = p.shard.table;
  const out = new Map<string, FlatRows>();
  const types = req.spec.columns.map((c) => allocValueArray(c.type, 0));
  const template = req.wanted.map((w, j) => (w ? types[j] : undefined));
  const one = (id: number, sym: string): void => {
    const s = table.series(id);
    if (s === undefined) return;
    const lo = s.lowerBound(req.t0);
    const hi = s.lowerBound(req.t1);
    const from = Math.max(0, lo - req.behind);
    const to = Math.min(s.length, hi + req.ahead);
    const parts: FlatRows[] = [];
    if (to > from) parts.push(flattenSlices(s.slices(from, to), req.wanted, copy || p.useSeam));
    if (p.useSeam) {
      const seam = table.seam(id);
      if (seam !== null) parts.push(seamRows(seam, template, types));
    }
    if (parts.length === 0) return;
    out.set(sym, parts.length === 1 ? parts[0]! : mergeRows(parts, req.wanted.length));
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
  return out;
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
