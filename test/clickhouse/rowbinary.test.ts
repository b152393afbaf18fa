import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { RowBinaryEncodeError, decodeRowBinary, encodeRowBinary, encodeRowBinarySegments, insertRowBinarySql } from "../../src/clickhouse/index.js";
import { DAY0, allTypesSpec, randomBatch, rowsOf } from "./batches.js";

const oneCol = parseTableSpec({ name: "trades", columns: [{ name: "price", type: "float64" }] });

describe("rowbinary - encoding", () => {
  it("rowbinary - writes the exact bytes of one row: LEB128 symbol, Int64 ts, values, _lsn, _row, _shard", () => {
    const body = encodeRowBinary(oneCol, { rows: 1, symbols: ["AB"], symbolIndex: new Uint32Array([0]), ts: new Float64Array([-2]), values: [new Float64Array([1.5])] }, { lsn: 2 ** 32 + 5, shard: 3 });
    const expected = Buffer.alloc(3 + 8 + 8 + 8 + 4 + 2);
    let p = 0;
    expected[p++] = 2;
    expected.write("AB", p, "latin1");
    p += 2;
    expected.writeBigInt64LE(-2n, p);
    p += 8;
    expected.writeDoubleLE(1.5, p);
    p += 8;
    expected.writeBigUInt64LE(2n ** 32n + 5n, p);
    p += 8;
    expected.writeUInt32LE(0, p);
    p += 4;
    expected.writeUInt16LE(3, p);
    expect(body.toString("hex")).toBe(expected.toString("hex"));
  });

  it("rowbinary - a symbol of 200 bytes gets a two-byte length prefix", () => {
    const sym = "x".repeat(200);
    const body = encodeRowBinary(oneCol, { rows: 1, symbols: [sym], symbolIndex: new Uint32Array([0]), ts: new Float64Array([0]), values: [new Float64Array([0])] }, { lsn: 0, shard: 0 });
    expect([body[0], body[1]]).toEqual([0xc8, 0x01]);
    expect(body.length).toBe(2 + 200 + 30);
  });

  it("rowbinary - int64 values and timestamps are two's complement little-endian", () => {
    const spec = parseTableSpec({ name: "t", columns: [{ name: "q", type: "int64" }] });
    const values = [0, -1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, -(2 ** 32), 2 ** 32 + 1];
    const n = values.length;
    const body = encodeRowBinary(spec, { rows: n, symbols: [""], symbolIndex: new Uint32Array(n), ts: new Float64Array(values), values: [new Float64Array(values)] }, { lsn: 1, shard: 0 });
    const rowBytes = 1 + 8 + 8 + 8 + 4 + 2;
    values.forEach((v, i) => {
      expect(body.readBigInt64LE(i * rowBytes + 1)).toBe(BigInt(v));
      expect(body.readBigInt64LE(i * rowBytes + 9)).toBe(BigInt(v));
      expect(body.readUInt32LE(i * rowBytes + 25)).toBe(i);
    });
  });

  it("rowbinary - rejects a fractional timestamp, naming the column and row", () => {
    const batch = { rows: 2, symbols: ["A"], symbolIndex: new Uint32Array(2), ts: new Float64Array([1, 1.5]), values: [new Float64Array(2)] };
    expect(() => encodeRowBinary(oneCol, batch, { lsn: 1, shard: 0 })).toThrow(RowBinaryEncodeError);
    expect(() => encodeRowBinary(oneCol, batch, { lsn: 1, shard: 0 })).toThrow(/column ts row 1 is 1.5/);
  });

  it("rowbinary - rejects int64 beyond 2^53, bookkeeping out of range and short columns", () => {
    const spec = parseTableSpec({ name: "t", columns: [{ name: "q", type: "int64" }] });
    const batch = (q: number) => ({ rows: 1, symbols: ["A"], symbolIndex: new Uint32Array(1), ts: new Float64Array([0]), values: [new Float64Array([q])] });
    expect(() => encodeRowBinary(spec, batch(2 ** 60), { lsn: 1, shard: 0 })).toThrow(/column q/);
    expect(() => encodeRowBinary(spec, batch(1), { lsn: -1, shard: 0 })).toThrow(/_lsn/);
    expect(() => encodeRowBinary(spec, batch(1), { lsn: 1, shard: 65_536 })).toThrow(/_shard/);
    expect(() => encodeRowBinary(spec, batch(1), { lsn: 1, shard: 0, row: [2 ** 32] })).toThrow(/_row/);
    expect(() => encodeRowBinary(spec, { ...batch(1), rows: 2 }, { lsn: 1, shard: 0 })).toThrow(/for 2 rows/);
    expect(() => encodeRowBinary(spec, { ...batch(1), symbolIndex: new Uint32Array([3]) }, { lsn: 1, shard: 0 })).toThrow(/symbol index 3/);
  });

  it("rowbinary - several segments become one body in order, with per-row bookkeeping", () => {
    const spec = allTypesSpec("t");
    const a = randomBatch(50, 1, DAY0);
    const b = randomBatch(30, 2, DAY0);
    const body = encodeRowBinarySegments(spec, [
      { batch: a, meta: { lsn: 10, shard: 4 } },
      { batch: b, meta: { lsn: Array.from({ length: 30 }, (_, i) => 20 + (i % 3)), row: Array.from({ length: 30 }, (_, i) => 100 + i), shard: new Uint16Array(30).fill(5) } },
    ]);
    const decoded = decodeRowBinary(spec, body);
    expect(decoded.batch.rows).toBe(80);
    expect(rowsOf(decoded.batch)).toEqual([...rowsOf(a), ...rowsOf(b)]);
    expect(Array.from(decoded.lsn)).toEqual([...Array<number>(50).fill(10), ...Array.from({ length: 30 }, (_, i) => 20 + (i % 3))]);
    expect(Array.from(decoded.row)).toEqual([...Array.from({ length: 50 }, (_, i) => i), ...Array.from({ length: 30 }, (_, i) => 100 + i)]);
    expect(Array.from(decoded.shard)).toEqual([...Array<number>(50).fill(4), ...Array<number>(30).fill(5)]);
  });

  it("rowbinary - an empty batch encodes to an empty body and decodes back", () => {
    const spec = allTypesSpec("t");
    const body = encodeRowBinary(spec, randomBatch(0, 1, DAY0), { lsn: 1, shard: 0 });
    expect(body.length).toBe(0);
    expect(decodeRowBinary(spec, body).batch.rows).toBe(0);
  });
});

