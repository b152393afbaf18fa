// How results look to a client: time columns (int64 microseconds in the engine,
// marked with field metadata proxist.unit=us) leave as Arrow timestamp[us, UTC]
// so pandas and pyarrow show datetimes; a query may ask for the raw int64 with
// "tsType":"int64". Wraps any QueryEngine; the engine never sees tsType.
import { Field, RecordBatch, Schema, Struct, TimestampMicrosecond, makeData } from "apache-arrow";
import type { Data } from "apache-arrow";
import { ApiError } from "./errors.js";
import type { QueryEngine } from "./queryengine.js";

export type TsType = "timestamp" | "int64";
const TS_TYPES: readonly TsType[] = ["timestamp", "int64"];

/** Splits the API's presentation options off a JSON query. */
export function presentationOf(query: unknown): { query: unknown; tsType: TsType } {
  if (typeof query !== "object" || query === null || !("tsType" in query)) return { query, tsType: "timestamp" };
  const { tsType, ...rest } = query as Record<string, unknown>;
  if (!TS_TYPES.includes(tsType as TsType)) {
    throw new ApiError("INVALID_ARGUMENT", `"tsType" must be "timestamp" (Arrow timestamp[us, UTC], the default) or "int64" (microseconds since the epoch), got ${JSON.stringify(tsType)}`);
  }
  return { query: rest, tsType: tsType as TsType };
}

const isTs = (f: Field): boolean => f.metadata.get("proxist.unit") === "us" && f.typeId !== new TimestampMicrosecond().typeId;

/** The schema as the client sees it: time fields as timestamp[us, UTC] unless tsType is int64. */
export function presentSchema(schema: Schema, tsType: TsType): Schema {
  if (tsType === "int64" || !schema.fields.some(isTs)) return schema;
  return new Schema(
    schema.fields.map((f) => (isTs(f) ? new Field(f.name, new TimestampMicrosecond("UTC"), f.nullable, f.metadata) : f)),
    schema.metadata,
  );
}

/** The batch under `presented` (same buffers; an int64 column of microseconds is a timestamp[us] column as is). */
export function presentBatch(batch: RecordBatch, presented: Schema): RecordBatch {
  if (presented === batch.schema) return batch;
  const children: Data[] = batch.data.children.map((c, i) => {
    const want = presented.fields[i]!.type;
    if (c.type.typeId === want.typeId) return c;
    return makeData({ type: want, offset: c.offset, length: c.length, nullCount: c.nullCount, nullBitmap: c.nullBitmap, data: c.values } as never);
  });
  // The batch's own schema metadata (proxist.complete, notes) is kept.
  const schema = new Schema(presented.fields, batch.schema.metadata.size > 0 ? batch.schema.metadata : presented.metadata);
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: batch.numRows, nullCount: 0, children }));
}

export function presentingEngine(engine: QueryEngine): QueryEngine {
  return {
    schema: async (tenant, q) => {
      const { query, tsType } = presentationOf(q);
      return presentSchema(await engine.schema(tenant, query), tsType);
    },
    run: async function* (tenant, q, signal, caller) {
      const { query, tsType } = presentationOf(q);
      let presented: Schema | undefined;
      for await (const batch of engine.run(tenant, query, signal, caller)) {
        presented ??= presentSchema(batch.schema, tsType);
        yield presentBatch(batch, presented);
      }
    },
    tableQuery: (table) => engine.tableQuery(table),
  };
}

