// Snapshot data format 2: each chunk is the hot set's own column arrays laid
// end to end, so writing is one copy per byte and loading is a view per column
// and one copy into each series (format 1 went through the WAL's Arrow IPC
// codec, row by row on the way back: seconds per 10 M ticks each way).
//
// A frame: u32 payload length, u32 zero, then the payload (a multiple of 8
// bytes, so every column starts 8-aligned within the data object):
//   u32 kind (1 rows, 2 seam rows), u32 rows, u32 runs, u32 value columns,
//   runs x (u32 symbol id in the manifest's dictionary, u32 row count), pad to 8,
//   ts f64[rows], lsn f64[rows], rowInRecord i32[rows] (pad 8),
//   each value column as its typed array (pad 8).
// Rows of one symbol are consecutive (a run) and in the series' order; a
// symbol may continue in the next chunk. The seam chunk has one run of one row
// per symbol with a seam row. Pure: bytes in, bytes out.
import { allocValueArray } from "../codec/tickbatch.js";
import type { ValueArray } from "../codec/tickbatch.js";
import type { ColumnSpec } from "../../protocols/tablespec.js";
import type { HotTableColumns, SeriesColumns } from "../hotset/index.js";
import { TaggedError } from "../../protocols/tagged.js";

export class SnapshotCorruptError extends TaggedError("SnapshotCorruptError") {}

export const KIND_ROWS = 1;
export const KIND_SEAM = 2;
const FRAME_HEAD = 8;
const CHUNK_HEAD = 16;

/** `n` rounded up to a multiple of 8 (every column starts 8-aligned). */
export const pad8 = (n: number): number => (n + 7) & ~7;

/** A series' slice, or a seam row as arrays of one. */
interface Run extends Segment {
  readonly sym: number;
}

function payloadBytes(columns: readonly ColumnSpec[], runs: number, rows: number): number {
  let n = CHUNK_HEAD + pad8(8 * runs) + 8 * rows + 8 * rows + pad8(4 * rows);
  for (const c of columns) n += pad8(allocValueArray(c.type, 0).BYTES_PER_ELEMENT * rows);
  return n;
}

/** Column arrays of consecutive rows of a frame, copied into it in order. */
export interface Segment {
  readonly ts: Float64Array;
  readonly lsn: Float64Array;
  readonly row: Int32Array;
  readonly values: readonly ValueArray[];
}

/** Bytes of the frame (head included) of `runs` runs and `rows` rows. */
export const frameBytes = (columns: readonly ColumnSpec[], runs: number, rows: number): number => FRAME_HEAD + payloadBytes(columns, runs, rows);

/** One frame of `runs` (rows total): a single allocation, each column copied once. */
function frame(kind: number, columns: readonly ColumnSpec[], runs: readonly Run[], rows: number): Uint8Array {
  const table = new Uint32Array(2 * runs.length);
  runs.forEach((r, i) => {
    table[2 * i] = r.sym;
    table[2 * i + 1] = r.ts.length;
  });
  return writeFrame(kind, columns, table, runs, rows);
}

/**
 * A frame whose run table is `runTable` (symbol id, row count pairs) and whose
 * rows are `segments` end to end, written at the start of `out` when given (it
 * must hold frameBytes(...); the frame is then a view of it) or in a buffer of
 * its own (never Node's shared pool: offset 0, so the Uint32 header view is
 * aligned, and a worker can transfer it whole).
 */
