// The WAL payload fast path (src/wal/fastdecode.ts) against the general
// decoder on the same bytes: what it accepts it reads exactly as
// decodeTickBatch does; what the general decoder refuses it never accepts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { decodeTickBatch } from "../../src/codec/arrow.js";
import { encodeTickIpc, encodeTickIpcByBucket } from "../../src/codec/ipc.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import { tryDecodeWalPayload } from "../../src/wal/fastdecode.js";

const spec = parseTableSpec(
  {
    name: "t",
    columns: [
      { name: "f64", type: "float64" },
      { name: "f32", type: "float32", allowNonFinite: true },
      { name: "i64", type: "int64" },
      { name: "i32", type: "int32" },
      { name: "b", type: "bool" },
    ],
  },
  "acme",
);
const plain = parseTableSpec({ name: "q", columns: [{ name: "price", type: "float64" }] }, "acme");

const general = (s: TableSpec, bytes: Uint8Array): TickBatch | Error => {
  try {
    return decodeTickBatch(s, bytes, "test");
  } catch (e) {
    return e as Error;
  }
};
const plainOf = (b: TickBatch): unknown => ({ rows: b.rows, symbols: [...b.symbols], symbolIndex: [...b.symbolIndex], ts: [...b.ts], values: b.values.map((v) => ({ type: v.constructor.name, values: [...v] })) });

const symbolArb = fc.oneof(fc.constantFrom("AAPL", "MSFT", "X", "BRK.B", "ÄÖÜ", "€URO", "日本"), fc.string({ minLength: 1, maxLength: 40 }).filter((s) => Buffer.byteLength(s) <= 256));
const batchArb = fc.integer({ min: 1, max: 60 }).chain((rows) =>
  fc.record({
    symbols: fc.array(symbolArb, { minLength: 1, maxLength: 8 }),
    pick: fc.array(fc.nat(), { minLength: rows, maxLength: rows }),
    ts: fc.array(fc.integer({ min: 0, max: 7_258_118_399_999_999 }), { minLength: rows, maxLength: rows }),
    f64: fc.array(fc.double({ noNaN: true, noDefaultInfinity: true }), { minLength: rows, maxLength: rows }),
    f32: fc.array(fc.float(), { minLength: rows, maxLength: rows }),
    i64: fc.array(fc.maxSafeInteger().map((x) => x * (x % 2 === 0 ? 1 : -1)), { minLength: rows, maxLength: rows }),
    i32: fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: rows, maxLength: rows }),
    b: fc.array(fc.boolean(), { minLength: rows, maxLength: rows }),
  }).map(
    (r): TickBatch => ({
      rows,
      symbols: r.symbols,
      symbolIndex: Uint32Array.from(r.pick, (p) => p % r.symbols.length),
      ts: Float64Array.from(r.ts),
      values: [Float64Array.from(r.f64), Float32Array.from(r.f32), Float64Array.from(r.i64), Int32Array.from(r.i32), Uint8Array.from(r.b, Number)],
    }),
  ),
);

/** `bytes` at an address that is not 8-aligned (as NATS message data is). */
function unaligned(bytes: Uint8Array): Uint8Array {
  const buf = new Uint8Array(bytes.length + 3);
  buf.set(bytes, 3);
  return buf.subarray(3);
}

describe("WAL payload fast path", () => {
  it("fast decode - reads the gateway's layout exactly as the general decoder, aligned or not", () => {
    fc.assert(
      fc.property(batchArb, fc.boolean(), (batch, shift) => {
        const bytes = encodeTickIpc(spec, batch);
        const input = shift ? unaligned(bytes) : bytes;
        const fast = tryDecodeWalPayload(spec, input);
        expect(fast).toBeDefined();
        const want = general(spec, bytes);
        expect(want).not.toBeInstanceOf(Error);
        expect(plainOf(fast!)).toEqual(plainOf(want as TickBatch));
      }),
      { numRuns: 300 },
    );
  });

  it("fast decode - never accepts what the general decoder refuses, and agrees with it on corrupted bytes", () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(batchArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), (batch, flips) => {
        const bytes = encodeTickIpc(spec, batch).slice();
        for (const [at, b] of flips) bytes[at % bytes.length] = b;
        const fast = tryDecodeWalPayload(spec, bytes);
        const want = general(spec, bytes);
        if (fast === undefined) return;
        accepted++;
        if (want instanceof Error) refused++;
        expect(want).not.toBeInstanceOf(Error);
        expect(plainOf(fast)).toEqual(plainOf(want as TickBatch));
      }),
      { numRuns: 2000 },
    );
    // The property saw corrupted batches it accepted (value bytes), not only bail-outs.
    expect(accepted).toBeGreaterThan(100);
    expect(refused).toBe(0);
  });

  it("fast decode - leaves every rule to the general decoder: NaN where forbidden, timestamps out of range, several pairs, duplicate dictionary entries", () => {
    const one = (over: Partial<TickBatch>): TickBatch => ({ rows: 2, symbols: ["A", "B"], symbolIndex: Uint32Array.of(0, 1), ts: Float64Array.of(1_000_000, 2_000_000), values: [Float64Array.of(1, 2)], ...over });
    // NaN in a column that forbids it: the general decoder refuses, the fast path bails out.
    const nan = encodeTickIpc(plain, one({ values: [Float64Array.of(1, Number.NaN)] }));
    expect(tryDecodeWalPayload(plain, nan)).toBeUndefined();
    expect(general(plain, nan)).toBeInstanceOf(Error);
    // A timestamp past 2200.
    const late = encodeTickIpc(plain, one({ ts: Float64Array.of(1, Date.UTC(2200, 0, 1) * 1000) }));
    expect(tryDecodeWalPayload(plain, late)).toBeUndefined();
    expect(general(plain, late)).toBeInstanceOf(Error);
    // A client's batch with one pair per bucket: not a WAL record's layout, read by the general decoder.
    const byBucket = encodeTickIpcByBucket(plain, one({ symbols: ["AAPL", "MSFT", "IBM", "GOOG"], rows: 4, symbolIndex: Uint32Array.of(0, 1, 2, 3), ts: Float64Array.of(1, 2, 3, 4), values: [Float64Array.of(1, 2, 3, 4)] }), 4);
    expect(tryDecodeWalPayload(plain, byBucket)).toBeUndefined();
    expect(general(plain, byBucket)).not.toBeInstanceOf(Error);
    // The same symbol in two dictionary entries reads as one symbol, as the general decoder interns it.
    const dup = encodeTickIpc(plain, one({ symbols: ["A", "A"] }));
    const fast = tryDecodeWalPayload(plain, dup);
    expect(fast?.symbols).toEqual(["A"]);
    expect(plainOf(fast!)).toEqual(plainOf(general(plain, dup) as TickBatch));
  });

  it("negative control - the comparison sees a decoder that differs in one value", () => {
    const batch: TickBatch = { rows: 2, symbols: ["A", "B"], symbolIndex: Uint32Array.of(0, 1), ts: Float64Array.of(1_000_000, 2_000_000), values: [Float64Array.of(1, 2)] };
    const bytes = encodeTickIpc(plain, batch);
    const fast = tryDecodeWalPayload(plain, bytes)!;
    const wrong = { ...fast, values: [Float64Array.of(1, 3)] };
    expect(plainOf(wrong)).not.toEqual(plainOf(general(plain, bytes) as TickBatch));
  });
});
