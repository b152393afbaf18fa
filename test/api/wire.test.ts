// Hand-written FlightData: what FlightBatchWriter sends reads back with
// apache-arrow as the batch it was given (template layout and the generic
// fallback), a dictionary goes out once per dictionary, and the hand-rolled
// protobuf agrees with protobuf-es in both directions.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Type, tableFromIPC } from "apache-arrow";
import type { RecordBatch, Table } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { FlightDataSchema, FlightDescriptorSchema, FlightDescriptor_DescriptorType } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { schemaMessage } from "../../src/api/arrowout.js";
import { presentBatch, presentSchema } from "../../src/api/presentation.js";
import { DEFAULT_LIMITS } from "../../src/api/index.js";
import { joinIpcStream, readMessageInfo } from "../../src/api/ipc/index.js";
import { FlightBatchWriter, flightDataBytes, readFlightData } from "../../src/api/flight/wire.js";
import { arrowSchema, toRecordBatches } from "../../src/query/index.js";
import type { OutField, OutTable } from "../../src/query/index.js";
import { rng } from "../../src/demo/randomwalk.js";

const FIELDS: OutField[] = [
  { name: "sym", kind: "sym", nullable: false },
  { name: "ts", kind: "ts", nullable: false },
  { name: "price", kind: "float64", nullable: false },
  { name: "qty", kind: "float32", nullable: false },
  { name: "n", kind: "int32", nullable: false },
  { name: "big", kind: "int64", nullable: false },
  { name: "flag", kind: "bool", nullable: false },
];
const schema = arrowSchema(FIELDS);

function table(rows: number, seed: number, symbols: string[], valid?: Uint8Array): OutTable {
  const r = rng(seed);
  const col = <T extends { [i: number]: number }>(a: T, f: () => number): T => {
    for (let i = 0; i < rows; i++) a[i] = f();
    return a;
  };
  return {
    rows,
    symbols,
    columns: [
      { field: FIELDS[0]!, data: col(new Int32Array(rows), () => Math.floor(r() * symbols.length)) },
      { field: FIELDS[1]!, data: col(new Float64Array(rows), () => 1.7e15 + Math.floor(r() * 1e9)) },
      { field: FIELDS[2]!, data: col(new Float64Array(rows), () => r() * 100), ...(valid ? { valid } : {}) },
      { field: FIELDS[3]!, data: col(new Float32Array(rows), () => Math.fround(r() * 10)) },
      { field: FIELDS[4]!, data: col(new Int32Array(rows), () => Math.floor(r() * 1e6) - 5e5) },
      { field: FIELDS[5]!, data: col(new Float64Array(rows), () => Math.floor(r() * 2 ** 52) - 2 ** 51) },
      { field: FIELDS[6]!, data: col(new Uint8Array(rows), () => (r() < 0.5 ? 1 : 0)) },
    ],
  };
}

/** The bytes a DoGet client receives, read back as a table; also the message types in order. */
function readBack(messages: readonly Buffer[]): { table: Table; types: string[] } {
  const parsed = messages.map((m) => readFlightData(m)!);
  const types = parsed.map((p) => readMessageInfo(p.dataHeader, DEFAULT_LIMITS, "test").type);
  const first = schemaMessage(schema);
  const table = tableFromIPC(joinIpcStream([first, ...parsed.map((p) => ({ header: p.dataHeader, body: p.dataBody }))]));
  return { table, types };
}

const rowsOf = (t: Table | RecordBatch): unknown[] => t.toArray().map((r: { toJSON(): unknown }) => r.toJSON());

