// Arrow IPC stream writer for the WAL payload schema (protocols/arrow.ts),
// without a flatbuffer builder per message: the metadata of a dictionary batch
// and of a record batch only differs in a few int64 numbers (lengths, buffer
// offsets, body length) from one batch to the next, so each is built once as a
// template with sentinel values, the positions of those values are recorded,
// and a message is a copy of the template with the numbers written in.
//
// The same templates let the gateway recognise a stream in exactly this layout
// (src/ingest/fastpath.ts) by comparing the metadata bytes, so it can validate
// such a batch in place and forward its bytes to the WAL without re-encoding.
import * as flatbuffers from "flatbuffers";
import { RecordBatchStreamWriter, Table } from "apache-arrow";
import { Message } from "apache-arrow/fb/message";
import { MessageHeader } from "apache-arrow/fb/message-header";
import { MetadataVersion } from "apache-arrow/fb/metadata-version";
import { RecordBatch as FbRecordBatch } from "apache-arrow/fb/record-batch";
import { DictionaryBatch as FbDictionaryBatch } from "apache-arrow/fb/dictionary-batch";
import { FieldNode } from "apache-arrow/fb/field-node";
import { Buffer as FbBuffer } from "apache-arrow/fb/buffer";
import { walArrowSchema } from "../../protocols/arrow.js";
import type { TableSpec, ValueType } from "../../protocols/tablespec.js";
import { fnv1a32, fnv1a32Ascii } from "../../protocols/routing.js";
import type { TickBatch } from "./tickbatch.js";

export const pad8 = (n: number): number => (n + 7) & ~7;

/** End-of-stream marker: continuation + zero metadata length. */
export const EOS = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0);

// ---------------------------------------------------------------- schema

const schemaCache = new WeakMap<TableSpec, Uint8Array>();

/** The framed schema message of the WAL payload schema of `spec`, built once per spec by apache-arrow. */
export function walSchemaMessage(spec: TableSpec): Uint8Array {
  let m = schemaCache.get(spec);
  if (!m) {
    const stream = RecordBatchStreamWriter.writeAll(new Table(walArrowSchema(spec))).toUint8Array(true);
    const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
    const metaLen = view.getInt32(4, true);
    m = stream.slice(0, 8 + metaLen);
    schemaCache.set(spec, m);
  }
  return m;
}

// ---------------------------------------------------------------- metadata templates

/**
 * A framed message metadata (continuation, length, flatbuffer, padding) with
 * patchable int64 slots: [bodyLength, batch length, node lengths..., (buffer offset, buffer length)...].
 */
export interface MetaTemplate {
  readonly bytes: Uint8Array;
  /** Byte position of each slot. */
  readonly slots: Int32Array;
  /** 1 for the bytes of a slot: the rest must match exactly. */
  readonly mask: Uint8Array;
  readonly nodes: number;
  readonly buffers: number;
}

const SENTINEL_HI = 0x5a5a5a5a;
const sentinel = (k: number): bigint => (BigInt(SENTINEL_HI) << 32n) | BigInt(0xa5000000 + k);

