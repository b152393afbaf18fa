import { describe, expect, it } from "vitest";
import { encodeWalRecord } from "../../protocols/codec.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { decodeTickBatch, tickBatchToIpc } from "../../src/codec/arrow.js";
import { WalSchemaVersionError, decodeWalEntry } from "../../src/wal/index.js";

const v1 = parseTableSpec({ name: "trades", columns: [{ name: "price", type: "float64" }] }, "acme");
// As stored after `pxctl apply` added `venue` in version 2 (since stamped).
const v2 = parseTableSpec({ name: "trades", version: 2, columns: [{ name: "price", type: "float64" }, { name: "venue", type: "int32", default: 7, since: 2 }] }, "acme");

function record(spec: TableSpec, values: number[][]): Uint8Array {
  const rows = values[0]!.length;
  const batch = {
    rows,
    symbols: ["AAPL"],
    symbolIndex: new Uint32Array(rows),
    ts: Float64Array.from({ length: rows }, (_, i) => 1_000_000 + i),
    values: values.map((v, c) => (spec.columns[c]!.type === "int32" ? Int32Array.from(v) : Float64Array.from(v))),
  };
  return encodeWalRecord({ tenant: "acme", table: spec.name, schemaVersion: spec.version, producerId: "", producerSeq: 0n, bucket: 0, rows, minTsMicros: 1_000_000n, maxTsMicros: BigInt(1_000_000 + rows - 1), payload: tickBatchToIpc(spec, batch) });
}

describe("WAL records across spec versions", () => {
  it("spec version - a record of an older version decodes with its own columns; the added column reads as its default", () => {
    const d = decodeWalEntry(v2, 5, record(v1, [[1.5, 2.5]]));
    expect(d.schemaVersion).toBe(1);
    expect(d.batch.values.map((c) => [...c])).toEqual([
      [1.5, 2.5],
      [7, 7],
    ]);
    const now = decodeWalEntry(v2, 6, record(v2, [[3.5], [9]]));
    expect(now.batch.values.map((c) => [...c])).toEqual([[3.5], [9]]);
  });

  it("spec version - a record of a newer version than the node serves is refused with the reason", () => {
    expect(() => decodeWalEntry(v1, 6, record(v2, [[3.5], [9]]))).toThrow(WalSchemaVersionError);
    expect(() => decodeWalEntry(v1, 6, record(v2, [[3.5], [9]]))).toThrow(/LSN 6 was written for version 2 of table trades; this node serves version 1; the shard restarts with the new spec/);
  });

  it("spec version - a client batch may leave out a column with a declared default (it reads as the default), not one without", () => {
    const b = decodeTickBatch(v2, tickBatchToIpc(v1, { rows: 2, symbols: ["AAPL"], symbolIndex: new Uint32Array(2), ts: Float64Array.of(1, 2), values: [Float64Array.of(1, 2)] }), "batch");
    expect(b.values.map((c) => [...c])).toEqual([
      [1, 2],
      [7, 7],
    ]);
    const noPrice = parseTableSpec({ name: "trades", columns: [{ name: "venue", type: "int32" }] }, "acme");
    expect(() => decodeTickBatch(v2, tickBatchToIpc(noPrice, { rows: 1, symbols: ["AAPL"], symbolIndex: new Uint32Array(1), ts: Float64Array.of(1), values: [Int32Array.of(3)] }), "batch")).toThrow(/batch: column price is missing/);
  });
});
