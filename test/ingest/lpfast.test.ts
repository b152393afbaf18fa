// The line protocol fast path (src/ingest/formats/lpfast.ts) against the
// general parser: on random bodies — plain lines and lines with every odd
// shape the fast path hands over (escapes, quotes, exponents, signs, missing
// or repeated fields, spaces, CRs, comments, precisions) — both give the same
// rows or the same refusal. The fast path's symbol cache outlives a body (it is
// kept per table spec): bodies in a row, symbols whose hashes collide and more
// symbols than it holds must still give each row its own symbol.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { RowCollector } from "../../src/ingest/formats/index.js";
import type { Precision } from "../../src/ingest/formats/index.js";
import { readLineProtocol } from "../../src/ingest/formats/lineproto.js";

const spec = parseTableSpec({ name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] });
const NOW = 1_704_205_800_000_777;

type Outcome = { rows: unknown[][]; lines: number[] } | { error: string };

function read(text: string, precision: Precision, fast: boolean): Outcome {
  const into = new RowCollector(spec);
  try {
    readLineProtocol(Buffer.from(text, "utf8"), into, precision, NOW, fast);
  } catch (e) {
    return { error: (e as Error).message };
  }
  const b = into.batch();
  return { rows: Array.from({ length: b.rows }, (_, i) => [b.symbols[b.symbolIndex[i]!], b.ts[i], ...b.values.map((v) => Object.is(v[i], -0) ? "-0" : v[i])]), lines: into.lines };
}

const num = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map(String),
  fc.tuple(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.integer({ min: 0, max: 8 })).map(([d, k]) => d.toFixed(k)),
  fc.constantFrom("1.", ".5", "-0", "+3", "1e3", "1.5E-2", "007", "9007199254740993", "0.1234567890123456789", "-", "", "abc", "1.2.3", "12345678901234567890"),
);
const value = fc.tuple(num, fc.constantFrom("", "", "i", "u", "I")).map(([n, s]) => n + s);
const sym = fc.oneof(fc.constantFrom("AAPL", "MSFT", "SYM00001", "A"), fc.constantFrom("a\\ b", "x,y", 'q"t', "", "e=q"));
const ts = fc.oneof(
  fc.tuple(fc.integer({ min: 1_600_000_000, max: 1_800_000_000 }), fc.integer({ min: 0, max: 9 })).map(([s, k]) => `${s}${"123456789".slice(0, k)}`),
  fc.constantFrom("", "-5", "1e9", "12345678901234567890123", "0", "17042058000000001234"),
);
const fields = fc.tuple(value, value, fc.constantFrom("plain", "swapped", "missing", "repeat", "extra")).map(([p, s, shape]) => {
  if (shape === "swapped") return `size=${s},price=${p}`;
  if (shape === "missing") return `price=${p}`;
  if (shape === "repeat") return `price=${p},size=${s},price=${p}`;
  if (shape === "extra") return `price=${p},size=${s},qty=1`;
  return `price=${p},size=${s}`;
});
const line = fc.tuple(fc.constantFrom("trades", "trades", "trades", "quotes", "trades\\ x"), fc.constantFrom("sym", "sym", "sym", "ticker"), sym, fields, ts, fc.constantFrom(" ", " ", " ", "  ", "\t"), fc.constantFrom("", "", "", "\r", " ")).map(
  ([m, k, s, f, t, sep, end]) => `${m},${k}=${s}${sep}${f}${t === "" ? "" : ` ${t}`}${end}`,
);
// The shape clients send, which the fast path must read itself (and equal the general parser on).
const plain = fc
  .tuple(
    // Symbols repeat (the symbol cache's hits, across bodies too), some are not ASCII (cached by their UTF-8 bytes).
    fc.constantFrom("AAPL", "MSFT", "SYM00001", "A", "ÄPPL", "株式", "é"),
    fc.oneof(fc.tuple(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.integer({ min: 1, max: 8 })).map(([d, k]) => d.toFixed(k)), fc.integer({ min: -1e9, max: 1e9 }).map(String)),
    fc.integer({ min: -1e9, max: 1e9 }),
    fc.tuple(fc.integer({ min: 1_600_000_000, max: 1_800_000_000 }), fc.integer({ min: 0, max: 9 })).map(([s, k]) => `${s}${"123456789".slice(0, k)}`),
  )
  .map(([s, p, n, t]) => `trades,sym=${s} price=${p},size=${n}i ${t}`);
