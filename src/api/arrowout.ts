// Query results leaving the server: engine batches are held to the query's
// declared schema (so dictionary ids match the schema the client already has),
// cut into chunks of at most maxChunkRows, and written as Arrow IPC.
import { RecordBatch, Schema, Table, Type, tableToIPC } from "apache-arrow";
import type { DataType } from "apache-arrow";
import { batchStream } from "../codec/batchipc.js";
import { ApiError } from "./errors.js";
import { splitOwnIpcStream } from "./ipc/index.js";
import type { IpcMessage } from "./ipc/index.js";

const valueTypeId = (t: DataType): Type => (t.typeId === Type.Dictionary ? (t as unknown as { dictionary: DataType }).dictionary.typeId : t.typeId);

/** The declared schema with the result's metadata (proxist.complete, notes), one object per declared schema. */
const withMeta = new WeakMap<Schema, Schema>();
export function resultSchema(schema: Schema, metadata: ReadonlyMap<string, string>): Schema {
  if (metadata.size === 0) return schema;
  const known = withMeta.get(schema);
  if (known && sameMeta(known.metadata, metadata)) return known;
  const merged = new Schema(schema.fields, new Map([...schema.metadata, ...metadata]));
  withMeta.set(schema, merged);
  return merged;
}

function sameMeta(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size < b.size) return false;
  for (const [k, v] of b) if (a.get(k) !== v) return false;
  return true;
}

/** `batch` under `schema` (keeping the batch's metadata); throws INTERNAL when the engine broke its own schema. */
export function conform(declared: Schema, batch: RecordBatch): RecordBatch {
  const schema = resultSchema(declared, batch.schema.metadata);
  if (batch.schema === schema) return batch;
  const a = schema.fields;
  const b = batch.schema.fields;
  const same = a.length === b.length && a.every((f, i) => f.name === b[i]!.name && f.typeId === b[i]!.typeId && valueTypeId(f.type) === valueTypeId(b[i]!.type));
  if (!same) {
    throw new ApiError("INTERNAL", `the query engine produced columns (${b.map((f) => `${f.name}:${f.type}`).join(", ")}) that differ from its declared result (${a.map((f) => `${f.name}:${f.type}`).join(", ")})`);
  }
  return new RecordBatch(schema, batch.data);
}

/**
 * Rows per chunk of `batch`: at most `maxRows`, and few enough that a chunk's
 * column buffers (dictionaries aside: they travel once) stay under `maxBytes`.
 */
export function chunkRows(batch: RecordBatch, maxRows: number, maxBytes: number): number {
  if (batch.numRows === 0) return maxRows;
  const perRow = batch.data.byteLength / batch.numRows;
  return Math.max(1, Math.min(maxRows, Math.floor(maxBytes / Math.max(1, perRow))));
}

/** Slices of at most `maxRows` rows. */
export function* chunks(batch: RecordBatch, maxRows: number): Generator<RecordBatch> {
  if (batch.numRows <= maxRows) {
    yield batch;
    return;
  }
  for (let start = 0; start < batch.numRows; start += maxRows) yield batch.slice(start, Math.min(start + maxRows, batch.numRows));
}

/** One self-contained IPC stream (schema, dictionaries, the batch). */
export function batchToIpc(batch: RecordBatch): Uint8Array {
  return batchStream(batch);
}

/** A schema-only IPC stream (an empty result). */
export function schemaToIpc(schema: Schema): Uint8Array {
  return tableToIPC(new Table(schema), "stream");
}

/** The encapsulated schema message (FlightInfo.schema, SchemaResult.schema, first DoGet message). */
export function schemaMessage(schema: Schema): IpcMessage {
  const [first] = splitOwnIpcStream(schemaToIpc(schema));
  if (!first) throw new ApiError("INTERNAL", "the Arrow writer produced no schema message");
  return first;
}

/** The dictionary and record batch messages of `batch` (its schema message dropped). */
export function batchMessages(batch: RecordBatch): IpcMessage[] {
  return splitOwnIpcStream(batchToIpc(batch)).slice(1);
}
