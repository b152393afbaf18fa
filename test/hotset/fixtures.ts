// Shared helpers of the hot-set unit tests: table specs, TickBatch builders and
// an independent oracle (plain arrays sorted by (symbol, ts, lsn, row)).
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { TickBatch, ValueArray } from "../../src/codec/tickbatch.js";
import { allocValueArray } from "../../src/codec/tickbatch.js";
import { compareSymbols } from "../../src/hotset/index.js";
import type { HotTable } from "../../src/hotset/index.js";

/** trades-like: price, size (float64). */
export const TRADES: TableSpec = parseTableSpec({
  name: "trades",
  columns: [
    { name: "price", type: "float64" },
    { name: "size", type: "float64" },
  ],
});

/** Every value type, to exercise the chunk layout (alignment of 8/4/1-byte columns). */
export const MIXED: TableSpec = parseTableSpec({
  name: "mixed",
  columns: [
    { name: "flag", type: "bool" },
    { name: "qty", type: "int32" },
    { name: "px", type: "float64" },
    { name: "f", type: "float32" },
    { name: "n", type: "int64" },
  ],
});

/** One input row: symbol, timestamp (µs), values in spec order. */
export interface InRow {
  readonly sym: string;
  readonly ts: number;
  readonly values: readonly number[];
}

/** A row as the store holds it. */
export interface StoredRow extends InRow {
  readonly lsn: number;
  readonly row: number;
}

/** A TickBatch of `rows` (values coerced by the column type). */
export function batchOf(spec: TableSpec, rows: readonly InRow[]): TickBatch {
  const symbols: string[] = [];
  const index = new Map<string, number>();
  const symbolIndex = new Uint32Array(rows.length);
  const ts = new Float64Array(rows.length);
  const values: ValueArray[] = spec.columns.map((c) => allocValueArray(c.type, rows.length));
  rows.forEach((r, i) => {
    let s = index.get(r.sym);
    if (s === undefined) {
      s = symbols.length;
      index.set(r.sym, s);
      symbols.push(r.sym);
    }
    symbolIndex[i] = s;
    ts[i] = r.ts;
    values.forEach((col, j) => (col[i] = r.values[j] ?? 0));
  });
  return { rows: rows.length, symbols, symbolIndex, ts, values };
}

/** Shorthand for trades rows: [sym, ts, price, size?]. */
export function trades(...rows: readonly (readonly [string, number, number, number?])[]): TickBatch {
  return batchOf(
    TRADES,
    rows.map(([sym, ts, price, size]) => ({ sym, ts, values: [price, size ?? 1] })),
  );
}

/** Rows of records as the store should tag them: record i (lsn lsns[i]) row r gets (lsn, r). */
export function tag(records: readonly { readonly lsn: number; readonly rows: readonly InRow[] }[]): StoredRow[] {
  return records.flatMap((rec) => rec.rows.map((r, i) => ({ ...r, lsn: rec.lsn, row: i })));
}

export function compareStored(a: StoredRow, b: StoredRow): number {
  return compareSymbols(a.sym, b.sym) || a.ts - b.ts || a.lsn - b.lsn || a.row - b.row;
}

/** The oracle: rows sorted by (symbol, ts, lsn, row), values rounded through the column types. */
export function sortedOracle(spec: TableSpec, rows: readonly StoredRow[]): StoredRow[] {
  return rows
    .map((r) => ({ ...r, values: r.values.map((v, j) => coerce(spec.columns[j]!.type, v)) }))
    .sort(compareStored);
}

function coerce(type: string, v: number): number {
  const col = allocValueArray(type as TableSpec["columns"][number]["type"], 1);
  col[0] = v;
  return col[0]!;
}

/** Everything the table holds, via the public export, as StoredRows. */
export function storedRows(table: HotTable): StoredRow[] {
  const { batch, lsn, rowInRecord } = table.toTickBatch();
  const out: StoredRow[] = [];
  for (let i = 0; i < batch.rows; i++) {
    out.push({
      sym: batch.symbols[batch.symbolIndex[i]!]!,
      ts: batch.ts[i]!,
      lsn: lsn[i]!,
      row: rowInRecord[i]!,
      values: batch.values.map((v) => v[i]!),
    });
  }
  return out;
}

/** Timestamps of one symbol's series, in stored order. */
export function tsOf(table: HotTable, sym: string): number[] {
  const s = table.seriesOf(sym);
  if (s === undefined) return [];
  return s.slices(0, s.length).flatMap((sl) => Array.from(sl.tsMicros));
}
