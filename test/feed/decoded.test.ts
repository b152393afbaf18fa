// SharedDecodes: feed readers of one node decode a WAL record once; the key
// names tenant, table, spec version and LSN, so readers of another tenant or
// of another spec version never take each other's batch; bounded, oldest first.
import { describe, expect, it } from "vitest";
import { SharedDecodes } from "../../src/feed/index.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";

const batch = (rows: number): TickBatch => ({ rows, symbols: [], symbolIndex: new Uint32Array(rows), ts: new Float64Array(rows), values: [] });

describe("SharedDecodes", () => {
  it("decoded - the second reader of a record takes the first one's batch; other tenants, tables and versions decode their own", () => {
    const d = new SharedDecodes(8);
    let decodes = 0;
    const dec = (rows: number) => () => (decodes++, batch(rows));
    const a = d.get("t1", "trades", 1, 5, dec(1));
    expect(d.get("t1", "trades", 1, 5, dec(2))).toBe(a);
    expect(decodes).toBe(1);
    expect(d.get("t2", "trades", 1, 5, dec(3))).not.toBe(a);
    expect(d.get("t1", "quotes", 1, 5, dec(4))).not.toBe(a);
    expect(d.get("t1", "trades", 2, 5, dec(5))).not.toBe(a);
    expect(decodes).toBe(4);
    expect({ hits: d.hits, misses: d.misses }).toEqual({ hits: 1, misses: 4 });
  });

  it("decoded - bounded: past the cap the oldest record is decoded again; a decode that throws leaves nothing", () => {
    const d = new SharedDecodes(3);
    for (let lsn = 1; lsn <= 4; lsn++) d.get("t", "trades", 1, lsn, () => batch(lsn));
    expect(d.size).toBe(3);
    let again = 0;
    d.get("t", "trades", 1, 4, () => (again++, batch(0)));
    expect(again).toBe(0);
    d.get("t", "trades", 1, 1, () => (again++, batch(0)));
    expect(again).toBe(1);
    expect(() => d.get("t", "trades", 1, 9, () => { throw new Error("WAL record at LSN 9 does not decode"); })).toThrow(/LSN 9/);
    expect(d.get("t", "trades", 1, 9, () => batch(9)).rows).toBe(9);
  });
});
