// bars: OHLCV per symbol and time bucket, from the group partials of
// barAggregates (hot rows in RAM, cold ones pushed down to ClickHouse), with
// empty buckets filled as the query asks.
import type { Aggregate, BarsQuery } from "../../../protocols/query.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { compareStrings } from "../symorder.js";
import type { OutColumn, OutTable } from "../output.js";
import { bucketStart } from "../partials.js";
import type { GroupTable } from "../partials.js";
import { fieldsOf, planError } from "./fields.js";

/** Largest number of buckets a filled bars query may produce per symbol. */
export const MAX_FILL_BUCKETS = 10_000_000;

const agg = (fn: Aggregate["fn"], column: string | undefined, weight?: string): Aggregate => ({ fn, column, weight, alpha: undefined, as: fn });

/** The group-by aggregates a bars query computes: open, high, low, close, volume, count, vwap, then the query's extra aggregates. */
export function barAggregates(q: BarsQuery): Aggregate[] {
  return [agg("first", q.price), agg("max", q.price), agg("min", q.price), agg("last", q.price), agg("sum", q.size), agg("count", undefined), agg("vwap", q.price, q.size), ...(q.aggregates ?? [])];
}

/** Aggregates of barAggregates before the query's extra ones. */
const BAR_AGGS = 7;

/** OHLCV bars from the partials of `barAggregates` grouped by symbol and bucket, with empty buckets filled as asked. */
export function barsOp(q: BarsQuery, spec: TableSpec, t: GroupTable, listed: readonly string[] | undefined): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  const b = q.bucketMicros;
  const fill = q.fill !== "none";
  const first = bucketStart(q.t0, b);
  const nb = Math.ceil((q.t1 - first) / b);
  if (fill && nb > MAX_FILL_BUCKETS) throw planError(`query field fill: ${q.fill} would make ${nb} buckets per symbol (limit ${MAX_FILL_BUCKETS}); narrow t0/t1 or use fill "none"`);
  const groups = t.groups();
  // Symbols by id, not by name: a Set of names added to per group cost as much as the bars themselves.
  const held = new Uint8Array(t.names.length);
  for (let i = 0; i < groups.length; i++) held[t.sym[groups[i]!]!] = 1;
  const present = t.names.filter((_, id) => held[id] === 1);
  const symbols = [...new Set([...present, ...(fill && listed !== undefined ? listed : [])])].sort(compareStrings);
  const idOf = new Map(t.names.map((name, id) => [name, id]));
  const cap = fill ? symbols.length * nb : groups.length;
  const sym = new Int32Array(cap);
  const ts = new Float64Array(cap);
  const ohlc = [new Float64Array(cap), new Float64Array(cap), new Float64Array(cap), new Float64Array(cap)] as const;
  const vol = new Float64Array(cap);
  const cnt = new Float64Array(cap);
  const vw = new Float64Array(cap);
  const ok = new Uint8Array(cap);
  const vwOk = new Uint8Array(cap);
  // Extra aggregates: null in filled (empty) buckets.
  const extra = (q.aggregates ?? []).map(() => new Float64Array(cap).fill(Number.NaN));
  // The bar aggregates' fields, read directly (GroupTable.value per field and group cost more than the rest of the loop).
  const gn = t.n;
  const [open, high, low, close, volume, pw, w] = [t.col(0, 3), t.col(1, 0), t.col(2, 0), t.col(3, 3), t.col(4, 0), t.col(6, 0), t.col(6, 1)];
  let n = 0;
  let gi = 0;
  symbols.forEach((name, si) => {
    let prevClose = Number.NaN;
    let next = first;
    const empty = (upTo: number): void => {
      if (!fill) return;
      for (let bt = next; bt < upTo; bt += b, n++) {
        sym[n] = si;
        ts[n] = bt;
        const v = q.fill === "zero" ? 0 : q.fill === "previous" ? prevClose : Number.NaN;
        for (const col of ohlc) col[n] = v;
        ok[n] = v === v ? 1 : 0;
      }
    };
    const id = idOf.get(name) ?? -1;
    while (gi < groups.length && t.sym[groups[gi]!] === id) {
      const g = groups[gi++]!;
      const bk = t.bucket[g]!;
      empty(bk);
      sym[n] = si;
      ts[n] = bk;
      const some = gn[g]! !== 0;
      ohlc[0][n] = some ? open[g]! : Number.NaN;
      ohlc[1][n] = some ? high[g]! : Number.NaN;
      ohlc[2][n] = some ? low[g]! : Number.NaN;
      ohlc[3][n] = some ? close[g]! : Number.NaN;
      vol[n] = some ? volume[g]! : Number.NaN;
      cnt[n] = gn[g]!;
      vw[n] = w[g]! !== 0 ? pw[g]! / w[g]! : Number.NaN;
      vwOk[n] = vw[n] === vw[n] ? 1 : 0;
      for (let k = 0; k < extra.length; k++) extra[k]![n] = t.value(BAR_AGGS + k, g);
      ok[n] = 1;
      prevClose = ohlc[3][n]!;
      next = bk + b;
      n++;
    }
    empty(first + nb * b);
  });
  const nullOhlc = fields[2]!.nullable;
  const cut = <T extends Float64Array | Int32Array | Uint8Array>(a: T): T => a.subarray(0, n) as T;
  const columns: OutColumn[] = [
    { field: fields[0]!, data: cut(sym) },
    { field: fields[1]!, data: cut(ts) },
    ...ohlc.map((d, i): OutColumn => (nullOhlc ? { field: fields[2 + i]!, data: cut(d), valid: cut(ok) } : { field: fields[2 + i]!, data: cut(d) })),
    { field: fields[6]!, data: cut(vol) },
    { field: fields[7]!, data: cut(cnt) },
    { field: fields[8]!, data: cut(vw), valid: cut(vwOk) },
    ...extra.map((col, k): OutColumn => {
      const data = cut(col);
      return { field: fields[9 + k]!, data, valid: Uint8Array.from(data, (x) => (x === x ? 1 : 0)) };
    }),
  ];
  return { rows: n, symbols, columns };
}