function buildTemplate(dictionary: boolean, nodes: number, buffers: number): MetaTemplate {
  const nslots = 2 + nodes + 2 * buffers;
  const b = new flatbuffers.Builder(512);
  // Vectors of structs are built back to front.
  FbRecordBatch.startNodesVector(b, nodes);
  for (let i = nodes - 1; i >= 0; i--) FieldNode.createFieldNode(b, sentinel(2 + i), 0n);
  const nodesOff = b.endVector();
  FbRecordBatch.startBuffersVector(b, buffers);
  for (let i = buffers - 1; i >= 0; i--) FbBuffer.createBuffer(b, sentinel(2 + nodes + 2 * i), sentinel(2 + nodes + 2 * i + 1));
  const bufOff = b.endVector();
  FbRecordBatch.startRecordBatch(b);
  FbRecordBatch.addLength(b, sentinel(1));
  FbRecordBatch.addNodes(b, nodesOff);
  FbRecordBatch.addBuffers(b, bufOff);
  let header = FbRecordBatch.endRecordBatch(b);
  if (dictionary) {
    FbDictionaryBatch.startDictionaryBatch(b);
    FbDictionaryBatch.addId(b, 0n);
    FbDictionaryBatch.addData(b, header);
    FbDictionaryBatch.addIsDelta(b, false);
    header = FbDictionaryBatch.endDictionaryBatch(b);
  }
  Message.startMessage(b);
  Message.addVersion(b, MetadataVersion.V5);
  Message.addHeaderType(b, dictionary ? MessageHeader.DictionaryBatch : MessageHeader.RecordBatch);
  Message.addHeader(b, header);
  Message.addBodyLength(b, sentinel(0));
  b.finish(Message.endMessage(b));
  const fb = b.asUint8Array();
  const metaLen = pad8(fb.length + 8) - 8;
  const bytes = new Uint8Array(8 + metaLen);
  const dv = new DataView(bytes.buffer);
  dv.setInt32(0, -1, true);
  dv.setInt32(4, metaLen, true);
  bytes.set(fb, 8);
  const slots = new Int32Array(nslots).fill(-1);
  for (let p = 8; p + 8 <= bytes.length; p++) {
    if (dv.getUint32(p + 4, true) !== SENTINEL_HI) continue;
    const k = dv.getUint32(p, true) - 0xa5000000;
    if (k >= 0 && k < nslots) {
      if (slots[k] !== -1) throw new Error(`ipc template: slot ${k} found twice`);
      slots[k] = p;
    }
  }
  const mask = new Uint8Array(bytes.length);
  for (let k = 0; k < nslots; k++) {
    const p = slots[k]!;
    if (p < 0) throw new Error(`ipc template: slot ${k} not found`);
    mask.fill(1, p, p + 8);
    dv.setUint32(p, 0, true);
    dv.setUint32(p + 4, 0, true);
  }
  return { bytes, slots, mask, nodes, buffers };
}

let dictTemplateCache: MetaTemplate | undefined;
const rbTemplateCache = new Map<number, MetaTemplate>();

/** Dictionary batch (id 0, not a delta) of utf8 strings: 1 node, 3 buffers. */
export function dictTemplate(): MetaTemplate {
  return (dictTemplateCache ??= buildTemplate(true, 1, 3));
}

/** Record batch of `fields` primitive fields: one node and two buffers (validity, values) each. */
export function rbTemplate(fields: number): MetaTemplate {
  let t = rbTemplateCache.get(fields);
  if (!t) rbTemplateCache.set(fields, (t = buildTemplate(false, fields, 2 * fields)));
  return t;
}

/** Writes a non-negative safe integer as a little-endian int64. */
function putU64(dv: DataView, p: number, v: number): void {
  const hi = Math.floor(v / 4294967296);
  dv.setUint32(p, v - hi * 4294967296, true);
  dv.setUint32(p + 4, hi, true);
}

// ---------------------------------------------------------------- body layout

/** Bytes per row of a column in the WAL payload: 0 means a bitmap. */
function columnWidth(type: ValueType): number {
  return type === "bool" ? 0 : type === "float32" || type === "int32" ? 4 : 8;
}

const widthsCache = new WeakMap<TableSpec, Int32Array>();

/** Per WAL payload field (symbol index, time, values...): bytes per row, 0 for a bitmap. */
export function fieldWidths(spec: TableSpec): Int32Array {
  let w = widthsCache.get(spec);
  if (!w) widthsCache.set(spec, (w = Int32Array.from([4, 8, ...spec.columns.map((c) => columnWidth(c.type))])));
  return w;
}

const bufLen = (width: number, rows: number): number => (width === 0 ? (rows + 7) >> 3 : width * rows);

/** Body bytes of a record batch of `rows` rows. */
export function rbBodyLength(widths: Int32Array, rows: number): number {
  let off = 0;
  for (let f = 0; f < widths.length; f++) off += pad8(bufLen(widths[f]!, rows));
  return off;
}

export const dictBodyLength = (nsym: number, dataLen: number): number => pad8(4 * (nsym + 1)) + pad8(dataLen);

/** Framed dictionary message + body bytes. */
export const dictMessageLength = (nsym: number, dataLen: number): number => dictTemplate().bytes.length + dictBodyLength(nsym, dataLen);

/** Framed record batch message + body bytes. */
export const rbMessageLength = (widths: Int32Array, rows: number): number => rbTemplate(widths.length).bytes.length + rbBodyLength(widths, rows);

/** The slot values of a canonical dictionary message. */
export function dictSlotValues(nsym: number, dataLen: number, out: Float64Array): void {
  const offLen = 4 * (nsym + 1);
  out[0] = dictBodyLength(nsym, dataLen);
  out[1] = nsym;
  out[2] = nsym;
  out[3] = 0; // validity
  out[4] = 0;
  out[5] = 0; // offsets
  out[6] = offLen;
  out[7] = pad8(offLen); // data
  out[8] = dataLen;
}

