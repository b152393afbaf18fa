// Cluster-wide concurrentQueries, hotBytes and symbols (src/quota/cluster.ts)
// over the report exchange (share.ts), with plain values and a simulated
// clock: the rules, the reports (old ones still parse), and two nodes
// simulated on one clock staying within the quota in all, where each node on
// its own (negative control) admits up to the quota itself.
import { describe, expect, it } from "vitest";
import { QueryError } from "../../protocols/errors.js";
import { bucketOf } from "../../protocols/routing.js";
import type { TenantQuotas } from "../../protocols/tablespec.js";
import { NO_INGEST_STATE, PeerReports, QueryQuotas, charge, clusterShards, parseRateReport, precheck, queryShare, shardUsageKey, udfShare, stillPending, symbolKey, symbolShare, usageReport, withPeers, withUsage } from "../../src/quota/index.js";
import type { IngestQuotaState, PeerUsage, ShardUsage } from "../../src/quota/index.js";

const peerUsage = (u: Partial<PeerUsage>): PeerUsage => ({ gateways: 2, queries: 0, udf: 0, shards: new Map(), pending: 0, news: [], reserved: 0, ...u });

describe("quota - cluster-wide rules", () => {
  it("concurrentQueries - alone a node runs the whole quota; with peers what they leave, never less than an even share (rounded down)", () => {
    expect(queryShare(4, undefined)).toBe(4);
    expect(queryShare(4, { queries: 0, gateways: 1 })).toBe(4);
    expect(queryShare(4, { queries: 1, gateways: 2 })).toBe(3);
    expect(queryShare(4, { queries: 4, gateways: 2 })).toBe(2);
    expect(queryShare(3, { queries: 9, gateways: 2 })).toBe(1);
    expect(queryShare(1, { queries: 1, gateways: 2 })).toBe(0);
  });

  it("concurrentQueries - the node refuses past its share, naming the cluster-wide count, the share and the fix", () => {
    const q = new QueryQuotas((): TenantQuotas => ({ concurrentQueries: 4 }));
    q.setPeers(new Map([["a", { queries: 3, gateways: 2 }]]));
    const one = q.begin("a");
    q.begin("a");
    let err: unknown;
    try {
      q.begin("a");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QueryError);
    expect((err as Error).message).toMatch(
      /tenant a: quota concurrentQueries = 4 is reached across the cluster \(5 queries of the tenant run now: 2 on this node, 3 on other nodes as they last reported; this node's share now is 2 \(what the other 1 node\(s\) leave, at least an even share\)\); this query needs one more; retry when one of them ended, or raise quotas.concurrentQueries in tenant a's spec/,
    );
    // The peer's queries ended: this node may take what it leaves.
    q.setPeers(new Map());
    q.begin("a");
    q.begin("a");
    expect(() => q.begin("a")).toThrow(QueryError);
    one.release();
    expect(q.runningOf("a")).toBe(3);
  });

  it("shards - each shard counts once: this node's and the peers', a shard two report at the larger figures", () => {
    const own = new Map<string, ShardUsage>([["t/0", { bytes: 100, symbols: 3 }], ["t/1", { bytes: 50, symbols: 2 }]]);
    const peers = new Map<string, ShardUsage>([["t/1", { bytes: 60, symbols: 1 }], ["t/2", { bytes: 10, symbols: 4 }]]);
    expect(clusterShards(own, peers)).toEqual({ bytes: 170, symbols: 9 });
    expect(clusterShards(undefined, peers)).toEqual({ bytes: 70, symbols: 5 });
    expect(clusterShards(own, undefined)).toEqual({ bytes: 150, symbols: 5 });
  });

  it("symbols - a pending symbol counts PENDING_MS and then until some node reports its shard; the share per interval", () => {
    const reported = (s: string): boolean => s === "t/0";
    expect(stillPending({ shard: "t/0", atMs: 0 }, 1_999, reported)).toBe(true);
    expect(stillPending({ shard: "t/0", atMs: 0 }, 2_000, reported)).toBe(false);
    expect(stillPending({ shard: "t/1", atMs: 0 }, 60_000, reported)).toBe(true);
    // Alone: all that is left. With a peer: half of what was left at the last exchange (rounded up), less what was admitted since.
    expect(symbolShare(100, 40, 1, 0, 999)).toBe(60);
    expect(symbolShare(100, 40, 2, 40, 0)).toBe(30);
    expect(symbolShare(100, 40, 2, 40, 25)).toBe(5);
    expect(symbolShare(100, 99, 2, 99, 0)).toBe(1);
    expect(symbolShare(100, 100, 2, 99, 0)).toBe(0);
  });
});

describe("quota - cluster-wide reports", () => {
  it("reports - one of an older node (rates only) still parses; the new fields parse; malformed ones drop the report", () => {
    expect(parseRateReport('{"node":"b","tenants":{"t":{"ticks":1,"bytes":2}}}')).toEqual({ node: "b", tenants: { t: { ticks: 1, bytes: 2 } } });
    const full = { node: "b", tenants: { t: { ticks: 0, bytes: 0, queries: 2, shards: { "trades/0": { bytes: 10, symbols: 3 } }, pending: 1, news: ["trades\u0000X"], reserved: 4 } } };
    expect(parseRateReport(JSON.stringify(full))).toEqual(full);
    for (const bad of [
      { queries: -1 },
      { queries: "2" },
      { pending: Number.POSITIVE_INFINITY },
      { shards: [] },
      { shards: { "t/0": { bytes: 1 } } },
      { shards: { "t/0": null } },
      { news: "X" },
      { news: [1] },
      { reserved: -1 },
    ]) {
      const text = JSON.stringify({ node: "b", tenants: { t: { ticks: 0, bytes: 0, ...bad } } });
      expect(parseRateReport(text), text).toBeUndefined();
    }
  });

  it("reports - usage of the live peers: queries and pending summed, shards once at the larger figures, news gathered", () => {
    const p = new PeerReports("a", 2_000);
    p.add({ node: "a", tenants: { t: { ticks: 0, bytes: 0, queries: 99 } } }, 0);
    p.add({ node: "b", tenants: { t: { ticks: 0, bytes: 0, queries: 2, shards: { "x/0": { bytes: 10, symbols: 1 } }, pending: 1, news: ["x\u0000A"] } } }, 0);
    p.add({ node: "c", tenants: { t: { ticks: 0, bytes: 0, queries: 1, shards: { "x/0": { bytes: 5, symbols: 2 }, "x/1": { bytes: 1, symbols: 1 } } } } }, 1_000);
    const u = p.usage(1_500).get("t")!;
    expect(u).toMatchObject({ gateways: 3, queries: 3, pending: 1, news: ["x\u0000A"], reserved: 0 });
    expect(Object.fromEntries(u.shards)).toEqual({ "x/0": { bytes: 10, symbols: 2 }, "x/1": { bytes: 1, symbols: 1 } });
    // b is silent past 2 s: its queries and shards stop counting.
    expect(p.usage(2_500).get("t")).toMatchObject({ gateways: 2, queries: 1, pending: 0 });
  });

  it("reports - this node reports its shards and its pending symbols by name", () => {
    let s = withUsage(NO_INGEST_STATE, new Map([["t", { shards: new Map([["x/0", { bytes: 7, symbols: 1 }]]), symbols: new Set([symbolKey("x", "A")]) }]]));
    const c = charge(s, { symbols: 10 }, "t", "x", 1, 1, ["A", "B"], 100, 1);
    expect(c.ok).toBe(true);
    s = c.state;
    expect(usageReport(s, { symbols: 10 }, "t", 200)).toEqual({ shards: { "x/0": { bytes: 7, symbols: 1 } }, pending: 1, news: [symbolKey("x", "B")] });
    // Past PENDING_MS, with its shard reported, B is no longer pending.
    expect(usageReport(s, { symbols: 10 }, "t", 2_200)).toEqual({ shards: { "x/0": { bytes: 7, symbols: 1 } }, pending: 0, news: [] });
    expect(usageReport(s, { symbols: 10 }, "other", 0)).toEqual({});
  });
});

describe("quota - hotBytes and symbols across nodes", () => {
  it("hotBytes - the peers' shards count: refused when the cluster holds the quota, a shard on two nodes once", () => {
    const q = { hotBytes: 1_000 };
    const own = withUsage(NO_INGEST_STATE, new Map([["a", { shards: new Map([["t/0", { bytes: 400, symbols: 1 }]]) }]]));
    expect(precheck(own, q, "a", 0)).toBeUndefined();
    const s = withPeers(own, new Map(), new Map([["a", peerUsage({ shards: new Map([["t/0", { bytes: 400, symbols: 1 }], ["t/1", { bytes: 650, symbols: 1 }]]) })]]));
    const r = precheck(s, q, "a", 0);
    expect(r).toMatchObject({ quota: "hotBytes", retryable: true });
    expect(r!.message).toMatch(/quota hotBytes = 1000 is reached across the cluster \(its hot sets hold 1050 bytes: 400 on this node's shards, 650 on other nodes' as they last reported\)/);
    // The peer stopped reporting (dead or cut off): its shards stop counting.
    expect(precheck(withPeers(s, new Map(), new Map()), q, "a", 0)).toBeUndefined();
  });

  it("symbols - the peers' shards and pending symbols count; a symbol a peer announced is known and passes at the quota", () => {
    const q = { symbols: 4 };
    const own = withUsage(NO_INGEST_STATE, new Map([["a", { shards: new Map([["t/0", { bytes: 0, symbols: 1 }]]), symbols: new Set([symbolKey("t", "A")]) }]]));
    const s = withPeers(own, new Map(), new Map([["a", peerUsage({ gateways: 2, shards: new Map([["t/1", { bytes: 0, symbols: 2 }]]), pending: 1, news: [symbolKey("t", "N")] })]]));
    // 1 + 2 in the shards, 1 pending on the peer: 4, the quota.
    const over = charge(s, q, "a", "t", 1, 1, ["Z"], 0, 2);
    expect(over).toMatchObject({ ok: false, refusal: { quota: "symbols", retryable: false } });
    if (!over.ok) expect(over.refusal.message).toMatch(/quota symbols = 4 would be passed: the tenant has 4 symbols across the cluster \(3 in its shards, 1 admitted and not yet reported by their shard\)/);
    expect(charge(s, q, "a", "t", 1, 1, ["A", "N"], 0, 2).ok).toBe(true);
  });

  it("symbols - below the quota a gateway takes its share of what is left per report interval (retryable past it)", () => {
    const q = { symbols: 100 };
    const s = withPeers(NO_INGEST_STATE, new Map(), new Map([["a", peerUsage({ gateways: 2 })]]));
    const names = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `S${from + i}`);
    const first = charge(s, q, "a", "t", 1, 1, names(0, 50), 0, 4);
    expect(first.ok).toBe(true);
    const more = charge(first.state, q, "a", "t", 1, 1, names(50, 1), 0, 4);
    expect(more).toMatchObject({ ok: false, refusal: { quota: "symbols", retryable: true, retryAfterMs: 500 } });
    if (!more.ok) expect(more.refusal.message).toMatch(/quota symbols = 100 leaves 50 new symbols across the cluster .* shared by 2 nodes: this node may admit 0 more now and this batch brings 1 new one\(s\).*retry it unchanged after 500 ms.*raise quotas.symbols/);
    // The next exchange: half of what is left now.
    const next = withPeers(first.state, new Map(), new Map([["a", peerUsage({ gateways: 2 })]]));
    expect(charge(next, q, "a", "t", 1, 1, names(50, 25), 0, 4).ok).toBe(true);
  });

  /**
   * Two nodes on one simulated clock, a table of 4 shards (0 and 1 on node 0,
   * 2 and 3 on node 1; a shard applies what was admitted at once). Every 10 ms
   * each gateway gets a batch of 3 symbols never seen before; every 250 ms each
   * node measures its shards, every 500 ms (with `shared`) the nodes exchange
   * reports. Returns the distinct symbols the shards hold after 10 s.
   */
  function simulateSymbols(quota: number, shared: boolean): number {
    const q = { symbols: quota };
    const shardsOf: Set<string>[] = [0, 1, 2, 3].map(() => new Set());
    const state: IngestQuotaState[] = [NO_INGEST_STATE, NO_INGEST_STATE];
    const peers = [new PeerReports("n0"), new PeerReports("n1")];
    let next = 0;
    for (let ms = 0; ms < 10_000; ms += 10) {
      for (const g of [0, 1]) {
        const syms = [`S${next++}`, `S${next++}`, `S${next++}`];
        const c = charge(state[g]!, q, "t", "x", 3, 30, syms, ms, 4);
        if (!c.ok) continue;
        state[g] = c.state;
        for (const sym of syms) shardsOf[bucketOf(sym, 4)]!.add(sym);
      }
      if (ms % 250 === 0) {
        for (const g of [0, 1]) {
          const mine = [0, 1, 2, 3].filter((b) => (b < 2 ? 0 : 1) === g);
          const shards = new Map(mine.map((b) => [shardUsageKey("x", b), { bytes: 0, symbols: shardsOf[b]!.size }]));
          const symbols = new Set(mine.flatMap((b) => [...shardsOf[b]!].map((sym) => symbolKey("x", sym))));
          state[g] = withUsage(state[g]!, new Map([["t", { shards, symbols }]]));
        }
      }
      if (shared && ms % 500 === 0) {
        // As the node does: the peers' view first, then the report with the share just taken.
        for (const g of [0, 1]) {
          state[g] = withPeers(state[g]!, peers[g]!.rates(ms), peers[g]!.usage(ms), ms);
          peers[1 - g]!.add({ node: `n${g}`, tenants: { t: { ticks: 0, bytes: 0, ...usageReport(state[g]!, q, "t", ms) } } }, ms);
        }
      }
    }
    return shardsOf.reduce((n, s) => n + s.size, 0);
  }

  it("symbols - two nodes flooded with new symbols hold about the quota in all; each on its own (negative control) more", () => {
    const shared = simulateSymbols(600, true);
    const local = simulateSymbols(600, false);
    expect(shared).toBeLessThanOrEqual(600 + 2);
    expect(shared).toBeGreaterThan(570);
    // On its own a node counts its shards (half of the other's symbols too) and what it admitted: 4/3 of the quota in all.
    expect(local).toBeGreaterThan(750);
  });

  /**
   * Two nodes on one simulated clock, each asked for a query of the tenant
   * every 5 ms that runs 200 ms when admitted; every 500 ms (with `shared`)
   * they exchange how many they run. Returns the mean and the largest number
   * running in all, sampled every 5 ms after the first second.
   */
  function simulateQueries(quota: number, shared: boolean): { mean: number; max: number } {
    const nodes = [0, 1].map(() => new QueryQuotas((): TenantQuotas => ({ concurrentQueries: quota })));
    const ends: { atMs: number; release: () => void }[] = [];
    const peers = [new PeerReports("n0"), new PeerReports("n1")];
    let sum = 0;
    let samples = 0;
    let max = 0;
    for (let ms = 0; ms < 10_000; ms += 5) {
      for (const e of ends.splice(0).filter((x) => (x.atMs <= ms ? (x.release(), false) : true))) ends.push(e);
      for (const g of [0, 1]) {
        try {
          const b = nodes[g]!.begin("t");
          ends.push({ atMs: ms + 200, release: () => b.release() });
        } catch {
          // Refused: the client retries on its next turn.
        }
      }
      if (shared && ms % 500 === 0) {
        for (const g of [0, 1]) peers[1 - g]!.add({ node: `n${g}`, tenants: { t: { ticks: 0, bytes: 0, queries: nodes[g]!.runningOf("t") } } }, ms);
        for (const g of [0, 1]) nodes[g]!.setPeers(peers[g]!.usage(ms));
      }
      if (ms >= 1_000) {
        const n = nodes[0]!.runningOf("t") + nodes[1]!.runningOf("t");
        sum += n;
        samples++;
        max = Math.max(max, n);
      }
    }
    return { mean: sum / samples, max };
  }

  it("concurrentQueries - two nodes flooded with queries run about the quota in all; each on its own (negative control) twice", () => {
    const shared = simulateQueries(8, true);
    const local = simulateQueries(8, false);
    expect(shared.max).toBeLessThanOrEqual(8);
    expect(shared.mean).toBeGreaterThan(7);
    expect(local.mean).toBeGreaterThan(15);
  });
});

