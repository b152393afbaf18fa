// The bulk read's fast path: a range over hot rows only, copied straight from
// the hot chunks into the result columns. The generic path flattens each
// symbol (with lsn/row columns a range never returns), builds row pointers and
// gathers: three copies where one will do. Symbol order concatenates each
// symbol's rows; time order merges them on (ts, lsn, row), the tenant's total
// order, with a heap over the symbols. Taken only when no shard's horizon
// reaches into [t0, t1), so the seam rule adds no cold row; descending order
// and every other case go the generic way. A differential test keeps the two equal.
import type { RangeQuery } from "../../protocols/query.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { allocValueArray } from "../codec/tickbatch.js";
import type { ValueArray } from "../codec/tickbatch.js";
import type { ColumnSlice } from "../hotset/index.js";
import { fieldsOf, selectedColumns } from "./ops/index.js";
import type { OutField, OutTable } from "./output.js";
import type { HotShard } from "./source.js";
import { symbolsInOrder, symbolsListed } from "./symorder.js";

interface Run {
  readonly name: string;
  readonly shard: HotShard;
  readonly id: number;
  readonly lo: number;
  hi: number;
}

/** Columns of one result table being filled. */
class Chunk {
  readonly sym: Int32Array;
  readonly ts: Float64Array;
  readonly values: ValueArray[];

  constructor(
    readonly rows: number,
    spec: TableSpec,
    private readonly cols: readonly number[],
  ) {
    this.sym = new Int32Array(rows);
    this.ts = new Float64Array(rows);
    this.values = cols.map((j) => allocValueArray(spec.columns[j]!.type, rows));
  }

  table(fields: readonly OutField[], symbols: readonly string[]): OutTable {
    return { rows: this.rows, symbols, columns: [{ field: fields[0]!, data: this.sym }, { field: fields[1]!, data: this.ts }, ...this.cols.map((_, c) => ({ field: fields[2 + c]!, data: this.values[c]! }))] };
  }
}

/** The result as tables of at most `chunkRows` rows (at least one), or undefined where the generic path must answer. */
export function fastRangeOp(q: RangeQuery, spec: TableSpec, shards: readonly HotShard[], chunkRows: number, admit?: (rows: number, rowBytes: number) => void): OutTable[] | undefined {
  if (q.order === "desc") return undefined;
  // Below a horizon the answer needs ClickHouse's rows (the seam rule).
  if (q.t0 < q.t1 && shards.some((s) => s.table.horizonMicros > 0 && q.t0 < s.table.horizonMicros)) return undefined;
  const runs: Run[] = [];
  for (const ref of q.symbols === undefined ? symbolsInOrder(shards) : symbolsListed(q.symbols, spec, shards)) {
    const shard = shards[ref.shard]!;
    const s = shard.table.series(ref.id);
    if (s === undefined) continue;
    const lo = s.lowerBound(q.t0);
    const hi = Math.max(lo, s.lowerBound(q.t1));
    if (hi > lo) runs.push({ name: ref.name, shard, id: ref.id, lo, hi });
  }
  const cols = selectedColumns(spec, q.columns);
  const fields = fieldsOf(q, spec, undefined);
  if (admit !== undefined) {
    // The result's size is known before a row is copied: a query over its quotas stops here.
    let rows = 0;
    for (const r of runs) rows += r.hi - r.lo;
    admit(Math.min(rows, q.limit ?? Infinity), 4 + 8 + 8 * cols.length);
  }
  // Tables of at most chunkRows rows: memory the allocator can hand back for the next
  // chunk, where one array per column of the whole result is fresh pages every time.
  return q.sort === "symbol" || runs.length <= 1 ? bySymbol(runs, q.limit ?? Infinity, chunkRows, spec, cols, fields) : byTime(runs, q.limit ?? Infinity, chunkRows, spec, cols, fields);
}

