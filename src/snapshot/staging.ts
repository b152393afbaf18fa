// Snapshot chunks gathered straight from the hot set's own chunks, without an
// intermediate export: rows are copied once, into a staging buffer per chunk
// (its columns at fixed offsets for `cap` rows), which a writer hands to the
// snapshot thread (a shared buffer of a pool: see snapshotwriter.ts) and gets
// back for the next chunk. On these
// machines first-touched memory costs ~2.5 ms per MB (page faults), so a
// snapshot that copied 10 M ticks into fresh arrays twice (export, then frames)
// spent most of its time faulting; a few recycled buffers touch none.
// writeFrame (columnar.ts) turns a staged chunk into format 2's frame. Pure.
import { allocValueArray } from "../codec/tickbatch.js";
import type { ValueArray } from "../codec/tickbatch.js";
import type { ColumnSpec } from "../../protocols/tablespec.js";
import type { ColumnSlice, SeamRow } from "../hotset/index.js";
import { KIND_ROWS, KIND_SEAM, pad8, writeFrame } from "./columnar.js";
import type { Segment } from "./columnar.js";

/** One chunk's rows in a staging buffer (shared with the snapshot thread, or transferable), with its run table. */
export interface StagedChunk {
  readonly kind: number;
  readonly buffer: ArrayBufferLike;
  /** Rows the buffer has room for (its column offsets follow from it). */
  readonly cap: number;
  readonly rows: number;
  /** Symbol id, row count pairs, in row order. */
  readonly runs: Uint32Array;
}

const widthOf = (c: ColumnSpec): number => allocValueArray(c.type, 0).BYTES_PER_ELEMENT;

/** Bytes of a staging buffer for `cap` rows: ts, lsn (f64), rowInRecord (i32) and each value column, each padded to 8. */
export function stagingBytes(columns: readonly ColumnSpec[], cap: number): number {
  let n = 16 * cap + pad8(4 * cap);
  for (const c of columns) n += pad8(widthOf(c) * cap);
  return n;
}

/** Column views of the first `rows` rows of a staging buffer of `cap` rows. */
export function stagingViews(columns: readonly ColumnSpec[], buffer: ArrayBufferLike, cap: number, rows = cap): Segment {
  let at = 16 * cap + pad8(4 * cap);
  const values = columns.map((c) => {
    const T = allocValueArray(c.type, 0).constructor as new (b: ArrayBufferLike, o: number, n: number) => ValueArray;
    const v = new T(buffer, at, rows);
    at += pad8(widthOf(c) * cap);
    return v;
  });
  return { ts: new Float64Array(buffer, 0, rows), lsn: new Float64Array(buffer, 8 * cap, rows), row: new Int32Array(buffer, 16 * cap, rows), values };
}

/** A staged chunk as a format-2 frame, written into `out` when given (see writeFrame). */
export function frameOfStaged(columns: readonly ColumnSpec[], c: StagedChunk, out?: ArrayBuffer): Uint8Array {
  return writeFrame(c.kind, columns, c.runs, [stagingViews(columns, c.buffer, c.cap, c.rows)], c.rows, out);
}

/**
 * Fills chunks of `chunkRows` rows from series slices added in symbol order,
 * handing each full one to `emit`; `take` gives an empty staging buffer of
 * stagingBytes(columns, chunkRows). Every add copies its rows before it
 * returns, so the slices may change right after.
 */
export class ChunkStager {
  private buffer: ArrayBufferLike | undefined;
  private views: Segment | undefined;
  private rows = 0;
  private runs: number[] = [];
  private readonly sizes: number[] = [];
  private total = 0;

  constructor(
    private readonly columns: readonly ColumnSpec[],
    private readonly chunkRows: number,
    private readonly take: () => ArrayBufferLike,
    private readonly emit: (c: StagedChunk) => void,
  ) {}

  /** Rows of symbol `sym` (its rows must follow the previous ones of the same symbol, if any). */
  add(sym: number, slice: ColumnSlice): void {
    for (let from = 0; from < slice.rows; ) {
      if (this.buffer === undefined) {
        this.buffer = this.take();
        this.views = stagingViews(this.columns, this.buffer, this.chunkRows);
      }
      const n = Math.min(slice.rows - from, this.chunkRows - this.rows);
      const v = this.views!;
      const at = this.rows;
      v.ts.set(slice.tsMicros.subarray(from, from + n), at);
      v.lsn.set(slice.lsn.subarray(from, from + n), at);
      v.row.set(slice.rowInRecord.subarray(from, from + n), at);
      for (let j = 0; j < v.values.length; j++) v.values[j]!.set(slice.values[j]!.subarray(from, from + n) as never, at);
      const last = this.runs.length - 2;
      if (last >= 0 && this.runs[last] === sym) this.runs[last + 1]! += n;
      else this.runs.push(sym, n);
      this.rows += n;
      from += n;
      if (this.rows === this.chunkRows) this.flush();
    }
  }

  /** Emits the last, partial chunk of rows (if any), then the seam chunk of `seam` (symbol id, row; in symbol order); returns the manifest's figures. */
  finish(seam: readonly { readonly sym: number; readonly row: SeamRow }[]): { chunkRows: number[]; seamRows: number; rows: number } {
    if (this.rows > 0) this.flush();
    const cap = seam.length;
    const buffer = new ArrayBuffer(stagingBytes(this.columns, cap));
    const v = stagingViews(this.columns, buffer, cap);
    seam.forEach(({ row }, i) => {
      v.ts[i] = row.tsMicros;
      v.lsn[i] = row.lsn;
      v.row[i] = row.rowInRecord;
      for (let j = 0; j < v.values.length; j++) v.values[j]![i] = row.values[j]!;
    });
    const runs = new Uint32Array(2 * cap);
    seam.forEach(({ sym }, i) => {
      runs[2 * i] = sym;
      runs[2 * i + 1] = 1;
    });
    this.emit({ kind: KIND_SEAM, buffer, cap, rows: cap, runs });
    return { chunkRows: [...this.sizes], seamRows: cap, rows: this.total };
  }

  private flush(): void {
    this.emit({ kind: KIND_ROWS, buffer: this.buffer!, cap: this.chunkRows, rows: this.rows, runs: Uint32Array.from(this.runs) });
    this.sizes.push(this.rows);
    this.total += this.rows;
    this.buffer = undefined;
    this.views = undefined;
    this.rows = 0;
    this.runs = [];
  }
}
