// FlightData bytes written by hand. DoGet streams hundreds of megabytes, and
// the generic path (apache-arrow's stream writer, then protobuf-es) copies each
// body four times. A result batch of the usual layout (one dictionary-encoded
// symbol column, fixed-width or bool columns, no nulls) goes from its column
// arrays straight into the one buffer gRPC sends (src/codec/batchipc.ts: the
// metadata templates of the ingest writer); any other layout takes the
// generic writer. A FlightData here is data_header (field 2) and data_body
// (field 1000), both bytes; the client side reads them back the same way.
import type { Data, RecordBatch } from "apache-arrow";
import { batchLayout, dictionaryParts, recordBatchParts } from "../../codec/batchipc.js";
import type { MessageParts } from "../../codec/batchipc.js";
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

/** One message (framed metadata, body) as FlightData: data_header is the flatbuffer without the 8-byte prefix. */
function flightMessage(m: MessageParts): Buffer {
  const h = m.meta.subarray(8);
  const f = frame(h.length, m.bodyLength);
  f.buf.set(h, f.headerAt);
  m.writeBody(f.buf, f.bodyAt);
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
    const l = batchLayout(batch);
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
        yield flightMessage(dictionaryParts(l.dictionary));
      }
      yield flightMessage(recordBatchParts(l, from, Math.min(step, batch.numRows - from)));
    }
  }
}