function bySymbol(runs: Run[], limit: number, chunkRows: number, spec: TableSpec, cols: readonly number[], fields: readonly OutField[]): OutTable[] {
  let n = 0;
  for (const r of runs) {
    r.hi = Math.min(r.hi, r.lo + Math.max(0, limit - n));
    n += r.hi - r.lo;
  }
  while (runs.length > 0 && runs.at(-1)!.hi === runs.at(-1)!.lo) runs.pop();
  const tables: OutTable[] = [];
  let k = 0;
  let from = runs[0]?.lo ?? 0;
  let done = 0;
  do {
    const chunk = new Chunk(Math.min(n - done, chunkRows), spec, cols);
    const symbols: string[] = [];
    let at = 0;
    while (at < chunk.rows) {
      const r = runs[k]!;
      const take = Math.min(r.hi - from, chunk.rows - at);
      const start = at;
      for (const slice of r.shard.table.series(r.id)!.slices(from, from + take)) {
        chunk.ts.set(slice.tsMicros, at);
        cols.forEach((j, c) => chunk.values[c]!.set(slice.values[j]! as never, at));
        at += slice.rows;
      }
      chunk.sym.fill(symbols.length, start, at);
      symbols.push(r.name);
      from += take;
      if (from === r.hi) from = runs[++k]?.lo ?? 0;
    }
    tables.push(chunk.table(fields, symbols));
    done += chunk.rows;
  } while (done < n);
  return tables;
}

/** K-way merge of the runs on (ts, lsn, row); the dictionary of every table is the runs' names. */
function byTime(runs: Run[], limit: number, chunkRows: number, spec: TableSpec, cols: readonly number[], fields: readonly OutField[]): OutTable[] {
  const m = runs.length;
  const slices: ColumnSlice[][] = runs.map((r) => r.shard.table.series(r.id)!.slices(r.lo, r.hi));
  const names = runs.map((r) => r.name);
  let n = 0;
  for (const r of runs) n += r.hi - r.lo;
  n = Math.min(n, limit);
  // Per run: the slice and offset of its next row, and that row's key.
  const si = new Int32Array(m);
  const off = new Int32Array(m);
  const kTs = new Float64Array(m);
  const kLsn = new Float64Array(m);
  const kRow = new Float64Array(m);
  // The slice holding each run's next row (moves on when a run finishes a slice).
  const cur: ColumnSlice[] = slices.map((list) => list[0]!);
  const load = (r: number): void => {
    const s = cur[r]!;
    const o = off[r]!;
    kTs[r] = s.tsMicros[o]!;
    kLsn[r] = s.lsn[o]!;
    kRow[r] = s.rowInRecord[o]!;
  };
  const less = (a: number, b: number): boolean => kTs[a]! < kTs[b]! || (kTs[a] === kTs[b] && (kLsn[a]! < kLsn[b]! || (kLsn[a] === kLsn[b] && kRow[a]! < kRow[b]!)));
  const heap = new Int32Array(m);
  let size = 0;
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) return;
      const c = l + 1 < size && less(heap[l + 1]!, heap[l]!) ? l + 1 : l;
      if (!less(heap[c]!, heap[i]!)) return;
      const t = heap[i]!;
      heap[i] = heap[c]!;
      heap[c] = t;
      i = c;
    }
  };
  for (let r = 0; r < m; r++) {
    load(r);
    heap[size++] = r;
  }
  for (let i = (size >> 1) - 1; i >= 0; i--) down(i);
  const tables: OutTable[] = [];
  let done = 0;
  const ncols = cols.length;
  do {
    const chunk = new Chunk(Math.min(n - done, chunkRows), spec, cols);
    const { sym, ts, values } = chunk;
    const rows = chunk.rows;
    for (let k = 0; k < rows; k++) {
      const r = heap[0]!;
      const s = cur[r]!;
      const o = off[r]!;
      sym[k] = r;
      ts[k] = kTs[r]!;
      for (let c = 0; c < ncols; c++) values[c]![k] = s.values[cols[c]!]![o]!;
      if (o + 1 < s.rows) {
        off[r] = o + 1;
        load(r);
      } else if (si[r]! + 1 < slices[r]!.length) {
        off[r] = 0;
        si[r] = si[r]! + 1;
        cur[r] = slices[r]![si[r]!]!;
        load(r);
      } else heap[0] = heap[--size]!;
      down(0);
    }
    tables.push(chunk.table(fields, names));
    done += chunk.rows;
  } while (done < n);
  return tables;
}
