// HTTP ingest text formats: JSON lines, CSV and line protocol read into one
// TickBatch; every bad input names its line and column. Line protocol
// conformance: escaping, timestamp precision, integer/float/bool fields.
import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { IngestFormatError, parsePrecision, readTextBody } from "../../src/ingest/formats/index.js";
import type { TextFormat } from "../../src/ingest/formats/index.js";

const spec = parseTableSpec({ name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }, { name: "buy", type: "bool" }] });
const T = Date.UTC(2024, 0, 2, 14, 30) * 1000;
const NOW = T + 777;

function rows(format: TextFormat, text: string, precision?: "ns" | "us" | "ms" | "s") {
  const b = readTextBody(format, spec, text, precision, NOW).batch();
  return Array.from({ length: b.rows }, (_, i) => [b.symbols[b.symbolIndex[i]!], b.ts[i], ...b.values.map((v) => v[i])]);
}

function refusal(format: TextFormat, text: string): IngestFormatError {
  try {
    readTextBody(format, spec, text, undefined, NOW);
  } catch (e) {
    expect(e).toBeInstanceOf(IngestFormatError);
    return e as IngestFormatError;
  }
  throw new Error(`accepted: ${text}`);
}

describe("ingest formats - JSON lines", () => {
  it("formats - JSON lines with µs and ISO times", () => {
    const text = `{"sym":"A","ts":${T},"price":1.5,"size":10,"buy":true}\n\n{"sym":"B","ts":"2024-01-02T14:30:00.000001Z","price":2,"size":3,"buy":false}\n`;
    expect(rows("jsonl", text)).toEqual([["A", T, 1.5, 10, 1], ["B", T + 1, 2, 3, 0]]);
    expect(rows("jsonl", `{"sym":"A","ts":${T / 1000},"price":1,"size":1,"buy":true}`, "ms")).toEqual([["A", T, 1, 1, 1]]);
  });
  it.each([
    ['{"sym":"A","ts":1,"price":1,"size":1,"buy":true}\n{"sym":"A","ts":2,"price":"x","size":1,"buy":true}', 2, "price", /not a number/],
    ['{"sym":"A","ts":1,"price":1,"size":1.5,"buy":true}', 1, "size", /not an integer/],
    ['{"sym":"A","ts":1,"price":1,"buy":true}', 1, "size", /missing/],
    ['{"sym":"A","ts":1,"price":1,"size":1,"buy":true,"qty":2}', 1, "qty", /no such column/],
    ['{"ts":1,"price":1,"size":1,"buy":true}', 1, "sym", /symbol is missing/],
    ['{"sym":"A","ts":"yesterday","price":1,"size":1,"buy":true}', 1, "ts", /not a timestamp/],
    ['{"sym":"A","ts":1,"price":1,"size":1,"buy":1}', 1, "buy", /not a bool/],
    ["\n\n{oops", 3, undefined, /not valid JSON/],
  ])("formats - JSON lines refuses %s", (text, line, column, why) => {
    const e = refusal("jsonl", text);
    expect([e.line, e.column]).toEqual([line, column]);
    expect(e.message).toMatch(why);
    expect(e.message).toMatch(new RegExp(`^line ${line}`));
  });
});

describe("ingest formats - CSV", () => {
  it("formats - CSV with a header in any order, quotes, CRLF and ISO times", () => {
    const text = `size,sym,price,ts,buy\r\n10,"A,1",1.5,${T},true\r\n3,"B ""q""",2e0,2024-01-02T14:30:00Z,f\r\n`;
    expect(rows("csv", text)).toEqual([["A,1", T, 1.5, 10, 1], ['B "q"', T, 2, 3, 0]]);
  });
  it.each([
    ["sym,ts,price,size,buy\nA,1,abc,1,true", 2, "price", /not a number/],
    ["sym,ts,price,size,buy\nA,1,1,2.5,true", 2, "size", /not an integer/],
    ["sym,ts,price,size,buy\nA,1,1,2", 2, undefined, /4 fields, the header has 5/],
    ["sym,ts,price,size,qty\n", 1, "qty", /header names a column/],
    ["ts,price,size,buy\n", 1, "sym", /header lacks/],
    ["sym,ts,price,size,buy\nA,1,1,2,true\nB,x,1,2,true", 3, "ts", /not a timestamp/],
    ["sym,ts,price,size,buy\nA,1,1,2,maybe", 2, "buy", /not a bool/],
    ['sym,ts,price,size,buy\n"A,1,1,2,true', 2, undefined, /not closed/],
  ])("formats - CSV refuses %s", (text, line, column, why) => {
    const e = refusal("csv", text);
    expect([e.line, e.column]).toEqual([line, column]);
    expect(e.message).toMatch(why);
  });
});

