// Fast Arrow IPC stream codec for tick batches. The apache-arrow reader and
// writer build many objects per batch; at a million ticks per second that is
// the bottleneck, so the WAL hot path reads and writes the IPC framing and
// flatbuffer metadata directly:
//  - encode (ipcwrite.ts): schema message cached per table spec, message
//    metadata from templates, dictionary + record batch pairs and EOS written
//    into a single buffer;
//  - decode: message framing parsed here, buffers viewed in place (copied only
//    when unaligned), schema parse cached by its bytes, every length checked
//    against the bytes present, so corrupt input is rejected and never drives
//    an allocation. Only the Arrow types a table can hold are read; any other
//    type, compression or big-endian data is rejected with its name.
import * as flatbuffers from "flatbuffers";
import {
  Bool,
  Dictionary,
  Float16,
  Float32,
  Float64,
  Int8,
  Int16,
  Int32,
  Int64,
  LargeUtf8,
  Timestamp,
  Uint8,
  Uint16,
  Uint32,
  Uint64,
  Utf8,
  Vector,
  makeData,
} from "apache-arrow";
import type { Data, DataType } from "apache-arrow";
import { Message } from "apache-arrow/fb/message";
import { MessageHeader } from "apache-arrow/fb/message-header";
import { RecordBatch as FbRecordBatch } from "apache-arrow/fb/record-batch";
import { DictionaryBatch as FbDictionaryBatch } from "apache-arrow/fb/dictionary-batch";
import { Schema as FbSchema } from "apache-arrow/fb/schema";
import { Type as FbType } from "apache-arrow/fb/type";
import { Int as FbInt } from "apache-arrow/fb/int";
import { FloatingPoint as FbFloatingPoint } from "apache-arrow/fb/floating-point";
import { Timestamp as FbTimestamp } from "apache-arrow/fb/timestamp";
import { TaggedError } from "../../protocols/tagged.js";

export class IpcFormatError extends TaggedError("IpcFormatError") {}

// ---------------------------------------------------------------- encode

// The writer lives in ipcwrite.ts (metadata templates, no flatbuffer builder per batch).
export { encodeTickIpc, encodeTickIpcByBucket } from "./ipcwrite.js";

// ---------------------------------------------------------------- decode

interface FieldInfo {
  readonly name: string;
  readonly type: DataType;
  /** set for dictionary-encoded fields */
  readonly dictionaryId: number | undefined;
  readonly valueType: DataType | undefined;
}

export interface DecodedColumns {
  readonly rows: number;
  readonly names: readonly string[];
  readonly chunks: ReadonlyMap<string, readonly Data[]>;
}

const schemaParseCache = new Map<string, FieldInfo[]>();

function intType(bits: number, signed: boolean): DataType | undefined {
  if (signed) return bits === 8 ? new Int8() : bits === 16 ? new Int16() : bits === 32 ? new Int32() : bits === 64 ? new Int64() : undefined;
  return bits === 8 ? new Uint8() : bits === 16 ? new Uint16() : bits === 32 ? new Uint32() : bits === 64 ? new Uint64() : undefined;
}

function fieldType(typeType: FbType, get: (o: unknown) => unknown): DataType | undefined {
  switch (typeType) {
    case FbType.Int: {
      const t = get(new FbInt()) as FbInt;
      return intType(t.bitWidth(), t.isSigned());
    }
    case FbType.FloatingPoint: {
      const p = (get(new FbFloatingPoint()) as FbFloatingPoint).precision();
      return p === 0 ? new Float16() : p === 1 ? new Float32() : new Float64();
    }
    case FbType.Bool:
      return new Bool();
    case FbType.Utf8:
      return new Utf8();
    case FbType.LargeUtf8:
      return new LargeUtf8();
    case FbType.Timestamp: {
      const t = get(new FbTimestamp()) as FbTimestamp;
      return new Timestamp(t.unit() as never, t.timezone());
    }
    default:
      return undefined;
  }
}

