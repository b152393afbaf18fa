// Whole-table exports in canonical (symbol, ts, lsn, row) order: one TickBatch
// for sinks/tests and a content digest for comparing a recovered store with a
// replayed one. Both copy chunk slices in bulk; there is no per-row work.
import { createHash } from "node:crypto";
import { allocValueArray } from "../codec/tickbatch.js";
import type { TickBatch } from "../codec/tickbatch.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { SeriesEntry } from "./series.js";

/** What an export reads of a table (HotTable has it; the export does not import the store back). */
export interface ExportSource {
  readonly spec: TableSpec;
  readonly rowCount: number;
  entries(): Iterable<SeriesEntry>;
}

/** A table's rows in (symbol, ts, lsn, row) order; `lsn`/`rowInRecord` are per row of `batch`. */
export interface SortedRows {
  readonly batch: TickBatch;
  readonly lsn: Float64Array;
  readonly rowInRecord: Int32Array;
}

/** Orders symbols by Unicode code point (the same order as their UTF-8 bytes, as ClickHouse sorts). */
export function compareSymbols(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Series with at least one row, by symbol. */
function nonEmptyBySymbol(table: ExportSource): SeriesEntry[] {
  return [...table.entries()].filter((e) => e.series.length > 0).sort((x, y) => compareSymbols(x.symbol, y.symbol));
}

export function sortedRows(table: ExportSource): SortedRows {
  const n = table.rowCount;
  const entries = nonEmptyBySymbol(table);
  const symbolIndex = new Uint32Array(n);
  const ts = new Float64Array(n);
  const lsn = new Float64Array(n);
  const rowInRecord = new Int32Array(n);
  const values = table.spec.columns.map((c) => allocValueArray(c.type, n));
  let at = 0;
  entries.forEach((e, s) => {
    const start = at;
    for (const slice of e.series.slices(0, e.series.length)) {
      ts.set(slice.tsMicros, at);
      lsn.set(slice.lsn, at);
      rowInRecord.set(slice.rowInRecord, at);
      for (let j = 0; j < values.length; j++) values[j]!.set(slice.values[j]!, at);
      at += slice.rows;
    }
    symbolIndex.fill(s, start, at);
  });
  return {
    batch: { rows: n, symbols: entries.map((e) => e.symbol), symbolIndex, ts, values },
    lsn,
    rowInRecord,
  };
}

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * sha256 over the column types, then per symbol (code point order): its UTF-8
 * bytes, its row count, and its ts, lsn, rowInRecord and value columns as
 * native-endian bytes. Chunk layout does not matter: the hash sees one stream.
 */
export function digestRows(table: ExportSource): string {
  const hash = createHash("sha256");
  hash.update(table.spec.columns.map((c) => c.type).join(",") + "\n");
  const head = new Float64Array(2);
  for (const e of nonEmptyBySymbol(table)) {
    const sym = Buffer.from(e.symbol, "utf8");
    head[0] = sym.length;
    head[1] = e.series.length;
    hash.update(bytesOf(head));
    hash.update(sym);
    const slices = e.series.slices(0, e.series.length);
    for (const s of slices) hash.update(bytesOf(s.tsMicros));
    for (const s of slices) hash.update(bytesOf(s.lsn));
    for (const s of slices) hash.update(bytesOf(s.rowInRecord));
    for (let j = 0; j < table.spec.columns.length; j++) {
      for (const s of slices) hash.update(bytesOf(s.values[j]!));
    }
  }
  return hash.digest("hex");
}