describe("FlightData wire", () => {
  it("wire - template batches read back equal, cut at a multiple of 8 rows when a bool column is present", () => {
    const [batch] = toRecordBatches(table(1000, 1, ["AAPL", "MSFT", "ÆØÅ", ""]), schema);
    const out = [...new FlightBatchWriter().messages(batch!, 100)];
    const { table: got, types } = readBack(out);
    expect(types[0]).toBe("dictionaryBatch");
    expect(types.slice(1).every((t) => t === "recordBatch")).toBe(true);
    // 100 rows per batch rounded down to 96 for the bitmap: ceil(1000 / 96) = 11 batches.
    expect(types.length).toBe(1 + 11);
    expect(got.numRows).toBe(1000);
    expect(rowsOf(got)).toEqual(rowsOf(batch!));
  });

  it("wire - a dictionary goes out once, and again only when the next batch brings another", () => {
    const w = new FlightBatchWriter();
    const [a, b] = toRecordBatches(table(300, 2, ["X", "Y"]), schema, 150);
    const [c] = toRecordBatches(table(50, 3, ["Z", "Y", "X"]), schema);
    const out = [...w.messages(a!, 64), ...w.messages(b!, 64), ...w.messages(c!, 64)];
    const { table: got, types } = readBack(out);
    expect(types.filter((t) => t === "dictionaryBatch").length).toBe(2);
    expect(rowsOf(got)).toEqual([...rowsOf(a!), ...rowsOf(b!), ...rowsOf(c!)]);
  });

  it("wire - time columns presented as timestamp[us] (the API's default) take the template path too: one dictionary, rows equal", () => {
    const [batch] = toRecordBatches(table(1000, 5, ["AAPL", "MSFT", "IBM"]), schema);
    const presented = presentSchema(batch!.schema, "timestamp");
    expect(presented.fields[1]!.type.typeId).toBe(Type.Timestamp);
    const shown = presentBatch(batch!, presented);
    const out = [...new FlightBatchWriter().messages(shown, 100)];
    const parsed = out.map((m) => readFlightData(m)!);
    const types = parsed.map((p) => readMessageInfo(p.dataHeader, DEFAULT_LIMITS, "test").type);
    // The generic writer would send the dictionary with each of the 11 batches.
    expect(types.filter((t) => t === "dictionaryBatch")).toHaveLength(1);
    const got = tableFromIPC(joinIpcStream([schemaMessage(presented), ...parsed.map((p) => ({ header: p.dataHeader, body: p.dataBody }))]));
    expect(rowsOf(got)).toEqual(rowsOf(shown));
  });

  it("wire - a batch with nulls takes the generic writer and still reads back equal", () => {
    const valid = new Uint8Array(200).map((_, i) => (i % 7 === 0 ? 0 : 1));
    const nullable = arrowSchema(FIELDS.map((f) => (f.name === "price" ? { ...f, nullable: true } : f)));
    const [batch] = toRecordBatches(table(200, 4, ["A", "B", "C"], valid), nullable);
    const out = [...new FlightBatchWriter().messages(batch!, 64)];
    const parsed = out.map((m) => readFlightData(m)!);
    const got = tableFromIPC(joinIpcStream([schemaMessage(nullable), ...parsed.map((p) => ({ header: p.dataHeader, body: p.dataBody }))]));
    expect(got.getChild("price")!.nullCount).toBe(29);
    expect(rowsOf(got)).toEqual(rowsOf(batch!));
  });

  it("wire - flightDataBytes is the FlightData protobuf-es encodes, and readFlightData reads what protobuf-es writes", () => {
    const header = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const body = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff);
    const mine = flightDataBytes(header, body);
    const ref = toBinary(FlightDataSchema, create(FlightDataSchema, { dataHeader: header, dataBody: body }));
    expect(Buffer.from(mine).equals(Buffer.from(ref))).toBe(true);
    const decoded = fromBinary(FlightDataSchema, mine);
    expect(new Uint8Array(decoded.dataHeader)).toEqual(header);
    expect(new Uint8Array(decoded.dataBody)).toEqual(body);
    const withMeta = toBinary(FlightDataSchema, create(FlightDataSchema, { dataHeader: header, appMetadata: Uint8Array.of(1, 2), dataBody: body }));
    const read = readFlightData(withMeta)!;
    expect(read.appMetadata).toEqual(Uint8Array.of(1, 2));
    expect(read.dataBody).toEqual(body);
    // A descriptor (field 1) or a truncated message is left to the generic decoder.
    const withDescriptor = toBinary(
      FlightDataSchema,
      create(FlightDataSchema, { flightDescriptor: create(FlightDescriptorSchema, { type: FlightDescriptor_DescriptorType.PATH, path: ["t"] }), dataHeader: header }),
    );
    expect(readFlightData(withDescriptor)).toBeUndefined();
    expect(readFlightData(mine.subarray(0, mine.length - 1))).toBeUndefined();
  });
});