const body = fc.array(fc.oneof({ weight: 6, arbitrary: plain }, { weight: 4, arbitrary: line }, { weight: 1, arbitrary: fc.constantFrom("", "# comment", "   ") }), { minLength: 1, maxLength: 12 }).map((ls) => ls.join("\n"));

describe("line protocol fast path", () => {
  it("lpfast - the same rows or the same refusal as the general parser", () => {
    fc.assert(
      fc.property(body, fc.constantFrom<Precision>("ns", "us", "ms", "s"), (text, precision) => {
        expect(read(text, precision, true)).toEqual(read(text, precision, false));
      }),
      { numRuns: 3000 },
    );
  });

  it("lpfast - plain lines take the fast path exactly (values, ns timestamps floored to µs)", () => {
    const text = "trades,sym=AAPL price=187.25,size=100i 1704205800123456789\ntrades,sym=MSFT price=-0.5,size=-3i 1704205800000000999\n";
    const out = read(text, "ns", true);
    expect(out).toEqual({ rows: [["AAPL", 1704205800123456, 187.25, 100], ["MSFT", 1704205800000000, -0.5, -3]], lines: [1, 2] });
    expect(out).toEqual(read(text, "ns", false));
  });

  it("lpfast - bodies in a row share the symbol cache, each with its own collector's ids", () => {
    // Every run reads the bodies in order (a refused body in the middle included): each body's rows as the general parser reads them.
    fc.assert(
      fc.property(fc.array(fc.tuple(body, fc.constantFrom<Precision>("ns", "us", "ms", "s")), { minLength: 2, maxLength: 6 }), (bodies) => {
        for (const [text, precision] of bodies) expect(read(text, precision, true)).toEqual(read(text, precision, false));
      }),
      { numRuns: 500 },
    );
  });

  it("lpfast - symbols whose hashes collide stay apart", () => {
    const fnv = (s: string): number => {
      let h = 0x811c9dc5 | 0;
      for (const b of Buffer.from(s, "utf8")) h = Math.imul(h ^ b, 0x01000193);
      return h;
    };
    // Two names with the same FNV-1a hash (found by a birthday search over short names).
    const pair = ["S6pfs", "Snvja"] as const;
    const [a, b] = pair;
    expect(fnv(a)).toBe(fnv(b));
    const text = [a, b, a, b, b].map((s, i) => `trades,sym=${s} price=1.5,size=${i}i 1704205800000000`).join("\n");
    for (let round = 0; round < 2; round++) {
      const out = read(text, "us", true);
      expect(out).toEqual(read(text, "us", false));
      expect((out as { rows: unknown[][] }).rows.map((r) => r[0])).toEqual([a, b, a, b, b]);
    }
  });

  it("lpfast - more symbols than the cache holds: it starts over, rows keep their symbols", () => {
    // 40,000 distinct symbols (the cache holds 32,768), then the first ones again.
    const names = Array.from({ length: 40_000 }, (_, i) => `X${i}`);
    const text = [...names, ...names.slice(0, 100)].map((s, i) => `trades,sym=${s} price=2.5,size=${i}i 1704205800000001`).join("\n");
    const out = read(text, "us", true) as { rows: unknown[][] };
    expect(out.rows.map((r) => r[0])).toEqual([...names, ...names.slice(0, 100)]);
    expect(out.rows.map((r) => r[3])).toEqual(Array.from({ length: 40_100 }, (_, i) => i));
    expect(read(text.slice(0, 2000), "us", true)).toEqual(read(text.slice(0, 2000), "us", false));
  });
});
