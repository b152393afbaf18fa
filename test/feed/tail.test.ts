// The feed output's order for fencing writers (src/feed/tail.ts): one place
// per record, a snapshot after the update of its record; a tail covers what
// is at or before its place.
import { describe, expect, it } from "vitest";
import { EMPTY_TAIL, coveredBy, outputPlace } from "../../src/feed/index.js";

const at = (lsn: Record<string, number>) => ({ feed: "f", lsn });

describe("feed tail", () => {
  it("feed tail - places follow the highest LSN of the offset; a snapshot follows the update of the same record", () => {
    expect(outputPlace("update", at({ "trades/0": 7, "trades/1": 12 }))).toBe(24);
    expect(outputPlace("snapshot", at({ "trades/0": 7, "trades/1": 12 }))).toBe(25);
    expect(outputPlace("update", at({ "trades/0": 13 }))).toBeGreaterThan(outputPlace("snapshot", at({ "trades/1": 12 })));
    expect(outputPlace("update", at({}))).toBe(0);
  });

  it("feed tail - a tail covers its own place and every earlier one, nothing after; the empty tail covers nothing", () => {
    const tail = { seq: 40, place: outputPlace("update", at({ "trades/0": 12 })) };
    expect(coveredBy(tail, { kind: "update", offset: at({ "trades/0": 12 }) })).toBe(true);
    expect(coveredBy(tail, { kind: "update", offset: at({ "trades/1": 11 }) })).toBe(true);
    expect(coveredBy(tail, { kind: "snapshot", offset: at({ "trades/0": 12 }) })).toBe(false);
    expect(coveredBy(tail, { kind: "update", offset: at({ "trades/0": 13 }) })).toBe(false);
    expect(coveredBy(EMPTY_TAIL, { kind: "update", offset: at({}) })).toBe(false);
  });
});
