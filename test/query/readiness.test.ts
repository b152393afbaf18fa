// A shard that finishes its recovery while a query runs (a shard just moved to
// this node: empty table, then its snapshot's table swapped in and live) must
// never be read as its empty recovering table and reported live: the answer
// has its rows, or a note says it was not live. Found by the cluster oracle
// test (test/query/cluster.oracle.int.test.ts) as a complete answer missing
// every row of a shard that had just moved.
import { describe, expect, it } from "vitest";
import { bucketOf } from "../../protocols/routing.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import type { Catalog } from "../../src/catalog.js";
import { HotTable } from "../../src/hotset/index.js";
import { ProxistQueryEngine, answerPart, shardHostSource } from "../../src/query/index.js";
import type { ClusterParts, HotShard, PartRequest, ShardHostLike } from "../../src/query/index.js";
import { TENANT, T_BASE, tradesSpec } from "./fixture.js";

const spec = tradesSpec(2);
const SYMBOLS = ["A", "B", "C", "D", "E", "F"];

/** A table of `bucket` holding 5 ticks of each of its symbols. */
function filled(bucket: number): HotTable {
  const syms = SYMBOLS.filter((s) => bucketOf(s, 2) === bucket);
  const n = syms.length * 5;
  const batch: TickBatch = {
    rows: n,
    symbols: syms,
    symbolIndex: Uint32Array.from({ length: n }, (_, i) => i % syms.length),
    ts: Float64Array.from({ length: n }, (_, i) => T_BASE + i * 1000),
    values: [Float64Array.from({ length: n }, (_, i) => 100 + i), Float64Array.from({ length: n }, (_, i) => i + 1)],
  };
  const t = new HotTable(spec);
  t.apply(1, batch);
  return t;
}

/** A runtime recovering with an empty table; the first read of its table finishes the recovery (table swapped, live). */
function recoveringOnFirstRead(bucket: number) {
  const rt = {
    state: "recovering",
    stats: { appliedLsn: 0 },
    current: new HotTable(spec),
    get table(): HotTable {
      const t = rt.current;
      rt.current = filled(bucket);
      rt.state = "running.live";
      rt.stats = { appliedLsn: 1 };
      return t;
    },
    waitForLsn: () => Promise.resolve(),
    lastLsn: () => Promise.resolve(1),
  };
  return rt;
}

const catalog = (): Catalog => new Map([[TENANT, new Map([["trades", spec]])]]) as unknown as Catalog;

describe("query - a shard turning live mid-query", () => {
  it("readiness - the coordinator never reports a shard live with the rows it had while recovering", async () => {
    const rt = recoveringOnFirstRead(0);
    const host: ShardHostLike = {
      all: () => [
        { shard: { tenant: TENANT, table: "trades", bucket: 0 }, runtime: rt },
        { shard: { tenant: TENANT, table: "trades", bucket: 1 }, runtime: { state: "running.live", stats: { appliedLsn: 1 }, table: filled(1), waitForLsn: () => Promise.resolve(), lastLsn: () => Promise.resolve(1) } },
      ],
    };
    const parts: ClusterParts = { placement: () => Promise.resolve([{ kind: "local" }, { kind: "local" }]), run: () => Promise.reject(new Error("no remote part expected")) };
    const engine = new ProxistQueryEngine({ source: shardHostSource(catalog, host), parts });
    const r = await engine.execute(TENANT, { op: "range", table: "trades" });
    const all = filled(0).rowCount + filled(1).rowCount;
    // Complete means every row; short means a note names shard 0.
    if (r.notes.length === 0) expect(r.table.rows).toBe(all);
    else expect(r.notes.join("\n")).toMatch(/^table trades shard 0: lagging/);
  });

  it("readiness - an owner's part reports the shard's status as it was before its rows were read", async () => {
    const rt = recoveringOnFirstRead(0);
    const hosted: HotShard[] = [
      {
        bucket: 0,
        get table() {
          return rt.table;
        },
        readiness: () => Promise.resolve(rt.state === "running.live" ? { kind: "live" as const, why: "" } : { kind: "lagging" as const, why: `${rt.state} at LSN 0 of 1` }),
      },
    ];
    const req: PartRequest = { id: "p", tenant: TENANT, table: "trades", buckets: [0], symbols: undefined, t0: 0, t1: Number.MAX_SAFE_INTEGER, behind: 0, ahead: 0, columns: ["price", "size"], minLsn: undefined, timeoutMs: 5_000 };
    const reply = await answerPart(req, spec, hosted, undefined, undefined, { nodeId: "n1", minLsnWaitMs: 1_000 });
    const rows = reply.series.reduce((n, s) => n + (s.hi - s.lo), 0);
    const live = reply.statuses.every((s) => s.kind === "live");
    // Live with every row, or not live.
    expect(live ? rows : -1).toBe(live ? filled(0).rowCount : -1);
    expect(live).toBe(false);
  });
});
