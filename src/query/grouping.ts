// Group partials of some shards (bars, groupBy): hot rows in RAM read in one
// synchronous step with P/H, and below the horizon one pushed-down GROUP BY over
// every shard's cold slice when the cold store takes SQL (otherwise stitched
// rows). Used by the engine for its own shards and by an owner answering a fan-out part; the
// partial rows travel as columns (GroupRows) and combine exactly on arrival.
import type { Aggregate } from "../../protocols/query.js";
import { loadHotPieces, loadSeries } from "./load.js";
import type { LoadRequest } from "./plan.js";
import { addColdPartials, coldPartialsSql, hotPartials, packedKeys } from "./partials.js";
import type { GroupTable } from "./partials.js";
import type { ColdSource } from "./source.js";

export interface GroupSpec {
  readonly aggs: readonly Aggregate[];
  readonly bucketMicros: number | undefined;
  readonly bySymbol: boolean;
}

/** Adds the partials of `req`'s shards over [t0, t1) to `t`; returns the load's notes and cold row count. */
export async function groupPartials(t: GroupTable, req: LoadRequest, g: GroupSpec, cold: ColdSource | undefined, signal: AbortSignal | undefined): Promise<{ notes: string[]; coldRows: number }> {
  if (cold?.sql === undefined) {
    const l = await loadSeries(req, cold, signal);
    hotPartials(t, req.spec, l.series, g.bucketMicros, g.bySymbol);
    return { notes: l.notes, coldRows: l.coldRows };
  }
  const sql = cold.sql.bind(cold);
  const hot = loadHotPieces(req);
  hotPartials(t, req.spec, hot.series, g.bucketMicros, g.bySymbol);
  if (hot.coldSlices.length > 0) {
    const packed = packedKeys(hot.coldSlices);
    addColdPartials(t, await sql(coldPartialsSql(hot.coldSlices, req.t0, req.t1, g.aggs, g.bucketMicros, g.bySymbol, packed), signal), packed);
  }
  return { notes: [], coldRows: 0 };
}

/** A GroupTable's rows as plain columns (the wire form of a part's partials). */
export interface GroupRows {
  readonly names: readonly string[];
  readonly size: number;
  readonly sym: Int32Array;
  readonly bucket: Float64Array;
  readonly n: Float64Array;
  /** Field columns in the table's slot order (the same aggregates give the same order). */
  readonly arrs: readonly Float64Array[];
}

export function groupRowsOf(t: GroupTable): GroupRows {
  return { names: t.names, size: t.size, sym: t.sym.subarray(0, t.size), bucket: t.bucket.subarray(0, t.size), n: t.n.subarray(0, t.size), arrs: t.arrs.map((a) => a.subarray(0, t.size)) };
}

/** Appends another node's partial rows to `t` (groups() combines equal keys). */
export function addGroupRows(t: GroupTable, r: GroupRows): void {
  if (r.arrs.length !== t.arrs.length) throw new Error(`group partials carry ${r.arrs.length} field columns, the query needs ${t.arrs.length}`);
  t.reserve(r.size);
  const ids = r.names.map((name) => t.symbolId(name));
  for (let i = 0; i < r.size; i++) {
    const row = t.add(ids[r.sym[i]!]!, r.bucket[i]!, r.n[i]!);
    for (let a = 0; a < r.arrs.length; a++) t.arrs[a]![row] = r.arrs[a]![i]!;
  }
}