export function writeFrame(kind: number, columns: readonly ColumnSpec[], runTable: ArrayLike<number>, segments: readonly Segment[], rows: number, out?: ArrayBuffer): Uint8Array {
  const nruns = runTable.length / 2;
  const len = payloadBytes(columns, nruns, rows);
  if (out !== undefined && out.byteLength < FRAME_HEAD + len) throw new RangeError(`frame of ${FRAME_HEAD + len} bytes does not fit the ${out.byteLength}-byte buffer`);
  const bytes = out === undefined ? Buffer.allocUnsafeSlow(FRAME_HEAD + len) : new Uint8Array(out, 0, FRAME_HEAD + len);
  const head = new Uint32Array(bytes.buffer, bytes.byteOffset, (FRAME_HEAD + CHUNK_HEAD) / 4 + 2 * nruns);
  head[0] = len;
  head[1] = 0;
  head[2] = kind;
  head[3] = rows;
  head[4] = nruns;
  head[5] = columns.length;
  head.set(runTable, 6);
  let at = FRAME_HEAD + CHUNK_HEAD + 8 * nruns;
  bytes.fill(0, at, FRAME_HEAD + CHUNK_HEAD + pad8(8 * nruns));
  at = FRAME_HEAD + CHUNK_HEAD + pad8(8 * nruns);
  const put = (pick: (r: Segment) => ValueArray | Float64Array | Int32Array, make: (buf: ArrayBuffer, off: number, n: number) => ValueArray | Float64Array | Int32Array, width: number): void => {
    const dst = make(bytes.buffer as ArrayBuffer, bytes.byteOffset + at, rows);
    let k = 0;
    for (const r of segments) {
      const src = pick(r);
      dst.set(src as never, k);
      k += src.length;
    }
    const end = at + width * rows;
    at = FRAME_HEAD + pad8(end - FRAME_HEAD);
    bytes.fill(0, end, at);
  };
  put((r) => r.ts, (b, o, n) => new Float64Array(b, o, n), 8);
  put((r) => r.lsn, (b, o, n) => new Float64Array(b, o, n), 8);
  put((r) => r.row, (b, o, n) => new Int32Array(b, o, n), 4);
  columns.forEach((c, v) => {
    const T = allocValueArray(c.type, 0).constructor as new (b: ArrayBuffer, o: number, n: number) => ValueArray;
    put((r) => r.values[v]!, (b, o, n) => new T(b, o, n), allocValueArray(c.type, 0).BYTES_PER_ELEMENT);
  });
  return bytes;
}

/** Figures the manifest carries about the data. */
export interface ColumnarSummary {
  readonly chunkRows: number[];
  readonly seamRows: number;
  readonly rows: number;
}

/** The frames of `cols`: chunks of up to `chunkRows` rows, then the seam chunk. */
export function* columnarParts(columns: readonly ColumnSpec[], cols: HotTableColumns, chunkRows: number): Generator<Uint8Array, ColumnarSummary, undefined> {
  const sizes: number[] = [];
  let runs: Run[] = [];
  let pending = 0;
  let rows = 0;
  for (let sym = 0; sym < cols.series.length; sym++) {
    const s = cols.series[sym]!;
    const len = s.tsMicros.length;
    for (let from = 0; from < len; ) {
      const to = Math.min(len, from + chunkRows - pending);
      runs.push({ sym, ts: s.tsMicros.subarray(from, to), lsn: s.lsn.subarray(from, to), row: s.rowInRecord.subarray(from, to), values: s.values.map((a) => a.subarray(from, to) as ValueArray) });
      pending += to - from;
      rows += to - from;
      from = to;
      if (pending === chunkRows) {
        yield frame(KIND_ROWS, columns, runs, pending);
        sizes.push(pending);
        runs = [];
        pending = 0;
      }
    }
  }
  if (pending > 0) {
    yield frame(KIND_ROWS, columns, runs, pending);
    sizes.push(pending);
  }
  const seam: Run[] = [];
  cols.series.forEach((s, sym) => {
    const r = s.seam;
    if (r === null) return;
    seam.push({ sym, ts: Float64Array.of(r.tsMicros), lsn: Float64Array.of(r.lsn), row: Int32Array.of(r.rowInRecord), values: columns.map((c, v) => Object.assign(allocValueArray(c.type, 1), { 0: r.values[v]! })) });
  });
  yield frame(KIND_SEAM, columns, seam, seam.length);
  return { chunkRows: sizes, seamRows: seam.length, rows };
}

/** One chunk's header and column views (into the data it was parsed from). */
export interface Chunk {
  readonly kind: number;
  readonly rows: number;
  readonly runs: Uint32Array;
  readonly ts: Float64Array;
  readonly lsn: Float64Array;
  readonly row: Int32Array;
  readonly values: ValueArray[];
}

/** Where each column of a chunk payload of `runs` runs and `rows` rows lies: byte offset from the payload's start and element width. */
export function columnRegions(stored: readonly ColumnSpec[], runs: number, rows: number): { readonly at: number; readonly width: number }[] {
  let at = CHUNK_HEAD + pad8(8 * runs);
  const out: { at: number; width: number }[] = [];
  for (const width of [8, 8, 4, ...stored.map((c) => allocValueArray(c.type, 0).BYTES_PER_ELEMENT)]) {
    out.push({ at, width });
    at += pad8(width * rows);
  }
  return out;
}