describe("rowbinary - decoding", () => {
  it("rowbinary - decode(encode(batch)) equals the batch for every value type, NaN, Inf, -0 and unicode", () => {
    const spec = allTypesSpec("t");
    for (const seed of [1, 2, 3, 4, 5]) {
      const batch = randomBatch(500, seed, DAY0 - 10_000_000_000, 100_000_000_000);
      const decoded = decodeRowBinary(spec, encodeRowBinary(spec, batch, { lsn: seed, shard: 7 }));
      expect(rowsOf(decoded.batch)).toEqual(rowsOf(batch));
      expect(decoded.batch.values.map((v) => v.constructor.name)).toEqual(["Float64Array", "Float32Array", "Float64Array", "Int32Array", "Uint8Array"]);
    }
  });

  it("rowbinary - a truncated body fails with a protocol error naming the byte", () => {
    const spec = allTypesSpec("t");
    const body = encodeRowBinary(spec, randomBatch(3, 1, DAY0), { lsn: 1, shard: 0 });
    expect(() => decodeRowBinary(spec, body.subarray(0, body.length - 1))).toThrow(/cannot be decoded at byte/);
  });

  it("rowbinary - a server exception appended to the body is quoted in the error", () => {
    const spec = allTypesSpec("t");
    const body = Buffer.concat([encodeRowBinary(spec, randomBatch(2, 1, DAY0), { lsn: 1, shard: 0 }), Buffer.from("Code: 241, e.displayText() = DB::Exception: Memory limit exceeded")]);
    expect(() => decodeRowBinary(spec, body)).toThrow(/Memory limit exceeded/);
  });

  it("rowbinary - the INSERT statement names the columns in encoding order", () => {
    expect(insertRowBinarySql("acme", allTypesSpec("quotes"))).toBe(
      "INSERT INTO `px_acme`.`quotes` (`sym`, `ts`, `price`, `ratio`, `qty`, `lots`, `buy`, `_lsn`, `_row`, `_shard`) FORMAT RowBinary",
    );
  });
});
