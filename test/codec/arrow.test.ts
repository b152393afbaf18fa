import { describe, expect, it } from "vitest";
import { Utf8, makeData, tableFromArrays, tableToIPC, TimestampSecond, TimestampNanosecond, vectorFromArray, Table, Vector } from "apache-arrow";
import { BatchRejected, arrowToTickBatch, decodeIpc, ipcToTickBatch, tickBatchToIpc } from "../../src/codec/arrow.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { splitByBucket } from "../../src/ingest/prepare.js";
import { bucketOf } from "../../protocols/routing.js";
import { parseProducer } from "../../src/ingest/headers.js";

const spec = parseTableSpec({
  name: "t",
  columns: [
    { name: "f", type: "float64" },
    { name: "g", type: "float32", allowNonFinite: true },
    { name: "i", type: "int64" },
    { name: "j", type: "int32" },
    { name: "b", type: "bool" },
  ],
});

const batch = {
  rows: 3,
  symbols: ["A", "BB", "Ünï"],
  symbolIndex: Uint32Array.of(2, 0, 1),
  ts: Float64Array.of(0, 1_700_000_000_000_001, 2 ** 52),
  values: [Float64Array.of(1.5, -0, 1e300), Float32Array.of(Number.NaN, -Infinity, 3), Float64Array.of(-(2 ** 53) + 1, 0, 2 ** 53 - 1), Int32Array.of(-(2 ** 31), 0, 2 ** 31 - 1), Uint8Array.of(1, 0, 1)],
};

describe("codec - arrow", () => {
  it("wal payload - every column type round-trips exactly", () => {
    const back = ipcToTickBatch(spec, tickBatchToIpc(spec, batch), "x");
    expect(back.rows).toBe(3);
    expect(back.symbols.map((_, i) => back.symbols[back.symbolIndex[i]!])).toEqual(["Ünï", "A", "BB"]);
    expect([...back.ts]).toEqual([...batch.ts]);
    back.values.forEach((v, c) => expect([...v]).toEqual([...batch.values[c]!]));
  });

  it("timestamps - s and ns Arrow timestamps convert to microseconds", () => {
    const s = parseTableSpec({ name: "t", columns: [{ name: "p", type: "float64" }] });
    const mk = (ts: Vector) =>
      new Table({ sym: vectorFromArray(["A"]), ts, p: vectorFromArray(Float64Array.of(1)) });
    const sec = arrowToTickBatch(s, mk(vectorFromArray([1_700_000_000_000], new TimestampSecond())), "x");
    expect(sec.ts[0]).toBe(1_700_000_000 * 1e6);
    const nsData = makeData({ type: new TimestampNanosecond(), length: 1, nullCount: 0, data: BigInt64Array.of(1_700_000_000_123_456_789n) });
    const ns = arrowToTickBatch(s, mk(new Vector([nsData])), "x");
    expect(ns.ts[0]).toBe(1_700_000_000_123_456);
  });

  it("symbols - invalid UTF-8 and over-long symbols (even megabytes) are refused by name; repeated symbols come back as one string", () => {
    const s = parseTableSpec({ name: "t", columns: [{ name: "p", type: "float64" }] });
    const mk = (sym: Vector) => new Table({ sym, ts: vectorFromArray(BigInt64Array.of(1_700_000_000_000_000n, 1_700_000_000_000_001n)), p: vectorFromArray(Float64Array.of(1, 2)) });
    const ok = arrowToTickBatch(s, mk(vectorFromArray(["EURUSD", "EURUSD"])), "x");
    expect(ok.symbols).toEqual(["EURUSD"]);
    expect(() => arrowToTickBatch(s, mk(vectorFromArray(["A", "X".repeat(2 << 20)])), "batch 7")).toThrow(/batch 7 .*row 1: the symbol is longer than 256 bytes; shorten it/);
    const bad = makeData({ type: new Utf8(), length: 2, nullCount: 0, valueOffsets: Int32Array.of(0, 1, 3), data: Uint8Array.of(0x41, 0xc3, 0x28) });
    expect(() => arrowToTickBatch(s, mk(new Vector([bad])), "batch 8")).toThrow(/batch 8 .*row 1: the symbol is not valid UTF-8/);
  });

  it("decode - garbage is a BatchRejected naming the input", () => {
    expect(() => decodeIpc(Uint8Array.of(9, 9, 9), "tenant a table b")).toThrow(BatchRejected);
    expect(() => decodeIpc(Uint8Array.of(9, 9, 9), "tenant a table b")).toThrow(/tenant a table b: the payload is not a valid Arrow IPC stream/);
  });

  it("split - rows go to the bucket of their symbol, in order", () => {
    const b = arrowToTickBatch(
      parseTableSpec({ name: "t", columns: [{ name: "p", type: "float64" }] }),
      (() => {
        const syms = Array.from({ length: 200 }, (_, i) => `S${i % 37}`);
        return tableFromArrays({ sym: syms, ts: BigInt64Array.from(syms, (_, i) => BigInt(i)), p: Float64Array.from(syms, (_, i) => i) });
      })(),
      "x",
    );
    const parts = splitByBucket(b, 4);
    let total = 0;
    for (const [bucket, part] of parts) {
      total += part.rows;
      for (let i = 0; i < part.rows; i++) expect(bucketOf(part.symbols[part.symbolIndex[i]!]!, 4)).toBe(bucket);
      for (let i = 1; i < part.rows; i++) expect(part.ts[i]!).toBeGreaterThan(part.ts[i - 1]!);
    }
    expect(total).toBe(200);
  });

  it("headers - producer id and seq are parsed or explained", () => {
    expect(parseProducer(undefined, undefined)).toEqual({ ok: true, producer: undefined });
    expect(parseProducer("p-1", "18446744073709551615")).toEqual({ ok: true, producer: { id: "p-1", seq: 18446744073709551615n } });
    expect(parseProducer("p", undefined)).toMatchObject({ ok: false, message: expect.stringContaining("go together") });
    expect(parseProducer("p", "18446744073709551616")).toMatchObject({ ok: false });
    expect(parseProducer("bad id!", "1")).toMatchObject({ ok: false, message: expect.stringContaining("Px-Producer-Id") });
  });

  it("ipc - tableToIPC output of a dictionary symbol column is accepted", () => {
    const bytes = tableToIPC(tableFromArrays({ sym: ["A", "B"], ts: BigInt64Array.of(1n, 2n), p: Float64Array.of(1, 2) }), "stream");
    const b = ipcToTickBatch(parseTableSpec({ name: "t", columns: [{ name: "p", type: "float64" }] }), bytes, "x");
    expect(b.symbols).toEqual(["A", "B"]);
  });
});
