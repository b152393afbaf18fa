// lastBy / firstBy: one row per symbol, the last (first) in [t0, t1). byOp
// works on stitched series; fastByOp answers from the hot set alone when no
// cold row can win.
import type { ByQuery } from "../../../protocols/query.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { lastHotBefore } from "../../hotset/index.js";
import type { HotTable, SeamRow } from "../../hotset/index.js";
import { allocValueArray } from "../../codec/tickbatch.js";
import type { ValueArray } from "../../codec/tickbatch.js";
import type { RowRefs } from "../order.js";
import { iota } from "../output.js";
import type { OutColumn, OutTable } from "../output.js";
import type { SymbolSeries } from "../series.js";
import type { HotShard } from "../source.js";
import type { PartRows } from "../lastrows.js";
import { compareStrings } from "../symorder.js";
import { symbolsInOrder, symbolsListed } from "../symorder.js";
import { fieldsOf, selectedColumns } from "./fields.js";
import { rowsTable } from "./rows.js";

/** lastBy: the last row per symbol in [t0, t1); firstBy: the first. Symbols without one are left out. */
export function byOp(q: ByQuery, spec: TableSpec, series: readonly SymbolSeries[]): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  const sym: number[] = [];
  const idx: number[] = [];
  series.forEach((s, si) => {
    // Loaded with look-behind (lastBy) or look-ahead (firstBy) of one row around an empty range.
    const i = q.op === "lastBy" ? s.lo - 1 : s.hi;
    if (i >= 0 && i < s.n && s.ts[i]! >= q.t0 && s.ts[i]! < q.t1) {
      sym.push(si);
      idx.push(i);
    }
  });
  const refs: RowRefs = { n: sym.length, sym: Int32Array.from(sym), idx: Int32Array.from(idx) };
  return rowsTable(fields, spec, selectedColumns(spec, q.columns), series, refs, [], []);
}

/**
 * lastBy/firstBy straight from the hot series, when no cold row can win: lastBy
 * with t1 above every shard's horizon (the seam cache row stands for the cold
 * side), firstBy with t0 at or above it. Returns undefined when ClickHouse is needed.
 */
export function fastByOp(q: ByQuery, spec: TableSpec, shards: readonly HotShard[]): OutTable | undefined {
  for (const sh of shards) {
    const H = sh.table.horizonMicros;
    if (H > 0 && (q.op === "lastBy" ? q.t1 <= H : q.t0 < H)) return undefined;
  }
  const cols = selectedColumns(spec, q.columns);
  const candidates = q.symbols === undefined ? symbolsInOrder(shards) : symbolsListed(q.symbols, spec, shards);
  // Each shard's table read once: a node's shards reach it through their runtime's state (nothing here awaits, so it cannot change).
  const tables = shards.map((sh) => sh.table);
  // lastBy: each symbol's last row from its table's board, one sweep of dense arrays (hotset/lastboard.ts).
  const boards = q.op === "lastBy" ? tables.map((t) => t.lastBoard()) : undefined;
  const n = candidates.length;
  const names: string[] = [];
  const ts = new Float64Array(n);
  const values = cols.map((j) => allocValueArray(spec.columns[j]!.type, n));
  const t0 = q.t0;
  const t1 = q.t1;
  let k = 0;
  for (let r = 0; r < n; r++) {
    const c = candidates[r]!;
    const id = c.id;
    let t: number;
    const b = boards === undefined ? undefined : boards[c.shard]!;
    // The board answers when t1 is past the series' last hot row (lowerBound(t1) - 1 is that row).
    if (b !== undefined && b.current(id) && b.hotTs[id]! < t1) {
      if (b.has[id] === 0) continue;
      t = b.winTs[id]!;
      if (!(t >= t0 && t < t1)) continue;
      b.copyValues(id, cols, values, k);
    } else {
      t = rowFromSeries(q, tables[c.shard]!, id, cols, values, k);
      if (!(t >= t0 && t < t1)) continue;
    }
    ts[k] = t;
    names.push(c.name);
    k++;
  }
  const fields = fieldsOf(q, spec, undefined);
  return {
    rows: k,
    symbols: names,
    columns: [
      { field: fields[0]!, data: iota(k) },
      { field: fields[1]!, data: ts.subarray(0, k) },
      ...cols.map((_, c): OutColumn => ({ field: fields[2 + c]!, data: values[c]!.subarray(0, k) as OutColumn["data"] })),
    ],
  };
}

/**
 * The symbol's lastBy/firstBy row read from its series: its values written at
 * `values[v][k]` (a row the caller leaves out is overwritten or cut off), its
 * ts returned (NaN without one).
 */
function rowFromSeries(q: ByQuery, table: HotTable, id: number, cols: readonly number[], values: readonly ValueArray[], k: number): number {
  const s = table.series(id);
  if (s === undefined) return Number.NaN;
  let i: number;
  let seam: SeamRow | null = null;
  if (q.op === "lastBy") {
    seam = table.seam(id);
    i = lastHotBefore(s, q.t1, seam);
  } else {
    i = s.lowerBound(q.t0);
    if (i >= s.length) i = -1;
  }
  if (i >= 0) return s.readRow(i, cols, values, k);
  if (seam === null) return Number.NaN;
  for (let v = 0; v < cols.length; v++) values[v]![k] = seam.values[cols[v]!]!;
  return seam.tsMicros;
}

/**
 * lastBy over flat rows (a fan-out's own buckets and its parts' replies, see
 * ../lastrows.ts): per symbol its last row before t1, kept when at or after t0.
 * Same answer as byOp over the union of the same rows as series (a symbol in
 * two inputs: the later input's row, as unionSeries keeps the later series).
 */
export function lastByRows(q: ByQuery, spec: TableSpec, parts: readonly PartRows[]): OutTable {
  const names: string[] = [];
  const from: number[] = [];
  const at: number[] = [];
  parts.forEach((p, k) => {
    let end = 0;
    for (const [name, n] of p.symbols) {
      const start = end;
      end += n;
      let i = end - 1;
      while (i >= start && !(p.ts[i]! < q.t1)) i--;
      if (i < start || !(p.ts[i]! >= q.t0)) continue;
      names.push(name);
      from.push(k);
      at.push(i);
    }
  });
  // Stable: of equal names the later input stays last, and is kept.
  const order = Array.from(names.keys()).sort((a, b) => compareStrings(names[a]!, names[b]!) || a - b);
  const pick: number[] = [];
  for (let r = 0; r < order.length; r++) if (r + 1 === order.length || names[order[r + 1]!] !== names[order[r]!]) pick.push(order[r]!);
  const cols = selectedColumns(spec, q.columns);
  const n = pick.length;
  const ts = new Float64Array(n);
  const values = cols.map((j) => allocValueArray(spec.columns[j]!.type, n));
  pick.forEach((r, k) => {
    const p = parts[from[r]!]!;
    ts[k] = p.ts[at[r]!]!;
    cols.forEach((j, c) => (values[c]![k] = p.values[j]![at[r]!]!));
  });
  const fields = fieldsOf(q, spec, undefined);
  return {
    rows: n,
    symbols: pick.map((r) => names[r]!),
    columns: [
      { field: fields[0]!, data: iota(n) },
      { field: fields[1]!, data: ts },
      ...cols.map((_, c): OutColumn => ({ field: fields[2 + c]!, data: values[c]! as OutColumn["data"] })),
    ],
  };
}
