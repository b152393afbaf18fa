import { describe, expect, it } from "vitest";
import { SymbolIntern, utf8Symbol } from "../../src/codec/symbolintern.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const decode = (u8: Uint8Array, a: number, b: number): string | undefined => {
  try {
    return utf8.decode(u8.subarray(a, b));
  } catch {
    return undefined;
  }
};

/** Deterministic bytes: mostly ASCII tickers, some multi-byte, some invalid UTF-8. */
function* byteStrings(seed: number, n: number): Generator<Uint8Array> {
  let x = seed >>> 0;
  const next = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), x);
  for (let i = 0; i < n; i++) {
    const kind = next() % 10;
    if (kind < 7) yield new TextEncoder().encode(`S${next() % 300}`);
    else if (kind < 9) yield new TextEncoder().encode(`Ä${next() % 50}€`);
    else yield Uint8Array.from([0x41, 0xc3, next() % 2 === 0 ? 0x28 : 0xa9]); // 0xc3 0x28 is not UTF-8
  }
}

describe("codec - symbol intern table", () => {
  it("intern - returns what the decoder returns for the same bytes, undefined for bytes the decoder refuses; each symbol is held once", () => {
    let decoded = 0;
    const t = new SymbolIntern((u8, a, b) => (decoded++, decode(u8, a, b)));
    const seen = new Set<string>();
    let invalid = 0;
    let i = 0;
    for (const bytes of byteStrings(7, 20_000)) {
      // Embedded at an offset in a larger buffer, as in a WAL record.
      const buf = new Uint8Array(bytes.length + 9);
      buf.set(bytes, 5);
      const got = t.get(buf, 5, 5 + bytes.length);
      expect(got, `bytes ${[...bytes].join(",")} (${i++})`).toBe(decode(bytes, 0, bytes.length));
      if (got === undefined) invalid++;
      else seen.add(got);
    }
    expect(t.size).toBe(seen.size);
    // The decoder ran once per distinct symbol (a repeat is found by its bytes), and for every refused one.
    expect(decoded).toBe(seen.size + invalid);
  });

  it("intern - bounded: past maxEntries or maxArenaBytes it empties and fills again, answers stay right", () => {
    const byCount = new SymbolIntern(decode, 64, 1 << 20);
    const byBytes = new SymbolIntern(decode, 1 << 12, 256);
    for (let i = 0; i < 1000; i++) {
      const s = `SYM${i % 700}`;
      const bytes = new TextEncoder().encode(s);
      expect(byCount.get(bytes, 0, bytes.length)).toBe(s);
      expect(byBytes.get(bytes, 0, bytes.length)).toBe(s);
      expect(byCount.size).toBeLessThanOrEqual(64);
    }
    expect(byCount.size).toBeGreaterThan(0);
    // Emptied 1000 / 64 times at least: each time the entry numbers start over, and the generation says so.
    expect(byCount.generation).toBeGreaterThanOrEqual(Math.floor(700 / 64));
    // 256 bytes of keys hold at most 256 / 4 symbols of 4+ bytes.
    expect(byBytes.size).toBeLessThanOrEqual(64);
  });

  it("intern - the shared decoder (ASCII without TextDecoder) agrees with TextDecoder; keys longer than maxKeyBytes are decoded each time, never held", () => {
    for (const bytes of byteStrings(11, 5_000)) expect(utf8Symbol(bytes, 0, bytes.length)).toBe(decode(bytes, 0, bytes.length));
    const t = new SymbolIntern(decode, 64, 1 << 10);
    const long = new TextEncoder().encode("L".repeat(t.maxKeyBytes + 1));
    expect(t.get(long, 0, long.length)).toBe("L".repeat(t.maxKeyBytes + 1));
    expect(t.find(long, 0, long.length)).toBe(-1);
    expect(t.size).toBe(0);
    // Far past the arena itself (a client's megabyte "symbol"): no RangeError, just the string.
    const huge = new Uint8Array(2 << 20).fill(0x48);
    expect(t.get(huge, 0, huge.length)?.length).toBe(2 << 20);
  });

  it("intern - bytes that hash alike but differ are told apart (compared byte by byte)", () => {
    // A one-slot table forces every symbol through the same probe chain.
    const t = new SymbolIntern(decode, 1, 1 << 10);
    const a = new TextEncoder().encode("AB");
    const b = new TextEncoder().encode("BA");
    expect(t.get(a, 0, 2)).toBe("AB");
    expect(t.get(b, 0, 2)).toBe("BA");
    expect(t.get(a, 0, 2)).toBe("AB");
  });
});
