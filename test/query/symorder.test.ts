// symbolsInOrder caches the merged name order of a table's shards between
// queries: a symbol learnt after a query must be in the next one's order.
import { describe, expect, it } from "vitest";
import { bucketOf } from "../../protocols/routing.js";
import { symbolsInOrder } from "../../src/query/symorder.js";
import { TENANT, T_BASE, buildHot, tradesSpec, workload } from "./fixture.js";

describe("query symbol order", () => {
  it("symorder - a merge is reused until a shard learns a symbol, then redone", async () => {
    const w = workload(3, { symbols: 6, records: 10 });
    const hot = buildHot(w);
    const shards = hot.tables.get("trades")!;
    const names = (): string[] => symbolsInOrder(shards).map((r) => r.name);
    const before = names();
    expect(symbolsInOrder(shards)).toBe(symbolsInOrder(shards));
    expect(before).toEqual([...before].sort());
    // A new symbol in its own bucket, then the last-by over the same shards.
    const spec = tradesSpec();
    const sym = "AAA_NEW";
    const bucket = bucketOf(sym, spec.shards);
    shards[bucket]!.table.apply(10_000, { rows: 1, symbols: [sym], symbolIndex: Uint32Array.of(0), ts: Float64Array.of(T_BASE + 5), values: [Float64Array.of(1.5), Float64Array.of(7)] });
    expect(names()).toEqual([sym, ...before]);
    const last = await hot.engine(undefined).execute(TENANT, { op: "lastBy", table: "trades" });
    expect(last.table.symbols[0]).toBe(sym);
  });
});
