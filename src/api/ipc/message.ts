// Reads and checks the metadata of one Arrow IPC message (Message.fbs) from
// untrusted bytes: structure, sizes and the API limits, before the Arrow
// library sees any of it. Vtable slots follow Message.fbs / Schema.fbs.
import type { ApiLimits } from "../limits.js";
import { LimitExceeded } from "../limits.js";
import { IpcError } from "./errors.js";
import { FbReader } from "./flatbuf.js";
import type { FbTable } from "./flatbuf.js";

// MessageHeader union tags and MetadataVersion values (Message.fbs, Schema.fbs).
const HEADER_SCHEMA = 1;
const HEADER_DICTIONARY_BATCH = 2;
const HEADER_RECORD_BATCH = 3;
const METADATA_V4 = 3;
const METADATA_V5 = 4;
/** Nested fields deeper than this are refused (a real tick schema is flat). */
const MAX_FIELD_DEPTH = 32;
const MAX_CUSTOM_METADATA = 1024;

export type Compression = "lz4_frame" | "zstd";

export interface BufferRegion {
  readonly offset: number;
  readonly length: number;
}

export interface BatchInfo {
  readonly rows: number;
  readonly nodes: number;
  readonly buffers: readonly BufferRegion[];
  readonly compression: Compression | undefined;
}

export type MessageInfo =
  | { readonly type: "schema"; readonly bodyLength: number; readonly fields: number; readonly dictionaryIds: readonly number[] }
  | { readonly type: "recordBatch"; readonly bodyLength: number; readonly batch: BatchInfo }
  | { readonly type: "dictionaryBatch"; readonly bodyLength: number; readonly id: number; readonly isDelta: boolean; readonly batch: BatchInfo };

function checkCustomMetadata(t: FbTable, index: number, what: string): void {
  const v = t.vector(index, 4, `${what} custom_metadata`);
  if (!v) return;
  if (v.length > MAX_CUSTOM_METADATA) t.r.fail(`${what} has ${v.length} custom metadata entries`);
  for (let k = 0; k < v.length; k++) {
    const kv = t.tableAt(v, k, `${what} custom_metadata[${k}]`);
    kv.string(0, "custom metadata key");
    kv.string(1, "custom metadata value");
  }
}

interface FieldWalk {
  count: number;
  readonly dictionaryIds: number[];
}

function checkFields(parent: FbTable, index: number, depth: number, walk: FieldWalk, limits: ApiLimits, what: string): number {
  const v = parent.vector(index, 4, `${what} fields`);
  if (!v) return 0;
  if (depth > MAX_FIELD_DEPTH) parent.r.fail(`fields nested deeper than ${MAX_FIELD_DEPTH} levels`);
  for (let k = 0; k < v.length; k++) {
    walk.count++;
    if (walk.count > limits.maxColumns) {
      throw new LimitExceeded("maxColumns", `${what}: the number of columns (nested fields included)`, Math.max(walk.count, v.length), limits.maxColumns, "send fewer columns");
    }
    const f = parent.tableAt(v, k, `${what} field ${k}`);
    f.string(0, "field name");
    const typeType = f.u8(2, 0);
    if (typeType === 0 || !f.has(3)) f.r.fail(`field ${k} has no type`);
    f.table(3, `field ${k} type`);
    const dict = f.table(4, `field ${k} dictionary encoding`);
    if (dict) {
      walk.dictionaryIds.push(dict.i64(0, 0, "dictionary id"));
      dict.table(1, "dictionary index type");
    }
    checkFields(f, 5, depth + 1, walk, limits, what);
    checkCustomMetadata(f, 6, `${what} field ${k}`);
  }
  return v.length;
}

