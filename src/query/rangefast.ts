// The bulk read's fast path: a range in symbol order over hot rows only, as
// one synchronous copy from the hot chunks into the result columns. The
// generic path flattens each symbol (with the lsn/row columns a range never
// returns), builds row pointers and gathers: three copies where one will do.
// Taken only when no shard's horizon reaches into [t0, t1), so the seam rule
// adds no cold row; every other case (and time order, desc) goes the generic
// way. A differential test keeps the two equal.
import type { RangeQuery } from "../../protocols/query.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { allocValueArray } from "../codec/tickbatch.js";
import { fieldsOf, selectedColumns } from "./ops.js";
import type { OutTable } from "./output.js";
import type { HotShard } from "./source.js";
import { symbolsInOrder, symbolsListed } from "./symorder.js";

interface Run {
  readonly name: string;
  readonly shard: HotShard;
  readonly id: number;
  readonly lo: number;
  hi: number;
}

/** The result as tables of at most `chunkRows` rows (at least one), or undefined where the generic path must answer. */
export function fastRangeOp(q: RangeQuery, spec: TableSpec, shards: readonly HotShard[], chunkRows: number): OutTable[] | undefined {
  const oneSymbol = q.symbols !== undefined && q.symbols.length === 1;
  if ((q.sort !== "symbol" && !oneSymbol) || q.order === "desc") return undefined;
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
  const limit = q.limit ?? Infinity;
  let n = 0;
  for (const r of runs) {
    r.hi = Math.min(r.hi, r.lo + Math.max(0, limit - n));
    n += r.hi - r.lo;
  }
  while (runs.length > 0 && runs.at(-1)!.hi === runs.at(-1)!.lo) runs.pop();
  const cols = selectedColumns(spec, q.columns);
  const fields = fieldsOf(q, spec, undefined);
  // Tables of at most chunkRows rows: memory the allocator can hand back for the next
  // chunk, where one array per column of the whole result is fresh pages every time.
  const tables: OutTable[] = [];
  let k = 0;
  let from = runs[0]?.lo ?? 0;
  let done = 0;
  do {
    const rows = Math.min(n - done, chunkRows);
    const sym = new Int32Array(rows);
    const ts = new Float64Array(rows);
    const values = cols.map((j) => allocValueArray(spec.columns[j]!.type, rows));
    const symbols: string[] = [];
    let at = 0;
    while (at < rows) {
      const r = runs[k]!;
      const take = Math.min(r.hi - from, rows - at);
      const start = at;
      for (const slice of r.shard.table.series(r.id)!.slices(from, from + take)) {
        ts.set(slice.tsMicros, at);
        cols.forEach((j, c) => values[c]!.set(slice.values[j]! as never, at));
        at += slice.rows;
      }
      sym.fill(symbols.length, start, at);
      symbols.push(r.name);
      from += take;
      if (from === r.hi) from = runs[++k]?.lo ?? 0;
    }
    tables.push({ rows, symbols, columns: [{ field: fields[0]!, data: sym }, { field: fields[1]!, data: ts }, ...cols.map((_, c) => ({ field: fields[2 + c]!, data: values[c]! }))] });
    done += rows;
  } while (done < n);
  return tables;
}