describe("ingest formats - line protocol conformance", () => {
  it("formats - integer, float and bool fields; nanosecond default precision", () => {
    expect(rows("lp", `trades,sym=AAPL price=1.5,size=100i,buy=t ${T}000\ntrades,sym=MSFT size=7i,price=2,buy=FALSE ${T}999`)).toEqual([
      ["AAPL", T, 1.5, 100, 1],
      ["MSFT", T, 2, 7, 0],
    ]);
  });
  it("formats - an integer field fills a float column; unsigned 5u; exponent floats", () => {
    expect(rows("lp", `trades,sym=A price=3i,size=5u,buy=true ${T}000\ntrades,sym=A price=-1.5e2,size=+2i,buy=False ${T}000`)).toEqual([["A", T, 3, 5, 1], ["A", T, -150, 2, 0]]);
  });
  it("formats - escaped commas, spaces and equals in tag values; comments and blank lines", () => {
    expect(rows("lp", `# a comment\n\ntrades,sym=BRK\\,B\\ \\=x price=1,size=1i,buy=t ${T}000\n`)).toEqual([["BRK,B =x", T, 1, 1, 1]]);
  });
  it.each([
    ["s", T / 1e6],
    ["ms", T / 1e3],
    ["us", T],
    ["ns", `${T}000`],
  ] as const)("formats - precision=%s", (p, ts) => {
    expect(rows("lp", `trades,sym=A price=1,size=1i,buy=t ${ts}`, parsePrecision(p, "ns"))).toEqual([["A", T, 1, 1, 1]]);
  });
  it("formats - a line without a timestamp takes the node's clock", () => {
    expect(rows("lp", "trades,sym=A price=1,size=1i,buy=t")).toEqual([["A", NOW, 1, 1, 1]]);
  });
  it.each([
    ["trades,sym=A price=1,size=1.5,buy=t 1", 1, "size", /not an integer/],
    ["trades,sym=A price=1,size=1i,buy=t 1\nquotes,sym=A bid=1 1", 2, undefined, /measurement "quotes" is not table trades/],
    ["trades price=1,size=1i,buy=t 1", 1, "sym", /symbol tag is missing/],
    ["trades,sym=A,venue=X price=1,size=1i,buy=t 1", 1, "venue", /no such tag/],
    ['trades,sym=A price=1,size=1i,buy=t,note="hi" 1', 1, "note", /no such column/],
    ['trades,sym=A price="1",size=1i,buy=t 1', 1, "price", /string fields are not stored/],
    ["trades,sym=A price=1,size=1i 1", 1, "buy", /missing/],
    ["trades,sym=A price=abc,size=1i,buy=t 1", 1, "price", /not a field value/],
    ["trades,sym=A price=1,size=1i,buy=t 12.5", 1, "ts", /not an integer timestamp/],
    ["trades,sym=A price=1, size=1i,buy=t 1", 1, undefined, /space-separated parts/],
  ])("formats - line protocol refuses %s", (text, line, column, why) => {
    const e = refusal("lp", text);
    expect([e.line, e.column]).toEqual([line, column]);
    expect(e.message).toMatch(why);
  });
  it("formats - an unknown precision is refused with the units", () => {
    expect(() => parsePrecision("h", "ns")).toThrow(/use precision=ns, us, ms or s/);
  });
});
