// Arrow schema of a WAL tick payload for a table spec: the symbol column as
// Dictionary<Utf8, Int32> (dictionary id 0), the time column as Int64 microseconds, then the value
// columns in spec order. Client batches are looser (see src/ingest/decode.ts).
import { Bool, Dictionary, Field, Float32, Float64, Int32, Int64, Schema, Utf8 } from "apache-arrow";
import type { DataType } from "apache-arrow";
import type { TableSpec, ValueType } from "./tablespec.js";

export function arrowTypeOf(type: ValueType): DataType {
  switch (type) {
    case "float64":
      return new Float64();
    case "float32":
      return new Float32();
    case "int64":
      return new Int64();
    case "int32":
      return new Int32();
    case "bool":
      return new Bool();
  }
}

export function walArrowSchema(spec: TableSpec): Schema {
  return new Schema([
    new Field(spec.symbolColumn, new Dictionary(new Utf8(), new Int32(), 0), false),
    new Field(spec.timeColumn, new Int64(), false),
    ...spec.columns.map((c) => new Field(c.name, arrowTypeOf(c.type), false)),
  ]);
}
