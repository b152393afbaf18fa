// Arrow record batches (apache-arrow's in-memory form) written as IPC messages
// by hand, with the metadata templates of the ingest writer (./ipcwrite.ts).
// apache-arrow's stream writer costs ~70-90 us for a feed update of 250 rows
// (a schema, a dictionary and a record batch message through flatbuffer
// builders and visitors), most of a feed message's cost; the templates write
// the same bytes in a few microseconds. Only the usual layout is written here
// (one dictionary-encoded utf8 symbol column, fixed-width or bool columns, no
// nulls, no slices); `batchLayout` says undefined for anything else and the
// caller takes apache-arrow's writer. Two framings use it: a whole IPC stream
// (feeds, query chunks) and Flight's FlightData (src/api/flight/wire.ts).
import { RecordBatchStreamWriter, Table, Type } from "apache-arrow";
import type { Data, DataType, RecordBatch, Schema } from "apache-arrow";
import { EOS, dictSlotValues, dictTemplate, pad8, rbSlotValues, rbTemplate, writeMeta } from "./ipcwrite.js";

/** What the template writer needs of a batch. */
export interface BatchLayout {
  /** Bytes per row per field; 0 for a bitmap (bool). */
  readonly widths: Int32Array;
  /** Per field, the bytes of its values (indices for the dictionary field). */
  readonly sources: readonly Uint8Array[];
  /** The symbols of the dictionary field (utf8, one chunk), if the batch has one. */
  readonly dictionary: Data | undefined;
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The layout of `batch` when the template writer can write it, else undefined. */
export function batchLayout(batch: RecordBatch): BatchLayout | undefined {
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

const slots = new Float64Array(2 + 2 * 64 + 4 * 64);

/** One message of a batch: its framed metadata (continuation, length, flatbuffer, padding), body length, and a writer of the body. */
export interface MessageParts {
  /** Framed metadata in shared scratch memory: valid until the next call here. */
  readonly meta: Uint8Array;
  readonly bodyLength: number;
  writeBody(out: Uint8Array, at: number): void;
}

const scratch = new Uint8Array(8192);
const scratchView = new DataView(scratch.buffer);

function framedMeta(t: Parameters<typeof writeMeta>[3], values: Float64Array): Uint8Array {
  return scratch.subarray(0, writeMeta(scratch, scratchView, 0, t, values));
}

/** The dictionary batch (id 0, not a delta) of the utf8 symbols `v`. */
export function dictionaryParts(v: Data): MessageParts {
  const nsym = v.length;
  const offsets = v.valueOffsets as Int32Array;
  const dataLength = offsets[nsym]!;
  dictSlotValues(nsym, dataLength, slots);
  const offLen = 4 * (nsym + 1);
  return {
    meta: framedMeta(dictTemplate(), slots),
    bodyLength: pad8(offLen) + pad8(dataLength),
    writeBody: (out, at) => {
      out.set(bytesOf(offsets.subarray(0, nsym + 1)), at);
      out.fill(0, at + offLen, at + pad8(offLen));
      const dataAt = at + pad8(offLen);
      out.set((v.values as Uint8Array).subarray(0, dataLength), dataAt);
      out.fill(0, dataAt + dataLength, dataAt + pad8(dataLength));
    },
  };
}

/** The record batch of rows [from, from + rows) of a batch of layout `l` (`from` a multiple of 8 when a field is a bitmap). */
export function recordBatchParts(l: BatchLayout, from: number, rows: number): MessageParts {
  rbSlotValues(l.widths, rows, slots);
  return {
    meta: framedMeta(rbTemplate(l.widths.length), slots),
    bodyLength: slots[0]!,
    writeBody: (out, at) => {
      for (let k = 0; k < l.widths.length; k++) {
        const w = l.widths[k]!;
        const [a, b] = w === 0 ? [from >> 3, (from + rows + 7) >> 3] : [from * w, (from + rows) * w];
        out.set(l.sources[k]!.subarray(a, b), at);
        out.fill(0, at + (b - a), at + pad8(b - a));
        at += pad8(b - a);
      }
    },
  };
}

/**
 * Framed schema messages (apache-arrow's own bytes) by what they say. Not by
 * schema object: apache-arrow's RecordBatch makes a Schema of its own for
 * every batch, so an object key would miss every time.
 */
const schemaMessages = new Map<string, Uint8Array>();
const SCHEMA_CACHE_MAX = 256;

const typeKey = (t: DataType): string => {
  const d = t as { typeId: Type; id?: number; isOrdered?: boolean; indices?: DataType; dictionary?: DataType };
  // A dictionary's id, index type and ordering are in its schema message but not in its name.
  return d.typeId === Type.Dictionary ? `dict(${d.id},${d.isOrdered},${typeKey(d.indices!)},${typeKey(d.dictionary!)})` : String(t);
};

/** What a schema message encodes: every field's name, type, nullability and metadata, and the schema's metadata. */
const schemaKey = (schema: Schema): string =>
  JSON.stringify([schema.fields.map((f) => [f.name, typeKey(f.type), f.nullable, [...f.metadata]]), [...schema.metadata]]);

export function framedSchemaMessage(schema: Schema): Uint8Array {
  const key = schemaKey(schema);
  let m = schemaMessages.get(key);
  if (m === undefined) {
    const stream = RecordBatchStreamWriter.writeAll(new Table(schema)).toUint8Array(true);
    const metaLen = new DataView(stream.buffer, stream.byteOffset, stream.byteLength).getInt32(4, true);
    m = stream.slice(0, 8 + metaLen);
    // Bounded: a schema per distinct result shape and metadata (notes carry text), not per batch.
    if (schemaMessages.size >= SCHEMA_CACHE_MAX) schemaMessages.clear();
    schemaMessages.set(key, m);
  }
  return m;
}

/**
 * `batch` as one whole Arrow IPC stream (schema, dictionary, record batch,
 * end of stream), byte for byte what a reader of apache-arrow's writer reads;
 * apache-arrow's writer for a layout the templates do not cover, and for no rows.
 */
export function batchStream(batch: RecordBatch): Uint8Array {
  const l = batch.numRows > 0 ? batchLayout(batch) : undefined;
  if (l === undefined) return RecordBatchStreamWriter.writeAll([batch]).toUint8Array(true);
  const schema = framedSchemaMessage(batch.schema);
  const dict = l.dictionary === undefined ? undefined : dictionaryParts(l.dictionary);
  // The dictionary's metadata lives in the scratch buffer the record batch's reuses: copy it out first.
  const dictMeta = dict?.meta.slice();
  const rb = recordBatchParts(l, 0, batch.numRows);
  const total = schema.length + (dict === undefined ? 0 : dictMeta!.length + dict.bodyLength) + rb.meta.length + rb.bodyLength + EOS.length;
  const out = new Uint8Array(total);
  out.set(schema, 0);
  let p = schema.length;
  if (dict !== undefined) {
    out.set(dictMeta!, p);
    p += dictMeta!.length;
    dict.writeBody(out, p);
    p += dict.bodyLength;
  }
  out.set(rb.meta, p);
  p += rb.meta.length;
  rb.writeBody(out, p);
  p += rb.bodyLength;
  out.set(EOS, p);
  return out;
}