/** The slot values of a canonical record batch message. */
export function rbSlotValues(widths: Int32Array, rows: number, out: Float64Array): void {
  const n = widths.length;
  out[0] = rbBodyLength(widths, rows);
  out[1] = rows;
  for (let f = 0; f < n; f++) out[2 + f] = rows;
  let off = 0;
  let s = 2 + n;
  for (let f = 0; f < n; f++) {
    const len = bufLen(widths[f]!, rows);
    out[s++] = off; // validity: empty, no nulls
    out[s++] = 0;
    out[s++] = off;
    out[s++] = len;
    off += pad8(len);
  }
}

const slotScratch = new Float64Array(2 + 64 + 2 * 128);

/** Writes the framed metadata of template `t` at `p` with its slots set to `values`; returns the position after it. */
export function writeMeta(out: Uint8Array, dv: DataView, p: number, t: MetaTemplate, values: Float64Array): number {
  out.set(t.bytes, p);
  const slots = t.slots;
  for (let k = 0; k < slots.length; k++) putU64(dv, p + slots[k]!, values[k]!);
  return p + t.bytes.length;
}

/**
 * Whether `u8[p..]` holds template `t` (its bytes outside the slots) with slot values `want`: the read side
 * of writeMeta, for the fast paths that recognise messages this module wrote (ingest, WAL decode).
 */
export function metaMatches(u8: Uint8Array, dv: DataView, p: number, t: MetaTemplate, want: Float64Array): boolean {
  const tb = t.bytes;
  const mask = t.mask;
  if (p + tb.length > u8.length) return false;
  for (let i = 0; i < tb.length; i++) if (mask[i] === 0 && u8[p + i] !== tb[i]) return false;
  const slots = t.slots;
  for (let k = 0; k < slots.length; k++) {
    const at = p + slots[k]!;
    if (dv.getUint32(at + 4, true) !== 0 || dv.getUint32(at, true) !== want[k]) return false;
  }
  return true;
}

/** Slot `k` of template `t` at `p`: a small non-negative number, -1 when it is not one (or lies past the end). */
export function metaSlot(dv: DataView, p: number, t: MetaTemplate, k: number): number {
  const at = p + t.slots[k]!;
  if (at + 8 > dv.byteLength) return -1;
  return dv.getUint32(at + 4, true) !== 0 ? -1 : dv.getUint32(at, true);
}

// ---------------------------------------------------------------- symbols

const utf8Encoder = new TextEncoder();

/** Per symbol of a batch: UTF-8 length, bucket (when `shards` > 0) and, for non-ASCII, the bytes. */
interface SymbolInfo {
  readonly len: Int32Array;
  readonly bucket: Int32Array;
  readonly bytes: (Uint8Array | undefined)[] | undefined;
}

function symbolInfo(symbols: readonly string[], shards: number): SymbolInfo {
  const n = symbols.length;
  const len = new Int32Array(n);
  const bucket = new Int32Array(n);
  let bytes: (Uint8Array | undefined)[] | undefined;
  for (let i = 0; i < n; i++) {
    const s = symbols[i]!;
    const h = fnv1a32Ascii(s);
    if (h >= 0) {
      len[i] = s.length;
      if (shards > 0) bucket[i] = h % shards;
    } else {
      const b = utf8Encoder.encode(s);
      (bytes ??= new Array<Uint8Array | undefined>(n))[i] = b;
      len[i] = b.length;
      if (shards > 0) bucket[i] = fnv1a32(b) % shards;
    }
  }
  return { len, bucket, bytes };
}

// ---------------------------------------------------------------- writer

/**
 * Writes one dictionary batch + record batch pair at `p` (8-aligned, relative to
 * an 8-aligned base): the rows `order[from..from+rows)` of `batch` (all rows in
 * order when `order` is undefined), with the dictionary `syms` (symbol ids of
 * `batch`), `remap` giving each used symbol id its index in `syms`.
 */