/** Parses a schema message; a field of a type no table can hold is an IpcFormatError naming it. */
function parseSchema(meta: Uint8Array, msg: Message): FieldInfo[] {
  const key = Buffer.from(meta.buffer, meta.byteOffset, meta.byteLength).toString("latin1");
  const hit = schemaParseCache.get(key);
  if (hit !== undefined) return hit;
  const schema = msg.header(new FbSchema()) as FbSchema | null;
  if (!schema) throw new IpcFormatError("the schema message has no schema");
  if (schema.endianness() !== 0) throw new IpcFormatError("the stream is big-endian; send little-endian Arrow data");
  const fields: FieldInfo[] = [];
  for (let i = 0; i < schema.fieldsLength(); i++) {
    const f = schema.fields(i)!;
    const name = f.name() ?? "";
    const t = f.childrenLength() > 0 ? undefined : fieldType(f.typeType(), (o) => f.type(o));
    if (!t) {
      throw new IpcFormatError(`column ${name} has Arrow type ${FbType[f.typeType()] ?? f.typeType()}, which no table can hold; send float64, float32, int64, int32, bool, utf8 symbols and int64/timestamp times`);
    }
    const dict = f.dictionary();
    if (dict) {
      const idx = dict.indexType();
      const it = idx ? intType(idx.bitWidth(), idx.isSigned()) : new Int32();
      if (!it) throw new IpcFormatError(`column ${name}: dictionary index type is not an 8-64 bit integer`);
      fields.push({ name, type: new Dictionary(t, it as never, Number(dict.id())), dictionaryId: Number(dict.id()), valueType: t });
    } else {
      fields.push({ name, type: t, dictionaryId: undefined, valueType: undefined });
    }
  }
  if (schemaParseCache.size > 256) schemaParseCache.clear();
  schemaParseCache.set(key, fields);
  return fields;
}

/** A typed view of body bytes; copied when unaligned for the element size. */
function view<T extends ArrayBufferView>(C: { new (b: ArrayBufferLike, o: number, n: number): T; BYTES_PER_ELEMENT: number; new (n: number): T }, body: Uint8Array, off: number, len: number): T {
  const n = Math.floor(len / C.BYTES_PER_ELEMENT);
  const abs = body.byteOffset + off;
  if (abs % C.BYTES_PER_ELEMENT === 0) return new C(body.buffer, abs, n);
  const copy = new C(n);
  new Uint8Array(copy.buffer).set(body.subarray(off, off + n * C.BYTES_PER_ELEMENT));
  return copy;
}

function arrayTypeOf(t: DataType): { new (b: ArrayBufferLike, o: number, n: number): ArrayBufferView; BYTES_PER_ELEMENT: number; new (n: number): ArrayBufferView } {
  return (t as unknown as { ArrayType: never }).ArrayType;
}

/** Builds apache-arrow Data for the fields of one record batch. */
function readRecordBatch(rb: FbRecordBatch, body: Uint8Array, fields: readonly FieldInfo[], dicts: ReadonlyMap<number, Vector>, useDictValueType: boolean): Data[] {
  const rows = Number(rb.length());
  const out: Data[] = [];
  let buf = 0;
  const buffer = (): { off: number; len: number } => {
    const b = rb.buffers(buf++);
    if (!b) throw new IpcFormatError("record batch has fewer buffers than its schema needs");
    const off = Number(b.offset());
    const len = Number(b.length());
    if (off < 0 || len < 0 || off + len > body.length) throw new IpcFormatError(`buffer [${off}, ${off + len}) is outside the message body of ${body.length} bytes`);
    return { off, len };
  };
  if (rb.nodesLength() !== fields.length) throw new IpcFormatError(`record batch has ${rb.nodesLength()} field nodes, the schema ${fields.length} fields`);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const node = rb.nodes(i)!;
    const length = Number(node.length());
    const nullCount = Number(node.nullCount());
    if (length !== rows || nullCount < 0 || nullCount > length) throw new IpcFormatError(`field ${f.name}: node length ${length} / null count ${nullCount} do not fit the batch length ${rows}`);
    buffer(); // validity: nulls are rejected later by nullCount, values are not read through it
    const t = useDictValueType && f.valueType ? f.valueType : f.type;
    if (f.dictionaryId !== undefined && !useDictValueType) {
      const dictionary = dicts.get(f.dictionaryId);
      if (!dictionary) throw new IpcFormatError(`field ${f.name}: no dictionary batch with id ${f.dictionaryId} before the record batch`);
      const idx = (f.type as Dictionary).indices;
      const { off, len } = buffer();
      const C = arrayTypeOf(idx);
      if (len < length * C.BYTES_PER_ELEMENT) throw new IpcFormatError(`field ${f.name}: index buffer too short`);
      out.push(makeData({ type: f.type as Dictionary, length, nullCount, data: view(C as never, body, off, length * C.BYTES_PER_ELEMENT), dictionary } as never));
    } else if (t instanceof Utf8 || t instanceof LargeUtf8) {
      const o = buffer();
      const d = buffer();
      const C = t instanceof Utf8 ? Int32Array : BigInt64Array;
      if (o.len < (length + 1) * C.BYTES_PER_ELEMENT) throw new IpcFormatError(`field ${f.name}: offsets buffer too short`);
      out.push(makeData({ type: t, length, nullCount, valueOffsets: view(C as never, body, o.off, (length + 1) * C.BYTES_PER_ELEMENT), data: body.subarray(d.off, d.off + d.len) } as never));
    } else if (t instanceof Bool) {
      const { off, len } = buffer();
      if (len < (length + 7) >> 3) throw new IpcFormatError(`field ${f.name}: bitmap too short`);
      out.push(makeData({ type: t, length, nullCount, data: body.subarray(off, off + len) } as never));
    } else {
      const { off, len } = buffer();
      const C = arrayTypeOf(t);
      if (len < length * C.BYTES_PER_ELEMENT) throw new IpcFormatError(`field ${f.name}: values buffer too short (${len} bytes for ${length} rows)`);
      out.push(makeData({ type: t, length, nullCount, data: view(C as never, body, off, length * C.BYTES_PER_ELEMENT) } as never));
    }
  }
  return out;
}