describe("quota - udfQueriesPerSecond across the cluster", () => {
  it("udfShare - alone the whole rate; with peers what they leave, never less than an even share", () => {
    expect(udfShare(10, undefined)).toBe(10);
    expect(udfShare(10, { udf: 3, gateways: 2 })).toBe(7);
    expect(udfShare(10, { udf: 10, gateways: 2 })).toBe(5);
    expect(udfShare(9, { udf: 9, gateways: 3 })).toBe(3);
  });

  it("admitUdf - two nodes asked alike on one clock admit about the quota in all; each on its own admits twice (negative control)", () => {
    const quota = 20;
    const run = (exchange: boolean): number => {
      let now = 0;
      const nodes = [0, 1].map(() => new QueryQuotas(() => ({ udfQueriesPerSecond: quota }), () => now));
      const reports = new PeerReports("a", 2_000);
      const peersOf = new PeerReports("b", 2_000);
      const history: number[][] = [[0, 0]];
      // 10 s of each node asked every 5 ms; a report every 500 ms with the UDF queries admitted per second over the last second.
      for (let step = 1; now < 10_000; step++) {
        now = step * 5;
        for (const q of nodes) {
          try {
            q.admitUdf("t");
          } catch {
            // refused: counted by what was admitted
          }
        }
        if (exchange && now % 500 === 0) {
          const admitted = nodes.map((q) => q.udfAdmittedOf("t"));
          history.push(admitted);
          const back = history[Math.max(0, history.length - 3)]!;
          const secs = Math.min(1, (history.length - 1) * 0.5);
          const rate = (i: number): number => (admitted[i]! - back[i]!) / secs;
          reports.add({ node: "b", tenants: { t: { ticks: 0, bytes: 0, udf: rate(1) } } }, now);
          peersOf.add({ node: "a", tenants: { t: { ticks: 0, bytes: 0, udf: rate(0) } } }, now);
          nodes[0]!.setPeers(reports.usage(now));
          nodes[1]!.setPeers(peersOf.usage(now));
        }
      }
      return nodes.reduce((n, q) => n + q.udfAdmittedOf("t"), 0) / 10;
    };
    const shared = run(true);
    const alone = run(false);
    // The first second's burst (each bucket starts full) and one report interval of lag are above the quota.
    expect(shared).toBeGreaterThan(quota * 0.9);
    expect(shared).toBeLessThan(quota * 1.3);
    expect(alone).toBeGreaterThan(quota * 1.8);
  });

  it("admitUdf - the refusal names the quota, the cluster and this node's share; a report without udf still parses", () => {
    let now = 0;
    const q = new QueryQuotas(() => ({ udfQueriesPerSecond: 4 }), () => now);
    q.setPeers(new Map([["t", { queries: 0, udf: 4, gateways: 2 }]]));
    q.admitUdf("t");
    q.admitUdf("t");
    expect(() => q.admitUdf("t")).toThrow(/tenant t: quota udfQueriesPerSecond = 4 is reached across the cluster \(this node's share now is 2\/s: what the other 1 node\(s\) leave, at least an even share\)/);
    now += 500;
    q.admitUdf("t");
    expect(parseRateReport(JSON.stringify({ node: "x", tenants: { t: { ticks: 1, bytes: 2 } } }))?.tenants.t?.udf).toBeUndefined();
    expect(parseRateReport(JSON.stringify({ node: "x", tenants: { t: { ticks: 1, bytes: 2, udf: 3 } } }))?.tenants.t?.udf).toBe(3);
    expect(parseRateReport(JSON.stringify({ node: "x", tenants: { t: { ticks: 1, bytes: 2, udf: -1 } } }))).toBeUndefined();
  });
});