function writePair(
  out: Uint8Array,
  dv: DataView,
  p: number,
  spec: TableSpec,
  widths: Int32Array,
  batch: TickBatch,
  info: SymbolInfo,
  order: Uint32Array | undefined,
  from: number,
  rows: number,
  syms: ArrayLike<number>,
  dataLen: number,
  remap: Int32Array | undefined,
): number {
  const nsym = syms.length;
  // Dictionary batch.
  dictSlotValues(nsym, dataLen, slotScratch);
  p = writeMeta(out, dv, p, dictTemplate(), slotScratch);
  let acc = 0;
  const dataStart = p + pad8(4 * (nsym + 1));
  for (let i = 0; i < nsym; i++) {
    dv.setInt32(p + 4 * i, acc, true);
    const id = syms[i]!;
    const len = info.len[id]!;
    const at = dataStart + acc;
    const raw = info.bytes?.[id];
    if (raw) out.set(raw, at);
    else {
      const s = batch.symbols[id]!;
      for (let j = 0; j < len; j++) out[at + j] = s.charCodeAt(j);
    }
    acc += len;
  }
  dv.setInt32(p + 4 * nsym, acc, true);
  // Buffers may be reused (BytePool): zero every padding byte explicitly.
  zeroTail(out, p + 4 * (nsym + 1));
  zeroTail(out, dataStart + dataLen);
  p += dictBodyLength(nsym, dataLen);

  // Record batch: symbol indices (int32), ts (int64), value columns.
  rbSlotValues(widths, rows, slotScratch);
  p = writeMeta(out, dv, p, rbTemplate(widths.length), slotScratch);
  const buf = out.buffer;
  const base = out.byteOffset + p;
  let off = 0;
  // symbol indices
  const idx = new Int32Array(buf, base + off, rows);
  const si = batch.symbolIndex;
  if (order === undefined) {
    if (remap === undefined) idx.set(si);
    else for (let i = 0; i < rows; i++) idx[i] = remap[si[i]!]!;
  } else if (remap === undefined) {
    for (let i = 0; i < rows; i++) idx[i] = si[order[from + i]!]!;
  } else {
    for (let i = 0; i < rows; i++) idx[i] = remap[si[order[from + i]!]!]!;
  }
  zeroTail(out, p + off + 4 * rows);
  off += pad8(4 * rows);
  writeInt64Words(new Int32Array(buf, base + off, rows * 2), batch.ts, order, from, rows);
  off += 8 * rows;
  const cols = spec.columns;
  for (let c = 0; c < cols.length; c++) {
    const src = batch.values[c]!;
    const type = cols[c]!.type;
    switch (type) {
      case "float64":
      case "float32":
      case "int32": {
        const dst = type === "float64" ? new Float64Array(buf, base + off, rows) : type === "float32" ? new Float32Array(buf, base + off, rows) : new Int32Array(buf, base + off, rows);
        if (order === undefined) dst.set(src.length === rows ? src : src.subarray(0, rows));
        else for (let i = 0; i < rows; i++) dst[i] = src[order[from + i]!]!;
        zeroTail(out, p + off + widths[2 + c]! * rows);
        off += pad8(widths[2 + c]! * rows);
        break;
      }
      case "int64":
        writeInt64Words(new Int32Array(buf, base + off, rows * 2), src, order, from, rows);
        off += 8 * rows;
        break;
      case "bool": {
        const at = p + off;
        out.fill(0, at, at + pad8((rows + 7) >> 3));
        for (let i = 0; i < rows; i++) if (src[order === undefined ? i : order[from + i]!]) out[at + (i >> 3)]! |= 1 << (i & 7);
        off += pad8((rows + 7) >> 3);
        break;
      }
    }
  }
  return p + off;
}

/** Zeroes `out[end..pad8(end))` (end relative to an 8-aligned base). */
function zeroTail(out: Uint8Array, end: number): void {
  for (let i = end, e = pad8(end); i < e; i++) out[i] = 0;
}

/** Safe integers held as float64 -> little-endian int64 words, without BigInt. */
function writeInt64Words(words: Int32Array, src: ArrayLike<number>, order: Uint32Array | undefined, from: number, rows: number): void {
  for (let i = 0; i < rows; i++) {
    const v = src[order === undefined ? i : order[from + i]!]!;
    const hi = Math.floor(v / 4294967296);
    words[2 * i] = v - hi * 4294967296;
    words[2 * i + 1] = hi;
  }
}

/** A buffer (contents undefined) whose byteOffset is a multiple of 8 (typed views at 8-aligned positions). */
function alloc8(total: number): Uint8Array {
  // allocUnsafe is several times cheaper than new Uint8Array for tens of KB; the
  // writers set every byte, padding included. Pool slices are 8-aligned.
  const out = Buffer.allocUnsafe(total);
  return out.byteOffset % 8 === 0 ? out : new Uint8Array(total);
}

/** Where an encoder gets its output buffer: 8-aligned, contents undefined. */
export type Alloc = (n: number) => Uint8Array;

