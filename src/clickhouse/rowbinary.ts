// RowBinary for Proxist tables: the encoder turns TickBatches plus their
// bookkeeping (_lsn, _row, _shard) into the body of one INSERT, the decoder
// reads `SELECT <tableColumns> FORMAT RowBinary` back into a TickBatch. Column
// order is `tableColumns(spec)`. Little-endian, strings as LEB128 length + UTF-8.
//
// The encoder sizes one Buffer up front and writes column by column at
// precomputed row offsets: no allocation per row, each symbol encoded once.
import type { TableSpec } from "../../protocols/tablespec.js";
import { allocValueArray } from "../codec/tickbatch.js";
import type { TickBatch, ValueArray } from "../codec/tickbatch.js";
import { ClickhouseProtocolError } from "./errors.js";
import type { ClickhouseHttp, ClickhouseResponse, RequestOptions } from "./http.js";
import { qualifiedTable, quoteIdent, tableColumns } from "./ddl.js";
import { syncInsertSettings } from "./version.js";
import { fenceConditionSql } from "./fence.js";
import type { ClickhouseCapabilities } from "./version.js";
import type { ClickhouseType } from "./ddl.js";
import { TaggedError } from "../../protocols/tagged.js";

const TWO_32 = 4_294_967_296;
/** ClickHouse's default max_insert_block_size: an INSERT up to this many rows is parsed as one block. */
export const DEFAULT_MAX_INSERT_BLOCK_ROWS = 1_048_576;

/** Bookkeeping columns of the rows of one batch. */
export interface RowMeta {
  /** WAL LSN: one for every row of the batch, or one per row. */
  readonly lsn: number | ArrayLike<number>;
  /** Row index within its WAL record, per row; default 0, 1, ... rows-1. */
  readonly row?: ArrayLike<number>;
  /** Shard bucket: one for every row, or one per row. */
  readonly shard: number | ArrayLike<number>;
}

export interface RowBinarySegment {
  readonly batch: TickBatch;
  readonly meta: RowMeta;
}

/** A batch or its bookkeeping cannot be written as the table's RowBinary. */
export class RowBinaryEncodeError extends TaggedError("RowBinaryEncodeError") {}

/** Byte width of each fixed-size column type. */
function fixedWidth(type: ClickhouseType): number {
  switch (type) {
    case "Int64":
    case "UInt64":
    case "Float64":
      return 8;
    case "Int32":
    case "UInt32":
    case "Float32":
      return 4;
    case "UInt16":
      return 2;
    case "UInt8":
      return 1;
    case "String":
      throw new Error("String has no fixed width");
  }
}

