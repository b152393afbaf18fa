// lastBy's load (an empty range at t1 with one row of look-behind) as flat
// columns: per symbol the row a merge of its hot rows and seam row would put
// last before t1, one row per symbol in name order, no per-symbol series. A
// fan-out lastBy moves and merges these instead of series: a part's reply
// carries them as they are (same frame as series of one row each), and the
// coordinator picks its answer from them (ops/by.ts lastByRows). The profile
// of a 3-node lastBy put most of the coordinator's and owners' CPU in building,
// encoding and decoding ~1,000 one-row series (closures, subarrays, toSeries).
import { allocValueArray } from "../codec/tickbatch.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { lastHotBefore } from "../hotset/index.js";
import type { SeamRow } from "../hotset/index.js";
import { plan } from "./plan.js";
import type { LoadRequest, ShardPlan } from "./plan.js";
import { toSeries } from "./series.js";
import type { SymbolSeries } from "./series.js";
import { symbolsInOrder, symbolsListed } from "./symorder.js";

/**
 * Rows of several symbols back to back, sorted by (symbol name, ts, lsn, row):
 * `symbols` gives each symbol's name and row count in order. Fresh arrays or
 * views of a decoded reply, never views of hot memory (held across awaits).
 */
export interface PartRows {
  readonly symbols: readonly (readonly [string, number])[];
  readonly ts: Float64Array;
  readonly lsn: Float64Array;
  readonly row: Float64Array;
  /** Value columns in spec order; undefined for a column not read. */
  readonly values: readonly (ValueArray | undefined)[];
}

/**
 * The lastBy rows of `req`'s shards from RAM, copied (safe to hold across an
 * await); undefined when the request is not lastBy's shape or a shard needs
 * ClickHouse for it (then loadSeries answers). Symbols without a row before
 * t1 are left out (a symbol asked for that no shard holds included).
 */
export function loadLastRows(req: LoadRequest): PartRows | undefined {
  if (!isLastShape(req)) return undefined;
  const plans = plan(req);
  return plans.some(needsCold) ? undefined : lastRows(req, plans);
}

/** lastBy's shape: an empty range at t1 with one row of look-behind. */
export const isLastShape = (req: Pick<LoadRequest, "t0" | "t1" | "behind" | "ahead">): boolean => req.behind === 1 && req.ahead === 0 && req.t0 === req.t1;

export const needsCold = (p: ShardPlan): boolean => p.needRange || p.needBefore || p.needAfter;

/**
 * Per symbol the row before t1 that a merge of its hot rows and seam row would
 * put last (the later by (ts, lsn, row)), written into one set of columns
 * shared by every symbol: no per-symbol copies and merges. `plans` need no
 * ClickHouse read. Same result as the general path for this shape (the query
 * oracle tests cover both).
 */
export function lastRows(req: LoadRequest, plans: readonly ShardPlan[]): PartRows {
  const shards = plans.map((p) => p.shard);
  const candidates = req.symbols === undefined ? symbolsInOrder(shards) : symbolsListed(req.symbols, req.spec, shards);
  // Each shard's table read once, synchronously (nothing here awaits, so none can change meanwhile).
  const tables = shards.map((sh) => sh.table);
  const n = candidates.length;
  const ts = new Float64Array(n);
  const lsn = new Float64Array(n);
  const row = new Float64Array(n);
  const cols: number[] = [];
  req.wanted.forEach((w, j) => w && cols.push(j));
  const values: (ValueArray | undefined)[] = req.spec.columns.map((c, j) => (req.wanted[j] ? allocValueArray(c.type, n) : undefined));
  const out = cols.map((j) => values[j]!);
  const symbols: (readonly [string, number])[] = [];
  const t1 = req.t1;
  // Each symbol's last row from its table's board (hotset/lastboard.ts) when t1 is past its last hot row.
  const boards = tables.map((t) => t.lastBoard());
  let k = 0;
  for (let r = 0; r < n; r++) {
    const c = candidates[r]!;
    const id = c.id;
    const b = boards[c.shard]!;
    if (b.current(id) && b.hotTs[id]! < t1 && (b.winSeam[id] === 0 || plans[c.shard]!.useSeam)) {
      if (b.has[id] === 0) continue;
      ts[k] = b.winTs[id]!;
      lsn[k] = b.winLsn[id]!;
      row[k] = b.winRow[id]!;
      b.copyValues(id, cols, out, k);
      symbols.push([c.name, 1]);
      k++;
      continue;
    }
    const table = tables[c.shard]!;
    const s = table.series(id);
    if (s === undefined) continue;
    const seam: SeamRow | null = plans[c.shard]!.useSeam ? table.seam(id) : null;
    const i = lastHotBefore(s, t1, seam);
    if (i >= 0) {
      ts[k] = s.readRow(i, cols, out, k);
      lsn[k] = s.lsnAt(i);
      row[k] = s.rowInRecordAt(i);
    } else if (seam !== null) {
      ts[k] = seam.tsMicros;
      lsn[k] = seam.lsn;
      row[k] = seam.rowInRecord;
      for (let v = 0; v < cols.length; v++) out[v]![k] = seam.values[cols[v]!]!;
    } else continue;
    symbols.push([c.name, 1]);
    k++;
  }
  const cut = <T extends ValueArray>(v: T): T => v.subarray(0, k) as T;
  return { symbols, ts: cut(ts), lsn: cut(lsn), row: cut(row), values: values.map((v) => (v === undefined ? undefined : cut(v))) };
}

/** Per-symbol series viewing `rows`, with [t0, t1) bounds. */
export function seriesOfRows(rows: PartRows, req: Pick<LoadRequest, "t0" | "t1" | "behind" | "ahead">): SymbolSeries[] {
  const series: SymbolSeries[] = [];
  let from = 0;
  for (const [symbol, n] of rows.symbols) {
    const sub = <T extends ValueArray>(v: T): T => v.subarray(from, from + n) as T;
    series.push(toSeries(symbol, { n, ts: sub(rows.ts), lsn: sub(rows.lsn), row: sub(rows.row), values: rows.values.map((v) => (v === undefined ? undefined : sub(v))) }, req.t0, req.t1, req.behind, req.ahead));
    from += n;
  }
  return series;
}
