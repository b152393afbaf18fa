// The fast IPC codec against apache-arrow (the reference implementation), and
// against corrupt input: it must reject, never crash or read out of bounds.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { tableFromIPC, tableToIPC, tableFromArrays } from "apache-arrow";
import { encodeTickIpc, decodeIpcColumns } from "../../src/codec/ipc.js";
import { BatchRejected, decodeTickBatch } from "../../src/codec/arrow.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";

const trades = parseTableSpec({ name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });

describe("codec - fast ipc", () => {
  it("encode - apache-arrow reads what the fast encoder writes", () => {
    const b = new RandomWalk(symbolNames(30), 5, 1.7e15).trades(257, 1e6);
    const t = tableFromIPC(encodeTickIpc(trades, b));
    expect(t.numRows).toBe(257);
    const syms = t.getChild("sym")!.toArray() as string[];
    const ts = t.getChild("ts")!.toArray() as BigInt64Array;
    const price = t.getChild("price")!.toArray() as Float64Array;
    for (let i = 0; i < 257; i++) {
      expect(syms[i]).toBe(b.symbols[b.symbolIndex[i]!]);
      expect(Number(ts[i])).toBe(b.ts[i]);
      expect(price[i]).toBe(b.values[0]![i]);
    }
  });

  it("decode - the fast decoder reads apache-arrow's output (utf8 and dictionary symbols, multiple batches)", () => {
    const t = tableFromArrays({ sym: ["A", "B", "A"], ts: BigInt64Array.of(1n, 2n, 3n), price: Float64Array.of(1, 2, 3), size: Float64Array.of(4, 5, 6) });
    const bytes = tableToIPC(t.concat(t), "stream");
    expect(decodeIpcColumns(bytes)).toBeDefined();
    const b = decodeTickBatch(trades, bytes, "x");
    expect(b.rows).toBe(6);
    expect(Array.from(b.symbolIndex, (i) => b.symbols[i])).toEqual(["A", "B", "A", "A", "B", "A"]);
    expect([...b.values[1]!]).toEqual([4, 5, 6, 4, 5, 6]);
  });

  it("decode - unaligned input (a NATS payload inside a larger buffer) is read correctly", () => {
    const b = new RandomWalk(symbolNames(10), 9, 1.7e15).trades(100, 1e6);
    const bytes = encodeTickIpc(trades, b);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const back = decodeTickBatch(trades, shifted.subarray(3), "x");
    expect([...back.ts]).toEqual([...b.ts]);
    expect([...back.values[0]!]).toEqual([...b.values[0]!]);
  });

  it("fuzz - bit flips, truncation and huge lengths are rejected as BatchRejected or decode to a valid batch", () => {
    const base = encodeTickIpc(trades, new RandomWalk(symbolNames(20), 1, 1.7e15).trades(64, 1e6));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(base.length),
        (flips, cut) => {
          const m = base.slice(0, Math.max(cut, 1));
          for (const [at, v] of flips) if (at < m.length) m[at] = v;
          try {
            const b = decodeTickBatch(trades, m, "fuzz");
            expect(b.ts.length).toBe(b.rows);
            expect(b.symbolIndex.every((i) => i < b.symbols.length)).toBe(true);
          } catch (e) {
            if (!(e instanceof BatchRejected)) throw e;
          }
        },
      ),
      { numRuns: 3000, seed: 42 },
    );
  });
});
