// Whole IPC streams written with the metadata templates (src/codec/batchipc.ts):
// what a reader gets from them equals what it gets from apache-arrow's own
// writer (schema with its metadata, dictionary, every value), the checked
// reader of untrusted IPC accepts every message, and what the templates do not
// cover (nulls, no rows, no dictionary... ) still reads back right.
import { RecordBatchStreamWriter, Type, tableFromIPC } from "apache-arrow";
import type { RecordBatch, Table } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { batchLayout, batchStream } from "../../src/codec/batchipc.js";
import { presentBatch, presentSchema } from "../../src/api/presentation.js";
import { DEFAULT_LIMITS } from "../../src/api/index.js";
import { splitIpcStream } from "../../src/api/ipc/index.js";
import { resultSchema } from "../../src/api/arrowout.js";
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

function table(fields: readonly OutField[], rows: number, seed: number, symbols: string[], valid?: Uint8Array): OutTable {
  const r = rng(seed);
  const fill = <T extends { [i: number]: number }>(a: T, f: () => number): T => {
    for (let i = 0; i < rows; i++) a[i] = f();
    return a;
  };
  const data = (f: OutField) => {
    switch (f.kind) {
      case "sym":
        return fill(new Int32Array(rows), () => Math.floor(r() * symbols.length));
      case "ts":
        return fill(new Float64Array(rows), () => 1.7e15 + Math.floor(r() * 1e9));
      case "float32":
        return fill(new Float32Array(rows), () => Math.fround(r() * 10));
      case "int32":
        return fill(new Int32Array(rows), () => Math.floor(r() * 1e6) - 5e5);
      case "int64":
      case "i64":
        return fill(new Float64Array(rows), () => Math.floor(r() * 2 ** 52) - 2 ** 51);
      case "bool":
        return fill(new Uint8Array(rows), () => (r() < 0.5 ? 1 : 0));
      default:
        return fill(new Float64Array(rows), () => r() * 100);
    }
  };
  return { rows, symbols, columns: fields.map((f) => ({ field: f, data: data(f), ...(valid && f.nullable ? { valid } : {}) })) };
}

const rowsOf = (t: Table | RecordBatch): unknown[] => t.toArray().map((r: { toJSON(): unknown }) => r.toJSON());
const reference = (b: RecordBatch): Table => tableFromIPC(RecordBatchStreamWriter.writeAll([b]).toUint8Array(true));
const fieldsOf = (t: Table) => t.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable, metadata: [...f.metadata] }));

/** `b` written by batchStream reads back as apache-arrow's writer's stream does, and every message passes the checked reader. */
function expectSameAsArrow(b: RecordBatch): string[] {
  const bytes = batchStream(b);
  const types = splitIpcStream(bytes, DEFAULT_LIMITS, "test").map((m) => m.info.type);
  const got = tableFromIPC(bytes);
  const want = reference(b);
  expect(fieldsOf(got)).toEqual(fieldsOf(want));
  expect([...got.schema.metadata]).toEqual([...want.schema.metadata]);
  expect(got.numRows).toBe(b.numRows);
  expect(rowsOf(got)).toEqual(rowsOf(want));
  return types;
}

describe("batchStream", () => {
  it("batchipc - a batch of the usual layout is written by the templates and reads back as apache-arrow's stream, non-ASCII symbols and all", () => {
    for (const [rows, seed] of [
      [1, 1],
      [7, 2],
      [250, 3],
      [1001, 4],
    ] as const) {
      const schema = arrowSchema(FIELDS, new Map([["proxist.feed", "f1"]]));
      const [b] = toRecordBatches(table(FIELDS, rows, seed, ["AAPL", "MSFT", "ÆØÅ", ""]), schema);
      expect(batchLayout(b!)).toBeDefined();
      expect(expectSameAsArrow(b!)).toEqual(["schema", "dictionaryBatch", "recordBatch"]);
    }
  });

  it("batchipc - time columns presented as timestamp[us, UTC] keep their type and field metadata", () => {
    const raw = arrowSchema(FIELDS);
    const presented = presentSchema(raw, "timestamp");
    const [b] = toRecordBatches(table(FIELDS, 300, 5, ["X", "Y"]), raw);
    const shown = presentBatch(b!, presented);
    expectSameAsArrow(shown);
    expect(tableFromIPC(batchStream(shown)).schema.fields[1]!.type.typeId).toBe(Type.Timestamp);
  });

  it("batchipc - the same fields under other metadata (result notes, completeness) get their own schema message", () => {
    const base = arrowSchema(FIELDS);
    const t = table(FIELDS, 20, 6, ["A"]);
    for (const meta of [new Map([["proxist.complete", "true"]]), new Map([["proxist.complete", "false"], ["proxist.notes", "n"]]), new Map<string, string>()]) {
      const [b] = toRecordBatches(t, resultSchema(base, meta));
      const got = tableFromIPC(batchStream(b!));
      expect(Object.fromEntries(got.schema.metadata)).toEqual(Object.fromEntries(meta));
    }
  });

  it("batchipc - no symbol column: no dictionary message", () => {
    const fields = FIELDS.filter((f) => f.kind !== "sym");
    const [b] = toRecordBatches(table(fields, 64, 7, []), arrowSchema(fields));
    expect(expectSameAsArrow(b!)).toEqual(["schema", "recordBatch"]);
  });

  it("batchipc - nulls and empty batches take apache-arrow's writer: the same bytes", () => {
    const nullable = FIELDS.map((f) => (f.name === "price" ? { ...f, nullable: true } : f));
    const valid = new Uint8Array(100).map((_, i) => (i % 3 === 0 ? 0 : 1));
    const [withNulls] = toRecordBatches(table(nullable, 100, 8, ["A", "B"], valid), arrowSchema(nullable));
    const [empty] = toRecordBatches(table(FIELDS, 0, 9, []), arrowSchema(FIELDS));
    for (const b of [withNulls!, empty!]) {
      expect(batchLayout(b) === undefined || b.numRows === 0).toBe(true);
      expect(Buffer.from(batchStream(b)).equals(Buffer.from(RecordBatchStreamWriter.writeAll([b]).toUint8Array(true)))).toBe(true);
      expectSameAsArrow(b);
    }
    expect(tableFromIPC(batchStream(withNulls!)).getChild("price")!.nullCount).toBe(34);
  });
});