/** The payload's header: kind, rows, runs, value columns (the u32s after the frame head). */
export function chunkHead(bytes: Uint8Array, payloadAt: number): { kind: number; rows: number; runs: number; ncols: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + payloadAt, CHUNK_HEAD);
  return { kind: dv.getUint32(0, true), rows: dv.getUint32(4, true), runs: dv.getUint32(8, true), ncols: dv.getUint32(12, true) };
}

export { FRAME_HEAD, CHUNK_HEAD };

/**
 * One chunk payload of `len` bytes at byte `payloadAt` of `bytes` (8-aligned in
 * its buffer); `at` names it in errors. Any count that does not add up is corruption.
 */
export function parseChunk(stored: readonly ColumnSpec[], bytes: Uint8Array, payloadAt: number, len: number, where: string, at: number): Chunk {
  const buf = bytes.buffer as ArrayBuffer;
  if (len < CHUNK_HEAD) throw new SnapshotCorruptError(`${where}: chunk at byte ${at} has ${len} bytes, less than its header`);
  const { kind, rows, runs: runCount, ncols } = chunkHead(bytes, payloadAt);
  if ((kind !== KIND_ROWS && kind !== KIND_SEAM) || ncols !== stored.length || len !== payloadBytes(stored, runCount, rows)) {
    throw new SnapshotCorruptError(`${where}: chunk at byte ${at} (kind ${kind}, ${rows} rows, ${runCount} runs, ${ncols} columns) does not match its length ${len} or the table's ${stored.length} columns`);
  }
  let off = bytes.byteOffset + payloadAt + CHUNK_HEAD;
  const runs = new Uint32Array(buf, off, 2 * runCount);
  off += pad8(8 * runCount);
  const ts = new Float64Array(buf, off, rows);
  off += 8 * rows;
  const lsn = new Float64Array(buf, off, rows);
  off += 8 * rows;
  const row = new Int32Array(buf, off, rows);
  off += pad8(4 * rows);
  const values = stored.map((c) => {
    const T = allocValueArray(c.type, 0).constructor as new (b: ArrayBuffer, o: number, n: number) => ValueArray;
    const v = new T(buf, off, rows);
    off += pad8(v.byteLength);
    return v;
  });
  return { kind, rows, runs, ts, lsn, row, values };
}

/** The chunks of a format-2 data object; any length that does not add up is corruption. */
function chunksOf(stored: readonly ColumnSpec[], data: Uint8Array, where: string): Chunk[] {
  // Column views need 8-aligned offsets: a data object read into an odd offset is copied once
  // (into a new Uint8Array: a Buffer's slice() is a view at the same offset).
  const bytes = data.byteOffset % 8 === 0 ? data : new Uint8Array(data);
  const out: Chunk[] = [];
  for (let at = 0; at < bytes.length; ) {
    if (at + FRAME_HEAD + CHUNK_HEAD > bytes.length) throw new SnapshotCorruptError(`${where}: truncated chunk header at byte ${at}`);
    const len = new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, true);
    if (len % 8 !== 0 || at + FRAME_HEAD + len > bytes.length) throw new SnapshotCorruptError(`${where}: chunk at byte ${at} claims ${len} bytes, only ${bytes.length - at - FRAME_HEAD} remain`);
    out.push(parseChunk(stored, bytes, at + FRAME_HEAD, len, where, at));
    at += FRAME_HEAD + len;
  }
  return out;
}

export interface ColumnarExpect {
  readonly symbols: number;
  readonly chunkRows: readonly number[];
  readonly seamRows: number;
  readonly rows: number;
}

/**
 * Series columns of a format-2 data object. `stored` are the columns the
 * snapshot was written with, `columns` the table's now: the ones added since
 * read as `defaults`.
 */
export function decodeColumnar(stored: readonly ColumnSpec[], columns: readonly ColumnSpec[], defaults: readonly number[], data: Uint8Array, expect: ColumnarExpect, where: string): SeriesColumns[] {
  return seriesOfChunks(stored, columns, defaults, chunksOf(stored, data, where), expect, where);
}

