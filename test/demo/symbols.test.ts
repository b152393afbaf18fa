// The demo's and benchmarks' symbol names: distinct however many are asked for
// (a padded encoding once made 1,000 names hold 963 symbols, so benchmarks of
// "1,000 symbols" ran on fewer and put two walks under one name).
import { describe, expect, it } from "vitest";
import { WELL_KNOWN_SYMBOLS, demoSymbols, symbolNames } from "../../src/demo/randomwalk.js";

describe("demo - symbol names", () => {
  it("symbols - symbolNames(n) gives n distinct names across the 3- to 4-letter boundary", () => {
    const names = symbolNames(20_000);
    expect(new Set(names).size).toBe(20_000);
    expect(names.slice(0, 3)).toEqual(["AAA", "AAB", "AAC"]);
    expect(names[26 ** 3 - 1]).toBe("ZZZ");
    expect(names[26 ** 3]).toBe("AAAA");
  });

  it("symbols - demoSymbols(n) starts with the well-known tickers and never repeats one as a synthetic name", () => {
    const names = demoSymbols(12_000);
    expect(names.slice(0, WELL_KNOWN_SYMBOLS.length)).toEqual([...WELL_KNOWN_SYMBOLS]);
    expect(new Set(names).size).toBe(12_000);
    expect(demoSymbols(3)).toEqual(["AAPL", "MSFT", "GOOG"]);
  });
});
