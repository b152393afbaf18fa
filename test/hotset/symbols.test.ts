import { describe, expect, it } from "vitest";
import { HotSetError, SymbolDictionary } from "../../src/hotset/index.js";

describe("symbol dictionary", () => {
  it("symbols - ids are dense and in first-seen order", () => {
    const d = new SymbolDictionary();
    expect(["MSFT", "AAPL", "MSFT", "IBM", "AAPL"].map((s) => d.idOf(s))).toEqual([0, 1, 0, 2, 1]);
    expect(d.size).toBe(3);
    expect(d.symbols()).toEqual(["MSFT", "AAPL", "IBM"]);
    expect(d.symbolAt(2)).toBe("IBM");
  });

  it("symbols - lookup never creates an id", () => {
    const d = new SymbolDictionary();
    d.idOf("A");
    expect(d.lookup("A")).toBe(0);
    expect(d.lookup("B")).toBeUndefined();
    expect(d.size).toBe(1);
  });

  it("symbols - replaying the same sequence gives the same ids", () => {
    const seq = ["X", "Y", "X", "Z", "ÄÖ", "Y", "€"];
    const a = new SymbolDictionary();
    const b = new SymbolDictionary();
    expect(seq.map((s) => a.idOf(s))).toEqual(seq.map((s) => b.idOf(s)));
  });

  it("symbols - fromSymbols restores ids and keeps handing out the next ones", () => {
    const d = new SymbolDictionary();
    ["A", "B", "C"].forEach((s) => d.idOf(s));
    const r = SymbolDictionary.fromSymbols(d.symbols());
    expect(r.lookup("B")).toBe(1);
    expect(r.idOf("D")).toBe(3);
    expect(d.idOf("D")).toBe(3);
  });

  it("symbols - the persisted list is a copy", () => {
    const d = new SymbolDictionary();
    d.idOf("A");
    d.symbols().push("B");
    expect(d.size).toBe(1);
  });

  it("symbols - a duplicate in a persisted list or an unknown id is an error", () => {
    expect(() => SymbolDictionary.fromSymbols(["A", "B", "A"])).toThrow(HotSetError);
    expect(() => new SymbolDictionary().symbolAt(0)).toThrow(/id 0 is unknown/);
  });
});
