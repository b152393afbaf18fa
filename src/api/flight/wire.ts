// FlightData bytes written by hand. DoGet streams hundreds of megabytes, and
// the generic path (apache-arrow's stream writer, then protobuf-es) copies each
// body four times. A result batch of the usual layout (one dictionary-encoded
// symbol column, fixed-width or bool columns, no nulls) goes from its column
// arrays straight into the one buffer gRPC sends, with the metadata templates
// of the ingest writer (src/codec/ipcwrite.ts); any other layout takes the
// generic writer. A FlightData here is data_header (field 2) and data_body
// (field 1000), both bytes; the client side reads them back the same way.
import { Type } from "apache-arrow";
import type { Data, RecordBatch } from "apache-arrow";
import { dictSlotValues, dictTemplate, pad8, rbSlotValues, rbTemplate, writeMeta } from "../../codec/ipcwrite.js";
import type { MetaTemplate } from "../../codec/ipcwrite.js";
import { batchMessages, chunks } from "../arrowout.js";

const TAG_HEADER = 0x12; // field 2, length-delimited
const TAG_BODY_0 = 0xc2; // field 1000, length-delimited: varint 8002
const TAG_BODY_1 = 0x3e;

const varintLength = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

function putVarint(out: Uint8Array, p: number, n: number): number {
  while (n >= 0x80) {
    out[p++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[p++] = n;
  return p;
}

/** A buffer holding one FlightData with room for `headerLength` and `bodyLength` bytes at the returned positions. */
function frame(headerLength: number, bodyLength: number): { buf: Buffer; headerAt: number; bodyAt: number } {
  const total = 1 + varintLength(headerLength) + headerLength + (bodyLength > 0 ? 2 + varintLength(bodyLength) + bodyLength : 0);
  const buf = Buffer.allocUnsafe(total);
  buf[0] = TAG_HEADER;
  const headerAt = putVarint(buf, 1, headerLength);
  let bodyAt = headerAt + headerLength;
  if (bodyLength > 0) {
    buf[bodyAt] = TAG_BODY_0;
    buf[bodyAt + 1] = TAG_BODY_1;
    bodyAt = putVarint(buf, bodyAt + 2, bodyLength);
  }
  return { buf, headerAt, bodyAt };
}

/** One IPC message (flatbuffer header without prefix, body) as FlightData protobuf bytes. */
export function flightDataBytes(header: Uint8Array, body: Uint8Array): Buffer {
  const f = frame(header.length, body.length);
  f.buf.set(header, f.headerAt);
  f.buf.set(body, f.bodyAt);
  return f.buf;
}

/**
 * Reads a FlightData holding only data_header, app_metadata and data_body (what a
 * DoGet stream carries) as views into `buf`; undefined for anything else, which
 * the caller decodes with the generic decoder.
 */
export function readFlightData(buf: Uint8Array): { dataHeader: Uint8Array; appMetadata: Uint8Array; dataBody: Uint8Array } | undefined {
  const empty = buf.subarray(0, 0);
  const out = { dataHeader: empty, appMetadata: empty, dataBody: empty };
  let p = 0;
  // A varint of at most 5 bytes, or -1 when it runs past the end or longer.
  const varint = (): number => {
    let v = 0;
    for (let shift = 1; shift <= 2 ** 28; shift *= 128) {
      if (p >= buf.length) return -1;
      const b = buf[p++]!;
      v += (b & 0x7f) * shift;
      if ((b & 0x80) === 0) return v;
    }
    return -1;
  };
  while (p < buf.length) {
    const tag = varint();
    if (tag < 0 || (tag & 7) !== 2) return undefined;
    const len = varint();
    if (len < 0 || len > buf.length - p) return undefined;
    const v = buf.subarray(p, p + len);
    p += len;
    const field = Math.floor(tag / 8);
    if (field === 2) out.dataHeader = v;
    else if (field === 3) out.appMetadata = v;
    else if (field === 1000) out.dataBody = v;
    else return undefined;
  }
  return out;
}

interface Layout {
  /** Bytes per row per field; 0 for a bitmap (bool). */
  readonly widths: Int32Array;
  /** Per field, the bytes of its values (indices for the dictionary field). */
  readonly sources: readonly Uint8Array[];
  readonly dictionary: Data | undefined;
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The layout of `batch` when the template writer can write it, else undefined. */
function layoutOf(batch: RecordBatch): Layout | undefined {
  const children = batch.data.children;
  const widths = new Int32Array(children.length);
  const sources: Uint8Array[] = [];
  let dictionary: Data | undefined;
  for (let f = 0; f < children.length; f++) {
    const d = children[f]!;
    if (d.offset !== 0 || d.nullCount > 0 || d.values === undefined) return undefined;
    const t = d.type as { typeId: Type; bitWidth?: number; precision?: number; id?: number; indices?: { bitWidth: number } };
    let width: number;
    if (t.typeId === Type.Dictionary) {
      const dict = d.dictionary?.data;
      // One dictionary (id 0, int32 indices, a single utf8 chunk without nulls), as the templates write it.
      if (dictionary !== undefined || t.id !== 0 || t.indices?.bitWidth !== 32 || dict?.length !== 1) return undefined;
      const v = dict[0]!;
      if (v.typeId !== Type.Utf8 || v.offset !== 0 || v.nullCount > 0 || v.valueOffsets[0] !== 0) return undefined;
      dictionary = v;
      width = 4;
    } else if (t.typeId === Type.Int) width = t.bitWidth === 64 ? 8 : t.bitWidth === 32 ? 4 : -1;
    // timestamp[us]: the API presents int64 microseconds as it (the same 8-byte buffer); the body layout is int64's.
    else if (t.typeId === Type.Timestamp) width = 8;
    else if (t.typeId === Type.Float) width = t.precision === 2 ? 8 : t.precision === 1 ? 4 : -1;
    else if (t.typeId === Type.Bool) width = 0;
    else return undefined;
    if (width < 0) return undefined;
    widths[f] = width;
    sources.push(bytesOf(d.values as ArrayBufferView));
  }
  return { widths, sources, dictionary };
}

const scratch = new Uint8Array(4096);
const scratchView = new DataView(scratch.buffer);
const slots = new Float64Array(2 + 2 * 64 + 4 * 64);

/** The flatbuffer header of template `t` with `values` in its slots (prefix dropped), in shared scratch memory. */
function header(t: MetaTemplate, values: Float64Array): Uint8Array {
  const end = writeMeta(scratch, scratchView, 0, t, values);
  return scratch.subarray(8, end);
}

function dictionaryMessage(v: Data): Buffer {
  const nsym = v.length;
  const offsets = v.valueOffsets as Int32Array;
  const dataLength = offsets[nsym]!;
  dictSlotValues(nsym, dataLength, slots);
  const h = header(dictTemplate(), slots);
  const offLen = 4 * (nsym + 1);
  const f = frame(h.length, pad8(offLen) + pad8(dataLength));
  f.buf.set(h, f.headerAt);
  f.buf.set(bytesOf(offsets.subarray(0, nsym + 1)), f.bodyAt);
  f.buf.fill(0, f.bodyAt + offLen, f.bodyAt + pad8(offLen));
  const dataAt = f.bodyAt + pad8(offLen);
  f.buf.set((v.values as Uint8Array).subarray(0, dataLength), dataAt);
  f.buf.fill(0, dataAt + dataLength, dataAt + pad8(dataLength));
  return f.buf;
}

function recordBatchMessage(l: Layout, from: number, rows: number): Buffer {
  rbSlotValues(l.widths, rows, slots);
  const h = header(rbTemplate(l.widths.length), slots);
  const bodyLength = slots[0]!;
  const f = frame(h.length, bodyLength);
  f.buf.set(h, f.headerAt);
  let at = f.bodyAt;
  for (let k = 0; k < l.widths.length; k++) {
    const w = l.widths[k]!;
    // Bitmaps start on a byte: chunks of a batch with a bool column are cut at multiples of 8 rows.
    const [a, b] = w === 0 ? [from >> 3, (from + rows + 7) >> 3] : [from * w, (from + rows) * w];
    f.buf.set(l.sources[k]!.subarray(a, b), at);
    f.buf.fill(0, at + (b - a), at + pad8(b - a));
    at += pad8(b - a);
  }
  return f.buf;
}

/**
 * Writes a DoGet stream's record batches as FlightData bytes, a dictionary
 * message only when the batch's dictionary differs from the last one sent (a
 * dictionary batch that is not a delta replaces the previous one).
 */
export class FlightBatchWriter {
  private sent: Data | undefined;

  /** The FlightData of `batch`, in record batches of at most `maxRows` rows, built one at a time. */
  *messages(batch: RecordBatch, maxRows: number): Generator<Buffer> {
    const l = layoutOf(batch);
    if (l === undefined) {
      // The generic writer sends each chunk's dictionary with it.
      this.sent = undefined;
      for (const c of chunks(batch, maxRows)) {
        if (c.numRows === 0) continue;
        for (const m of batchMessages(c)) yield flightDataBytes(m.header, m.body);
      }
      return;
    }
    const step = l.widths.includes(0) ? Math.max(8, maxRows & ~7) : Math.max(1, maxRows);
    for (let from = 0; from < batch.numRows; from += step) {
      if (l.dictionary !== undefined && l.dictionary !== this.sent) {
        this.sent = l.dictionary;
        yield dictionaryMessage(l.dictionary);
      }
      yield recordBatchMessage(l, from, Math.min(step, batch.numRows - from));
    }
  }
}