function readBatch(t: FbTable, bodyLength: number, maxRows: number, rowsLimit: "maxBatchRows" | "maxDictionaryEntries", limits: ApiLimits, what: string): BatchInfo {
  const rows = t.i64(0, 0, "record batch length");
  if (rows < 0) t.r.fail(`record batch length ${rows} is negative`);
  if (rows > maxRows) {
    throw new LimitExceeded(rowsLimit, `${what}: the rows of one ${rowsLimit === "maxBatchRows" ? "record" : "dictionary"} batch`, rows, maxRows, "split the data into smaller batches");
  }
  const nodes = t.vector(1, 16, "field nodes");
  const nodeCount = nodes?.length ?? 0;
  // Each field of a flat schema has one node; nested fields add more, all bounded by maxColumns.
  if (nodeCount > limits.maxColumns) {
    throw new LimitExceeded("maxColumns", `${what}: the number of field nodes of a batch`, nodeCount, limits.maxColumns, "send fewer columns");
  }
  for (let k = 0; k < nodeCount; k++) {
    const p = nodes!.start + 16 * k;
    const length = t.r.i64(p, "field node length");
    const nulls = t.r.i64(p + 8, "field node null count");
    if (length < 0 || nulls < 0 || nulls > length) t.r.fail(`field node ${k} has length ${length} and null count ${nulls}`);
    if (length > maxRows) {
      throw new LimitExceeded(rowsLimit, `${what}: the length of column node ${k}`, length, maxRows, "split the data into smaller batches");
    }
  }
  const bufVec = t.vector(2, 16, "buffers");
  const bufferCount = bufVec?.length ?? 0;
  if (bufferCount > 4 * limits.maxColumns) t.r.fail(`${bufferCount} buffers for at most ${limits.maxColumns} columns`);
  const buffers: BufferRegion[] = [];
  for (let k = 0; k < bufferCount; k++) {
    const p = bufVec!.start + 16 * k;
    const offset = t.r.i64(p, "buffer offset");
    const length = t.r.i64(p + 8, "buffer length");
    if (offset < 0 || length < 0 || offset + length > bodyLength) {
      throw new IpcError(`${what}: buffer ${k} (offset ${offset}, length ${length}) lies outside the ${bodyLength}-byte message body; the batch is corrupt`);
    }
    buffers.push({ offset, length });
  }
  let compression: Compression | undefined;
  const c = t.table(3, "body compression");
  if (c) {
    const codec = c.u8(0, 0);
    if (c.u8(1, 0) !== 0) throw new IpcError(`${what}: body compression method ${c.u8(1, 0)} is unknown; only per-buffer compression exists`);
    if (codec === 0) compression = "lz4_frame";
    else if (codec === 1) compression = "zstd";
    else throw new IpcError(`${what}: compression codec ${codec} is unknown; use zstd or none`);
  }
  const variadic = t.vector(4, 8, "variadic buffer counts");
  if (variadic && variadic.length > nodeCount) t.r.fail(`${variadic.length} variadic buffer counts for ${nodeCount} nodes`);
  return { rows, nodes: nodeCount, buffers, compression };
}

/** Parses one message header (the flatbuffer, without continuation/length prefix). */
export function readMessageInfo(header: Uint8Array, limits: ApiLimits, what: string): MessageInfo {
  const r: FbReader = new FbReader(header, what);
  const msg = r.root();
  const version = msg.i16(0, 0);
  if (version !== METADATA_V4 && version !== METADATA_V5) {
    throw new IpcError(`${what}: Arrow IPC metadata version ${version} is not supported; write IPC format V4 or V5 (any Arrow release since 0.15)`);
  }
  const headerType = msg.u8(1, 0);
  const bodyLength = msg.i64(3, 0, "body length");
  if (bodyLength < 0) r.fail(`body length ${bodyLength} is negative`);
  if (bodyLength > limits.maxMessageBytes) {
    throw new LimitExceeded("maxMessageBytes", `${what}: the declared body of one IPC message`, bodyLength, limits.maxMessageBytes, "send smaller batches");
  }
  checkCustomMetadata(msg, 4, what);
  const h = msg.table(2, "message header");
  if (!h) r.fail("the message has no header");
  switch (headerType) {
    case HEADER_SCHEMA: {
      const walk: FieldWalk = { count: 0, dictionaryIds: [] };
      const fields = checkFields(h, 1, 0, walk, limits, what);
      checkCustomMetadata(h, 2, `${what} schema`);
      h.vector(3, 8, "schema features");
      return { type: "schema", bodyLength, fields, dictionaryIds: walk.dictionaryIds };
    }
    case HEADER_RECORD_BATCH:
      return { type: "recordBatch", bodyLength, batch: readBatch(h, bodyLength, limits.maxBatchRows, "maxBatchRows", limits, what) };
    case HEADER_DICTIONARY_BATCH: {
      const id = h.i64(0, 0, "dictionary id");
      const data = h.table(1, "dictionary data");
      if (!data) r.fail("the dictionary batch has no data");
      const batch = readBatch(data, bodyLength, limits.maxDictionaryEntries, "maxDictionaryEntries", limits, what);
      return { type: "dictionaryBatch", bodyLength, id, isDelta: h.u8(2, 0) !== 0, batch };
    }
    default:
      throw new IpcError(`${what}: IPC message type ${headerType} is not accepted; send a schema, dictionary batches and record batches (no tensors)`);
  }
}
