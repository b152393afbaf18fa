// One chunk of a series: all columns of up to `cap` rows in a single
// ArrayBuffer (one allocation per chunk, column views at aligned offsets).
// Rows [0, len) are live; a chunk is grown (tail only), shifted or truncated in place.
import type { ColumnSpec, ValueType } from "../../protocols/tablespec.js";
import { valueWidth } from "../codec/tickbatch.js";
import type { ValueArray } from "../codec/tickbatch.js";

/** Bytes per row of the internal columns: ts (f64) + lsn (f64) + rowInRecord (i32). */
export const INTERNAL_ROW_BYTES = 20;

/**
 * Where each column lives inside a chunk buffer, as a per-row byte offset
 * (buffer offset = offset * cap). Wide columns first, so every view is aligned.
 */
export class ColumnLayout {
  readonly types: readonly ValueType[];
  readonly ncols: number;
  /** Bytes of one row across all columns (ts, lsn, row and values). */
  readonly rowBytes: number;
  readonly rowOffset: number;
  readonly valueOffsets: readonly number[];

  constructor(columns: readonly ColumnSpec[]) {
    this.types = columns.map((c) => c.type);
    this.ncols = columns.length;
    const offsets = new Array<number>(columns.length).fill(0);
    let at = 16; // ts at 0, lsn at 8
    const place = (width: number) => {
      columns.forEach((c, j) => {
        if (valueWidth(c.type) === width) {
          offsets[j] = at;
          at += width;
        }
      });
    };
    place(8);
    this.rowOffset = at;
    at += 4;
    place(4);
    place(1);
    this.valueOffsets = offsets;
    this.rowBytes = at;
  }
}

function valueView(type: ValueType, buffer: ArrayBuffer, byteOffset: number, length: number): ValueArray {
  switch (type) {
    case "float64":
    case "int64":
      return new Float64Array(buffer, byteOffset, length);
    case "float32":
      return new Float32Array(buffer, byteOffset, length);
    case "int32":
      return new Int32Array(buffer, byteOffset, length);
    case "bool":
      return new Uint8Array(buffer, byteOffset, length);
  }
}

/** Column arrays of a chunk's rows. */
export interface ChunkColumns {
  readonly ts: Float64Array;
  readonly lsn: Float64Array;
  readonly row: Int32Array;
  readonly values: readonly ValueArray[];
}

export class Chunk {
  /** Storage: exactly cap * layout.rowBytes bytes (for a borrowed chunk, the memory its views share). */
  buffer: ArrayBuffer;
  /**
   * False for a chunk whose columns are views into memory it shares with
   * others (a loaded snapshot's, adopted rather than copied): its buffer never
   * goes back to the allocator; it is freed when the last chunk viewing it is.
   */
  owned = true;
  /** Bytes this chunk accounts for: its buffer's, or a borrowed chunk's share (its rows). */
  bytes: number;
  cap: number;
  len = 0;
  ts: Float64Array;
  lsn: Float64Array;
  row: Int32Array;
  readonly values: ValueArray[];

  /** `buffer` must be exactly cap * layout.rowBytes bytes (ChunkAllocator recycles them by size). */
  constructor(layout: ColumnLayout, cap: number, buffer: ArrayBuffer) {
    this.cap = cap;
    this.buffer = buffer;
    this.bytes = buffer.byteLength;
    this.ts = new Float64Array(buffer, 0, cap);
    this.lsn = new Float64Array(buffer, 8 * cap, cap);
    this.row = new Int32Array(buffer, layout.rowOffset * cap, cap);
    const values = new Array<ValueArray>(layout.ncols);
    for (let j = 0; j < layout.ncols; j++) {
      values[j] = valueView(layout.types[j]!, buffer, layout.valueOffsets[j]! * cap, cap);
    }
    this.values = values;
  }

  /**
   * A full chunk over `cols` (views of equal length, adopted, not copied).
   * Its capacity is its length: a row inserted into it grows or splits it
   * into owned storage first, so nothing is ever written past its views.
   */
  static borrowed(layout: ColumnLayout, cols: ChunkColumns): Chunk {
    const c = Object.create(Chunk.prototype) as Chunk;
    const n = cols.ts.length;
    c.buffer = cols.ts.buffer as ArrayBuffer;
    c.owned = false;
    c.bytes = n * layout.rowBytes;
    c.cap = n;
    c.len = n;
    c.ts = cols.ts;
    c.lsn = cols.lsn;
    c.row = cols.row;
    (c as { values: ValueArray[] }).values = [...cols.values];
    return c;
  }

  /** Copies rows [0, len) into `next` (a fresh, larger chunk) and takes over its storage. */
  moveInto(next: Chunk): void {
    const n = this.len;
    next.ts.set(this.ts.subarray(0, n));
    next.lsn.set(this.lsn.subarray(0, n));
    next.row.set(this.row.subarray(0, n));
    for (let j = 0; j < this.values.length; j++) next.values[j]!.set(this.values[j]!.subarray(0, n));
    this.buffer = next.buffer;
    this.owned = next.owned;
    this.bytes = next.bytes;
    this.cap = next.cap;
    this.ts = next.ts;
    this.lsn = next.lsn;
    this.row = next.row;
    for (let j = 0; j < this.values.length; j++) this.values[j] = next.values[j]!;
  }

  /** Moves rows [off, len) one place right; the caller fills row `off` and bumps `len`. Requires len < cap. */
  shiftRight(off: number): void {
    const n = this.len;
    if (off >= n) return;
    this.ts.copyWithin(off + 1, off, n);
    this.lsn.copyWithin(off + 1, off, n);
    this.row.copyWithin(off + 1, off, n);
    const vals = this.values;
    for (let j = 0; j < vals.length; j++) vals[j]!.copyWithin(off + 1, off, n);
  }

  /** Removes rows [from, to), closing the gap. */
  removeRows(from: number, to: number): void {
    const n = this.len;
    if (to < n) {
      this.ts.copyWithin(from, to, n);
      this.lsn.copyWithin(from, to, n);
      this.row.copyWithin(from, to, n);
      const vals = this.values;
      for (let j = 0; j < vals.length; j++) vals[j]!.copyWithin(from, to, n);
    }
    this.len = n - (to - from);
  }
}

/** Copies row `i` of `src` to row `k` of `dst` (does not touch `len`). */
export function copyRow(src: Chunk, i: number, dst: Chunk, k: number): void {
  dst.ts[k] = src.ts[i]!;
  dst.lsn[k] = src.lsn[i]!;
  dst.row[k] = src.row[i]!;
  const sv = src.values;
  const dv = dst.values;
  for (let j = 0; j < sv.length; j++) dv[j]![k] = sv[j]![i]!;
}

/** First index in ts[lo, hi) with ts[i] >= t. */
export function lowerBoundIn(ts: Float64Array, lo: number, hi: number, t: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in ts[lo, hi) with ts[i] > t. */
export function upperBoundIn(ts: Float64Array, lo: number, hi: number, t: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
