// Query results as Parquet (Accept: application/vnd.apache.parquet): the Arrow
// IPC answer handed to parquet-wasm (the Rust parquet crate's writer), so no
// row objects are built. Time columns arrive as timestamp[us, UTC] and are
// stored as INT64 TIMESTAMP(MICROS, UTC); nothing is coerced to milliseconds.
import type { RecordBatch, Schema } from "apache-arrow";
import { Compression, Table, WriterPropertiesBuilder, writeParquet } from "parquet-wasm";
import { renderArrow } from "./render.js";

export const PARQUET_TYPE = "application/vnd.apache.parquet";

export function renderParquet(schema: Schema, batches: readonly RecordBatch[]): Uint8Array {
  const table = Table.fromIPCStream(renderArrow(schema, batches));
  const props = new WriterPropertiesBuilder().setCompression(Compression.ZSTD).setCreatedBy("proxist").build();
  return writeParquet(table, props);
}