/** LEB128 length prefix + UTF-8 bytes of one string. */
function encodeString(s: string): Buffer {
  const utf8 = Buffer.from(s, "utf8");
  let n = utf8.length;
  let prefix = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    prefix++;
  }
  const out = Buffer.allocUnsafe(prefix + utf8.length);
  let v = utf8.length;
  let p = 0;
  while (v >= 0x80) {
    out[p++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[p++] = v;
  utf8.copy(out, p);
  return out;
}

function writeInt64(dv: DataView, pos: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  dv.setUint32(pos, v - hi * TWO_32, true);
  dv.setInt32(pos + 4, hi, true);
}

function writeUInt64(dv: DataView, pos: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  dv.setUint32(pos, v - hi * TWO_32, true);
  dv.setUint32(pos + 4, hi, true);
}

function checkSegment(spec: TableSpec, seg: RowBinarySegment, index: number): void {
  const { batch, meta } = seg;
  const where = `table ${spec.name} segment ${index}`;
  if (batch.values.length !== spec.columns.length) {
    throw new RowBinaryEncodeError(`${where}: batch has ${batch.values.length} value columns, the spec ${spec.columns.length}; encode with the spec the batch was built for`);
  }
  const lengths: [string, number][] = [
    ["symbolIndex", batch.symbolIndex.length],
    ["ts", batch.ts.length],
    ...batch.values.map((v, i): [string, number] => [spec.columns[i]!.name, v.length]),
  ];
  if (typeof meta.lsn !== "number") lengths.push(["_lsn", meta.lsn.length]);
  if (meta.row !== undefined) lengths.push(["_row", meta.row.length]);
  if (typeof meta.shard !== "number") lengths.push(["_shard", meta.shard.length]);
  for (const [name, len] of lengths) {
    if (len < batch.rows) throw new RowBinaryEncodeError(`${where}: column ${name} has ${len} values for ${batch.rows} rows`);
  }
  if (typeof meta.lsn === "number" && !(Number.isSafeInteger(meta.lsn) && meta.lsn >= 0)) {
    throw new RowBinaryEncodeError(`${where}: _lsn ${meta.lsn} must be a non-negative integer`);
  }
  if (typeof meta.shard === "number" && !(Number.isInteger(meta.shard) && meta.shard >= 0 && meta.shard <= 0xffff)) {
    throw new RowBinaryEncodeError(`${where}: _shard ${meta.shard} must be an integer in 0..65535`);
  }
}

function badValue(spec: TableSpec, column: string, row: number, value: number, rule: string): RowBinaryEncodeError {
  return new RowBinaryEncodeError(`table ${spec.name}: column ${column} row ${row} is ${value}; it must be ${rule}`);
}

/** Encodes one batch (see `encodeRowBinarySegments`). */
export function encodeRowBinary(spec: TableSpec, batch: TickBatch, meta: RowMeta): Buffer {
  return encodeRowBinarySegments(spec, [{ batch, meta }]);
}

/**
 * Encodes the rows of several batches, in order, as one RowBinary body for
 * `INSERT INTO <table> (<tableColumns(spec)>) FORMAT RowBinary`. Throws
 * `RowBinaryEncodeError` for a timestamp or int64 that is not a safe integer,
 * or bookkeeping out of range; nothing is partially written.
 */
export function encodeRowBinarySegments(spec: TableSpec, segments: readonly RowBinarySegment[]): Buffer {
  const columns = tableColumns(spec);
  const valueTypes = columns.filter((c) => c.role === "value").map((c) => c.type);
  // Fixed part of a row, after the symbol: ts, values, _lsn, _row, _shard.
  let fixedBytes = 8;
  const valueOffsets: number[] = [];
  for (const t of valueTypes) {
    valueOffsets.push(fixedBytes);
    fixedBytes += fixedWidth(t);
  }
  const lsnOffset = fixedBytes;
  const rowOffset = lsnOffset + 8;
  const shardOffset = rowOffset + 4;
  fixedBytes = shardOffset + 2;

  // Pass 1: encode each distinct symbol once, size the body, remember where each row's fixed part starts.
  const symbolCache = new Map<string, Buffer>();
  const perSegmentSymbols: Buffer[][] = [];
  let totalRows = 0;
  let total = 0;
  segments.forEach((seg, s) => {
    checkSegment(spec, seg, s);
    const encoded = seg.batch.symbols.map((sym) => {
      let b = symbolCache.get(sym);
      if (b === undefined) {
        b = encodeString(sym);
        symbolCache.set(sym, b);
      }
      return b;
    });
    perSegmentSymbols.push(encoded);
    const symIdx = seg.batch.symbolIndex;
    for (let i = 0; i < seg.batch.rows; i++) {
      const b = encoded[symIdx[i]!];
      if (b === undefined) throw new RowBinaryEncodeError(`table ${spec.name} segment ${s} row ${i}: symbol index ${symIdx[i]} is outside the batch's ${encoded.length} symbols`);
      total += b.length;
    }
    totalRows += seg.batch.rows;
    total += seg.batch.rows * fixedBytes;
  });
  if (total >= TWO_32) throw new RowBinaryEncodeError(`table ${spec.name}: ${total} bytes is too large for one INSERT; split the batch`);

  const out = Buffer.allocUnsafe(total);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const fixedStart = new Uint32Array(totalRows);

  // Pass 2: symbols, recording each row's fixed-part offset.
  let pos = 0;
  let r = 0;
  segments.forEach((seg, s) => {
    const encoded = perSegmentSymbols[s]!;
    const symIdx = seg.batch.symbolIndex;
    for (let i = 0; i < seg.batch.rows; i++, r++) {
      const b = encoded[symIdx[i]!]!;
      const n = b.length;
      if (n <= 16) {
        for (let k = 0; k < n; k++) out[pos + k] = b[k]!;
      } else {
        b.copy(out, pos);
      }
      pos += n;
      fixedStart[r] = pos;
      pos += fixedBytes;
    }
  });

  // Pass 3: fixed-width columns, one tight loop per column.
  let base = 0;
  for (const seg of segments) {
    const { batch, meta } = seg;
    const n = batch.rows;
    const ts = batch.ts;
    for (let i = 0; i < n; i++) {
      const v = ts[i]!;
      if (!Number.isSafeInteger(v)) throw badValue(spec, spec.timeColumn, i, v, "an integer number of microseconds");
      writeInt64(dv, fixedStart[base + i]!, v);
    }
    for (let c = 0; c < valueTypes.length; c++) {
      const off = valueOffsets[c]!;
      const col = batch.values[c]!;
      switch (valueTypes[c]) {
        case "Float64":
          for (let i = 0; i < n; i++) dv.setFloat64(fixedStart[base + i]! + off, col[i]!, true);
          break;
        case "Float32":
          for (let i = 0; i < n; i++) dv.setFloat32(fixedStart[base + i]! + off, col[i]!, true);
          break;
        case "Int64":
          for (let i = 0; i < n; i++) {
            const v = col[i]!;
            if (!Number.isSafeInteger(v)) throw badValue(spec, spec.columns[c]!.name, i, v, "an integer with |v| <= 2^53");
            writeInt64(dv, fixedStart[base + i]! + off, v);
          }
          break;
        case "Int32":
          for (let i = 0; i < n; i++) dv.setInt32(fixedStart[base + i]! + off, col[i]!, true);
          break;
        case "UInt8":
          for (let i = 0; i < n; i++) out[fixedStart[base + i]! + off] = col[i]!;
          break;
        default:
          throw new Error(`unexpected value column type ${valueTypes[c]}`);
      }
    }
    if (typeof meta.lsn === "number") {
      for (let i = 0; i < n; i++) writeUInt64(dv, fixedStart[base + i]! + lsnOffset, meta.lsn);
    } else {
      const lsn = meta.lsn;
      for (let i = 0; i < n; i++) {
        const v = lsn[i]!;
        if (!(Number.isSafeInteger(v) && v >= 0)) throw badValue(spec, "_lsn", i, v, "a non-negative integer");
        writeUInt64(dv, fixedStart[base + i]! + lsnOffset, v);
      }
    }
    if (meta.row === undefined) {
      for (let i = 0; i < n; i++) dv.setUint32(fixedStart[base + i]! + rowOffset, i, true);
    } else {
      const row = meta.row;
      for (let i = 0; i < n; i++) {
        const v = row[i]!;
        if (!(Number.isInteger(v) && v >= 0 && v < TWO_32)) throw badValue(spec, "_row", i, v, "an integer in 0..2^32-1");
        dv.setUint32(fixedStart[base + i]! + rowOffset, v, true);
      }
    }
    if (typeof meta.shard === "number") {
      for (let i = 0; i < n; i++) dv.setUint16(fixedStart[base + i]! + shardOffset, meta.shard, true);
    } else {
      const shard = meta.shard;
      for (let i = 0; i < n; i++) {
        const v = shard[i]!;
        if (!(Number.isInteger(v) && v >= 0 && v <= 0xffff)) throw badValue(spec, "_shard", i, v, "an integer in 0..65535");
        dv.setUint16(fixedStart[base + i]! + shardOffset, v, true);
      }
    }
    base += n;
  }
  return out;
}

/** Rows read back from ClickHouse: the ticks and their bookkeeping columns. */
export interface DecodedRows {
  readonly batch: TickBatch;
  readonly lsn: Float64Array;
  readonly row: Uint32Array;
  readonly shard: Uint16Array;
}

/**
 * The LEB128 length before a RowBinary String at `pos`: [length, position of
 * its first byte]. `fail` makes the error when the bytes end inside it or it is
 * longer than five bytes (no string here is 2^35 bytes long).
 */
export function readStringLength(bytes: Uint8Array, pos: number, fail: (pos: number, detail: string) => Error): [length: number, next: number] {
  let v = 0;
  let mul = 1;
  for (let p = pos; ; ) {
    if (p >= bytes.length) throw fail(p, "string length runs past the end");
    const b = bytes[p++]!;
    v += (b & 0x7f) * mul;
    if (b < 0x80) return [v, p];
    mul *= 128;
    if (mul > 2 ** 35) throw fail(p, "string length varint is too long");
  }
}

function corrupt(bytes: Uint8Array, pos: number, detail: string): ClickhouseProtocolError {
  // A server error in the middle of a streamed result is appended as text.
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1", Math.max(0, bytes.length - 1_000));
  const m = /Code:\s*\d+[\s\S]*$/.exec(text);
  const hint = m === null ? "" : `; the server reported: ${m[0].trim().slice(0, 500)}`;
  return new ClickhouseProtocolError(`RowBinary response cannot be decoded at byte ${pos} of ${bytes.length}: ${detail}${hint}`);
}

/**
 * Decodes a RowBinary body with the columns `tableColumns(spec)` (the layout
 * `encodeRowBinarySegments` writes and `selectRowBinary` reads). Int64 values
 * outside ±2^53 are rejected rather than rounded.
 */
export function decodeRowBinary(spec: TableSpec, bytes: Uint8Array): DecodedRows {
  const columns = tableColumns(spec);
  const valueTypes = columns.filter((c) => c.role === "value").map((c) => c.type);
  let fixedBytes = 8 + 8 + 4 + 2;
  for (const t of valueTypes) fixedBytes += fixedWidth(t);
  const len = bytes.length;

  const fail = (p: number, detail: string): ClickhouseProtocolError => corrupt(bytes, p, detail);

  // Pass 1: count rows.
  let rows = 0;
  for (let p = 0; p < len; rows++) {
    const [n, q] = readStringLength(bytes, p, fail);
    p = q + n + fixedBytes;
    if (p > len) throw corrupt(bytes, q, `row ${rows} is cut short`);
  }

  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const symbols: string[] = [];
  const symbolIds = new Map<string, number>();
  const symbolIndex = new Uint32Array(rows);
  const ts = new Float64Array(rows);
  const values: ValueArray[] = spec.columns.map((c) => allocValueArray(c.type, rows));
  const lsn = new Float64Array(rows);
  const rowCol = new Uint32Array(rows);
  const shard = new Uint16Array(rows);

  const readInt64 = (p: number): number => {
    const hi = dv.getInt32(p + 4, true);
    if (hi < -2_097_152 || hi >= 2_097_152) throw corrupt(bytes, p, "Int64 outside ±2^53 cannot be held exactly");
    return hi * TWO_32 + dv.getUint32(p, true);
  };

  let p = 0;
  let prevStart = -1;
  let prevLen = -1;
  let prevId = 0;
  for (let r = 0; r < rows; r++) {
    const [n, q] = readStringLength(bytes, p, fail);
    // Rows come sorted by symbol: most rows repeat the previous row's symbol.
    let same = n === prevLen;
    for (let k = 0; same && k < n; k++) same = bytes[q + k] === bytes[prevStart + k];
    if (!same) {
      const s = buf.toString("utf8", q, q + n);
      let id = symbolIds.get(s);
      if (id === undefined) {
        id = symbols.length;
        symbols.push(s);
        symbolIds.set(s, id);
      }
      prevId = id;
      prevStart = q;
      prevLen = n;
    }
    symbolIndex[r] = prevId;
    p = q + n;
    ts[r] = readInt64(p);
    p += 8;
    for (let c = 0; c < valueTypes.length; c++) {
      const col = values[c]!;
      switch (valueTypes[c]) {
        case "Float64":
          col[r] = dv.getFloat64(p, true);
          p += 8;
          break;
        case "Float32":
          col[r] = dv.getFloat32(p, true);
          p += 4;
          break;
        case "Int64":
          col[r] = readInt64(p);
          p += 8;
          break;
        case "Int32":
          col[r] = dv.getInt32(p, true);
          p += 4;
          break;
        case "UInt8":
          col[r] = bytes[p]!;
          p += 1;
          break;
        default:
          throw new Error(`unexpected value column type ${valueTypes[c]}`);
      }
    }
    const hi = dv.getUint32(p + 4, true);
    if (hi >= 2_097_152) throw corrupt(bytes, p, "_lsn above 2^53 cannot be held exactly");
    lsn[r] = hi * TWO_32 + dv.getUint32(p, true);
    rowCol[r] = dv.getUint32(p + 8, true);
    shard[r] = dv.getUint16(p + 12, true);
    p += 14;
  }
  return { batch: { rows, symbols, symbolIndex, ts, values }, lsn, row: rowCol, shard };
}

/** `INSERT INTO `px_<tenant>`.`<table>` (<columns>) FORMAT RowBinary` */
export function insertRowBinarySql(tenant: string, spec: TableSpec): string {
  const cols = tableColumns(spec)
    .map((c) => quoteIdent(c.name))
    .join(", ");
  return `INSERT INTO ${qualifiedTable(tenant, spec.name)} (${cols}) FORMAT RowBinary`;
}

export interface InsertRowBinaryOptions extends RequestOptions {
  /**
   * Rows in the body. With it, max_insert_block_size is raised to at least
   * this, so the server parses the body as one block: one part per partition.
   */
  readonly rows?: number;
  /**
   * The server's capabilities (`detectServer`). Pass them: on releases with
   * async inserts (on by default from 26.2) the INSERT is made synchronous.
   */
  readonly capabilities?: ClickhouseCapabilities;
}

/**
 * Sends a RowBinary body (from `encodeRowBinarySegments`) as one INSERT.
 * Rejects with `ClickhouseUnavailableError` (check `mayHaveLanded`) or
 * `ClickhouseQueryError`; resolves once the server has committed the rows.
 */
export function insertRowBinary(
  client: ClickhouseHttp,
  tenant: string,
  spec: TableSpec,
  body: Uint8Array,
  opts: InsertRowBinaryOptions = {},
): Promise<ClickhouseResponse> {
  const { settings, request } = insertOptions(opts);
  if (opts.rows !== undefined) settings["max_insert_block_size"] ??= Math.max(DEFAULT_MAX_INSERT_BLOCK_ROWS, opts.rows);
  return client.insert(insertRowBinarySql(tenant, spec), body, { ...request, settings });
}

/** The caller's settings over the server's synchronous-insert ones, and the request options without the insert's own. */
function insertOptions(opts: InsertRowBinaryOptions): { settings: Record<string, string | number | boolean>; request: RequestOptions } {
  const settings = { ...(opts.capabilities === undefined ? {} : syncInsertSettings(opts.capabilities)), ...opts.settings };
  const { rows: _rows, capabilities: _capabilities, ...request } = opts;
  return { settings, request };
}

/** The external table a fenced INSERT reads its rows from. */
const FENCED_ROWS = "px_rows";

/** `INSERT INTO <table> (<columns>) SELECT <columns> FROM px_rows WHERE <the fence is still token>` */
export function insertRowBinaryFencedSql(tenant: string, spec: TableSpec, fence: InsertFence): string {
  const cols = tableColumns(spec)
    .map((c) => quoteIdent(c.name))
    .join(", ");
  return `INSERT INTO ${qualifiedTable(tenant, spec.name)} (${cols}) SELECT ${cols} FROM ${FENCED_ROWS} WHERE ${fenceConditionSql(tenant, spec.name, fence.bucket, fence.token)}`;
}

export interface InsertFence {
  readonly bucket: number;
  readonly token: number;
}

/**
 * As `insertRowBinary`, behind the shard's fence (./fence.ts): the rows go as
 * an external table and are inserted only while the shard's fence is still
 * `fence.token`; otherwise the INSERT fails (`isFenceRefusal`) and writes
 * nothing. The server reads the whole body before it starts, so a request cut
 * short writes nothing either.
 */
export function insertRowBinaryFenced(
  client: ClickhouseHttp,
  tenant: string,
  spec: TableSpec,
  body: Uint8Array,
  fence: InsertFence,
  opts: InsertRowBinaryOptions = {},
): Promise<ClickhouseResponse> {
  const { settings, request } = insertOptions(opts);
  if (opts.rows !== undefined) {
    // One block from the external table to the INSERT, so one part per partition (as insertRowBinary).
    const block = Math.max(DEFAULT_MAX_INSERT_BLOCK_ROWS, opts.rows);
    settings["max_block_size"] ??= block;
    settings["min_insert_block_size_rows"] ??= block;
    settings["min_insert_block_size_bytes"] ??= 0;
  }
  // Plain names (tableColumns' are identifiers already): 18.16 would keep backticks as part of a name here.
  const structure = tableColumns(spec)
    .map((c) => `${c.name} ${c.type}`)
    .join(", ");
  return client.insertFrom(insertRowBinaryFencedSql(tenant, spec, fence), { name: FENCED_ROWS, structure, format: "RowBinary", data: body }, { ...request, settings });
}

/**
 * `SELECT <tableColumns> FROM <table> [WHERE where] ORDER BY <sort key> FORMAT RowBinary`,
 * decoded. `where` is SQL the caller built from validated values.
 */
export async function selectRowBinary(
  client: ClickhouseHttp,
  tenant: string,
  spec: TableSpec,
  where?: string,
  opts: RequestOptions = {},
): Promise<DecodedRows> {
  const columns = tableColumns(spec);
  const cols = columns.map((c) => quoteIdent(c.name)).join(", ");
  const order = [spec.symbolColumn, spec.timeColumn, "_lsn", "_row"].map(quoteIdent).join(", ");
  const sql = `SELECT ${cols} FROM ${qualifiedTable(tenant, spec.name)}${where === undefined ? "" : ` WHERE ${where}`} ORDER BY ${order} FORMAT RowBinary`;
  return decodeRowBinary(spec, await client.queryBytes(sql, opts));
}