/** Series columns of parsed chunks (the rows chunks, then the seam chunk), checked against the manifest's figures. */
export function seriesOfChunks(stored: readonly ColumnSpec[], columns: readonly ColumnSpec[], defaults: readonly number[], parsed: readonly Chunk[], expect: ColumnarExpect, where: string): SeriesColumns[] {
  const chunks = [...parsed];
  if (chunks.length !== expect.chunkRows.length + 1) throw new SnapshotCorruptError(`${where}: ${chunks.length} chunks, the manifest says ${expect.chunkRows.length + 1}`);
  const seam = chunks.pop()!;
  if (seam.kind !== KIND_SEAM || chunks.some((c) => c.kind !== KIND_ROWS)) throw new SnapshotCorruptError(`${where}: the seam chunk is not last`);
  const counts = new Float64Array(expect.symbols);
  chunks.forEach((c, ci) => {
    if (c.rows !== expect.chunkRows[ci]) throw new SnapshotCorruptError(`${where}: chunk ${ci} has ${c.rows} rows, the manifest says ${expect.chunkRows[ci]}`);
    let sum = 0;
    for (let i = 0; i < c.runs.length; i += 2) {
      const sym = c.runs[i]!;
      if (sym >= expect.symbols) throw new SnapshotCorruptError(`${where}: chunk ${ci} names symbol ${sym}, the dictionary has ${expect.symbols}`);
      counts[sym]! += c.runs[i + 1]!;
      sum += c.runs[i + 1]!;
    }
    if (sum !== c.rows) throw new SnapshotCorruptError(`${where}: chunk ${ci}'s runs hold ${sum} rows, it says ${c.rows}`);
  });
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== expect.rows) throw new SnapshotCorruptError(`${where}: ${total} rows, the manifest says ${expect.rows}`);
  // A series held by one run is a view of its chunk (the hot set copies it into its own chunks on load: a second copy here bought nothing); one split across chunks is gathered.
  const runsOf = new Uint32Array(expect.symbols);
  for (const c of chunks) for (let i = 0; i < c.runs.length; i += 2) runsOf[c.runs[i]!]!++;
  const blank = (): SeriesColumns => ({ tsMicros: new Float64Array(0), lsn: new Float64Array(0), rowInRecord: new Int32Array(0), values: [], seam: null });
  const series: { -readonly [K in keyof SeriesColumns]: SeriesColumns[K] }[] = Array.from({ length: expect.symbols }, (_, id) =>
    runsOf[id]! === 1
      ? blank()
      : {
          tsMicros: new Float64Array(counts[id]!),
          lsn: new Float64Array(counts[id]!),
          rowInRecord: new Int32Array(counts[id]!),
          values: columns.map((c, v) => (v < stored.length ? allocValueArray(c.type, counts[id]!) : allocValueArray(c.type, counts[id]!).fill(defaults[v]!))),
          seam: null,
        },
  );
  const filled = new Float64Array(expect.symbols);
  for (const c of chunks) {
    for (let i = 0, from = 0; i < c.runs.length; i += 2) {
      const sym = c.runs[i]!;
      const n = c.runs[i + 1]!;
      const s = series[sym]!;
      if (runsOf[sym] === 1) {
        s.tsMicros = c.ts.subarray(from, from + n);
        s.lsn = c.lsn.subarray(from, from + n);
        s.rowInRecord = c.row.subarray(from, from + n);
        s.values = columns.map((col, v) => (v < stored.length ? (c.values[v]!.subarray(from, from + n) as ValueArray) : allocValueArray(col.type, n).fill(defaults[v]!)));
        from += n;
        continue;
      }
      const at = filled[sym]!;
      s.tsMicros.set(c.ts.subarray(from, from + n), at);
      s.lsn.set(c.lsn.subarray(from, from + n), at);
      s.rowInRecord.set(c.row.subarray(from, from + n), at);
      for (let v = 0; v < stored.length; v++) s.values[v]!.set(c.values[v]!.subarray(from, from + n) as never, at);
      filled[sym] = at + n;
      from += n;
    }
  }
  if (seam.rows !== expect.seamRows) throw new SnapshotCorruptError(`${where}: ${seam.rows} seam rows, the manifest says ${expect.seamRows}`);
  for (let i = 0; i < seam.runs.length; i += 2) {
    const sym = seam.runs[i]!;
    const k = i / 2;
    if (sym >= expect.symbols || seam.runs[i + 1] !== 1) throw new SnapshotCorruptError(`${where}: seam run ${k} (symbol ${sym}, ${seam.runs[i + 1]} rows) is not one row of a known symbol`);
    series[sym]!.seam = { tsMicros: seam.ts[k]!, lsn: seam.lsn[k]!, rowInRecord: seam.row[k]!, values: columns.map((_, v) => (v < stored.length ? seam.values[v]![k]! : defaults[v]!)) };
  }
  return series;
}