const NO_COMPRESSION = "compressed Arrow IPC bodies are not accepted; send uncompressed record batches (NATS and gRPC compress the transport already)";

/**
 * Reads an Arrow IPC stream into per-column chunks. Throws IpcFormatError when
 * the framing or metadata is corrupt or uses what no table can hold.
 */
export function decodeIpcColumns(bytes: Uint8Array): DecodedColumns {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  let fields: FieldInfo[] | undefined;
  const dicts = new Map<number, Vector>();
  const chunks = new Map<string, Data[]>();
  let rows = 0;
  while (pos + 4 <= bytes.length) {
    let len = dv.getInt32(pos, true);
    let metaStart = pos + 4;
    if (len === -1) {
      if (pos + 8 > bytes.length) throw new IpcFormatError("stream ends inside a message header");
      len = dv.getInt32(pos + 4, true);
      metaStart = pos + 8;
    }
    if (len === 0) break; // end of stream
    if (len < 0 || metaStart + len > bytes.length) throw new IpcFormatError(`message metadata of ${len} bytes at offset ${pos} runs past the end of the ${bytes.length}-byte stream`);
    const meta = bytes.subarray(metaStart, metaStart + len);
    let msg: Message;
    let header: MessageHeader;
    let bodyLength: number;
    try {
      msg = Message.getRootAsMessage(new flatbuffers.ByteBuffer(meta));
      header = msg.headerType();
      bodyLength = Number(msg.bodyLength());
    } catch (e) {
      throw new IpcFormatError(`message metadata at offset ${pos} is not a valid flatbuffer (${(e as Error).message})`);
    }
    const bodyStart = metaStart + len;
    if (bodyLength < 0 || bodyStart + bodyLength > bytes.length) throw new IpcFormatError(`message body of ${bodyLength} bytes at offset ${bodyStart} runs past the end of the ${bytes.length}-byte stream`);
    const body = bytes.subarray(bodyStart, bodyStart + bodyLength);
    pos = bodyStart + bodyLength;
    try {
      if (header === MessageHeader.Schema) {
        if (fields !== undefined) throw new IpcFormatError("a second schema message in one stream");
        fields = parseSchema(meta, msg);
        for (const f of fields) chunks.set(f.name, []);
      } else if (header === MessageHeader.DictionaryBatch) {
        if (!fields) throw new IpcFormatError("dictionary batch before the schema");
        const db = msg.header(new FbDictionaryBatch()) as FbDictionaryBatch;
        const rb = db.data();
        if (!rb) throw new IpcFormatError("dictionary batch without data");
        if (rb.compression()) throw new IpcFormatError(NO_COMPRESSION);
        if (db.isDelta()) throw new IpcFormatError("delta dictionary batches are not accepted; send one dictionary per stream");
        const id = Number(db.id());
        const f = fields.find((x) => x.dictionaryId === id);
        if (!f) throw new IpcFormatError(`dictionary batch id ${id} matches no field`);
        dicts.set(id, new Vector(readRecordBatch(rb, body, [f], dicts, true)));
      } else if (header === MessageHeader.RecordBatch) {
        if (!fields) throw new IpcFormatError("record batch before the schema");
        const rb = msg.header(new FbRecordBatch()) as FbRecordBatch;
        if (rb.compression()) throw new IpcFormatError(NO_COMPRESSION);
        const data = readRecordBatch(rb, body, fields, dicts, false);
        data.forEach((d, i) => chunks.get(fields![i]!.name)!.push(d));
        rows += Number(rb.length());
      } else {
        throw new IpcFormatError(`message type ${MessageHeader[header] ?? header} is not part of a record batch stream`);
      }
    } catch (e) {
      if (e instanceof IpcFormatError) throw e;
      throw new IpcFormatError(`message at offset ${pos} is malformed (${(e as Error).message})`);
    }
  }
  if (!fields) throw new IpcFormatError("no schema message found");
  return { rows, names: fields.map((f) => f.name), chunks };
}