/** TickBatch -> Arrow IPC stream in the WAL payload schema (protocols/arrow.ts). */
export function encodeTickIpc(spec: TableSpec, batch: TickBatch, alloc: Alloc = alloc8): Uint8Array {
  const schema = walSchemaMessage(spec);
  const widths = fieldWidths(spec);
  const info = symbolInfo(batch.symbols, 0);
  let dataLen = 0;
  for (let i = 0; i < info.len.length; i++) dataLen += info.len[i]!;
  const nsym = batch.symbols.length;
  const total = schema.length + dictMessageLength(nsym, dataLen) + rbMessageLength(widths, batch.rows) + 8;
  const out = alloc(total);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(schema, 0);
  const ids = new Int32Array(nsym);
  for (let i = 0; i < nsym; i++) ids[i] = i;
  const p = writePair(out, dv, schema.length, spec, widths, batch, info, undefined, 0, batch.rows, ids, dataLen, undefined);
  out.set(EOS, p);
  return out;
}

/**
 * TickBatch -> one Arrow IPC stream with one (dictionary batch, record batch)
 * pair per bucket of `shards` (ascending bucket, row order kept within a
 * bucket; each dictionary replaces the previous one and holds just the symbols
 * of its bucket). Any Arrow reader reads it as the batch with its rows grouped
 * by bucket; the gateway forwards each pair to the WAL without re-encoding it.
 */
export function encodeTickIpcByBucket(spec: TableSpec, batch: TickBatch, shards: number, alloc: Alloc = alloc8): Uint8Array {
  return encodeByBucket(spec, batch, shards, alloc).bytes;
}

/**
 * The same, with the row order it wrote: `order[i]` is the batch row that is
 * row i of the stream (the gateway's messages name stream rows; a caller that
 * must name its own rows maps them back through it).
 */
export function encodeTickIpcByBucketOrdered(spec: TableSpec, batch: TickBatch, shards: number, alloc: Alloc = alloc8): { bytes: Uint8Array; order: Uint32Array } {
  return encodeByBucket(spec, batch, shards, alloc);
}

function encodeByBucket(spec: TableSpec, batch: TickBatch, shards: number, alloc: Alloc): { bytes: Uint8Array; order: Uint32Array } {
  const nsym = batch.symbols.length;
  const rows = batch.rows;
  const info = symbolInfo(batch.symbols, shards);
  const symBucket = info.bucket;
  // Rows per bucket, then rows grouped by bucket (a stable counting sort).
  const count = new Int32Array(shards + 1);
  const si = batch.symbolIndex;
  for (let r = 0; r < rows; r++) count[symBucket[si[r]!]! + 1]!++;
  let used = 0;
  for (let b = 1; b <= shards; b++) if (count[b]! > 0) used++;
  if (used === 0) return { bytes: encodeTickIpc(spec, batch, alloc), order: Uint32Array.from({ length: rows }, (_, i) => i) };
  for (let b = 1; b <= shards; b++) count[b]! += count[b - 1]!;
  const start = count.slice(0, shards + 1); // start[b] .. start[b+1]
  const order = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) order[count[symBucket[si[r]!]!]!++] = r;
  // Per bucket: its symbols in first-use order, densely re-indexed.
  const remap = new Int32Array(nsym).fill(-1);
  const symsOf: Int32Array[] = [];
  const dataLenOf = new Int32Array(shards);
  const scratch = new Int32Array(nsym);
  const schema = walSchemaMessage(spec);
  const widths = fieldWidths(spec);
  let total = schema.length + 8;
  for (let b = 0; b < shards; b++) {
    const from = start[b]!;
    const to = start[b + 1]!;
    let n = 0;
    let dataLen = 0;
    for (let i = from; i < to; i++) {
      const s = si[order[i]!]!;
      if (remap[s]! < 0) {
        remap[s] = n;
        scratch[n++] = s;
        dataLen += info.len[s]!;
      }
    }
    symsOf.push(scratch.slice(0, n));
    dataLenOf[b] = dataLen;
    if (to > from) total += dictMessageLength(n, dataLen) + rbMessageLength(widths, to - from);
  }
  const out = alloc(total);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(schema, 0);
  let p = schema.length;
  for (let b = 0; b < shards; b++) {
    const from = start[b]!;
    const n = start[b + 1]! - from;
    if (n === 0) continue;
    // remap holds each symbol's index within its own bucket's dictionary.
    p = writePair(out, dv, p, spec, widths, batch, info, order, from, n, symsOf[b]!, dataLenOf[b]!, remap);
  }
  out.set(EOS, p);
  return { bytes: out, order };
}
