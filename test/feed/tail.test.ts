// The feed output's order for fencing writers (src/feed/tail.ts): one place
// per record, a snapshot after the update of its record; a tail covers what
// is at or before its place.
import { describe, expect, it } from "vitest";
import { EMPTY_TAIL, coveredBy, outputPlace, placeAtOrBefore } from "../../src/feed/index.js";

const at = (lsn: Record<string, number>) => ({ feed: "f", lsn });

describe("feed tail", () => {
  it("feed tail - places follow the highest LSN of the offset; a snapshot follows the update of the same record", () => {
    expect(outputPlace("update", at({ "trades/0": 7, "trades/1": 12 }))).toEqual([24, 0]);
    expect(outputPlace("snapshot", at({ "trades/0": 7, "trades/1": 12 }))).toEqual([25, 0]);
    expect(placeAtOrBefore(outputPlace("snapshot", at({ "trades/1": 12 })), outputPlace("update", at({ "trades/0": 13 })))).toBe(true);
    expect(placeAtOrBefore(outputPlace("update", at({ "trades/0": 13 })), outputPlace("snapshot", at({ "trades/1": 12 })))).toBe(false);
    expect(outputPlace("update", at({}))).toEqual([0, 0]);
  });

  it("feed tail - a tail covers its own place and every earlier one, nothing after; the empty tail covers nothing", () => {
    const tail = { seq: 40, place: outputPlace("update", at({ "trades/0": 12 })) };
    expect(coveredBy(tail, { kind: "update", offset: at({ "trades/0": 12 }) })).toBe(true);
    expect(coveredBy(tail, { kind: "update", offset: at({ "trades/1": 11 }) })).toBe(true);
    expect(coveredBy(tail, { kind: "snapshot", offset: at({ "trades/0": 12 }) })).toBe(false);
    expect(coveredBy(tail, { kind: "update", offset: at({ "trades/0": 13 }) })).toBe(false);
    expect(coveredBy(EMPTY_TAIL, { kind: "update", offset: at({}) })).toBe(false);
  });

  it("feed tail - the parts of record L's update come after a snapshot at L - 1, in the order of the rows they end at, and before L's last part", () => {
    const part = (rows: number) => ({ feed: "f", lsn: { "trades/0": 11, "trades/1": 9 }, part: { lsn: 12, rows } });
    const order = [outputPlace("update", at({ "trades/0": 11 })), outputPlace("snapshot", at({ "trades/0": 11 })), outputPlace("update", part(100)), outputPlace("update", part(250)), outputPlace("update", at({ "trades/0": 12 })), outputPlace("snapshot", at({ "trades/0": 12 }))];
    for (let i = 0; i < order.length; i++) for (let j = 0; j < order.length; j++) expect(placeAtOrBefore(order[i]!, order[j]!), `${i} <= ${j}`).toBe(i <= j);
    const tail = { seq: 9, place: outputPlace("update", part(100)) };
    expect(coveredBy(tail, { kind: "update", offset: part(100) })).toBe(true);
    expect(coveredBy(tail, { kind: "update", offset: part(250) })).toBe(false);
    expect(coveredBy(tail, { kind: "update", offset: at({ "trades/0": 12 }) })).toBe(false);
    expect(coveredBy(tail, { kind: "snapshot", offset: at({ "trades/0": 11 }) })).toBe(true);
  });
});
