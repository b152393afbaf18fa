// Cluster-wide rate quotas (src/quota/share.ts): the share each gateway grants,
// the peers' reports, and two gateways simulated on one clock, flooded alike or
// unevenly, admitting about the quota in all (not once per gateway).
import { describe, expect, it } from "vitest";
import type { TenantQuotas } from "../../protocols/tablespec.js";
import { NO_INGEST_STATE, PeerReports, admittedSoFar, charge, parseRateReport, precheck, shareOf, withPeers } from "../../src/quota/index.js";
import type { IngestQuotaState } from "../../src/quota/index.js";

describe("quota - cluster-wide rate share", () => {
  it("share - alone a gateway grants the whole quota; with peers what they leave, never less than an even share", () => {
    expect(shareOf(1000, undefined, "ticks")).toBe(1000);
    expect(shareOf(1000, { ticks: 0, bytes: 0, gateways: 1 }, "ticks")).toBe(1000);
    expect(shareOf(1000, { ticks: 100, bytes: 0, gateways: 2 }, "ticks")).toBe(900);
    expect(shareOf(1000, { ticks: 5000, bytes: 0, gateways: 2 }, "ticks")).toBe(500);
    expect(shareOf(1000, { ticks: 0, bytes: 800, gateways: 4 }, "bytes")).toBe(250);
  });

  it("share - peer reports: sums per tenant, this node's own report ignored, a silent peer stops counting", () => {
    const p = new PeerReports("a", 2_000);
    p.add({ node: "a", tenants: { t: { ticks: 1e9, bytes: 1e9 } } }, 0);
    p.add({ node: "b", tenants: { t: { ticks: 100, bytes: 10 } } }, 0);
    p.add({ node: "c", tenants: { t: { ticks: 50, bytes: 5 }, u: { ticks: 1, bytes: 1 } } }, 1_000);
    expect(p.rates(1_500).get("t")).toEqual({ ticks: 150, bytes: 15, gateways: 3 });
    expect(p.rates(1_500).get("u")).toEqual({ ticks: 1, bytes: 1, gateways: 3 });
    // b's report is older than 2 s at 2,500 ms: gone.
    expect(p.rates(2_500).get("t")).toEqual({ ticks: 50, bytes: 5, gateways: 2 });
    expect(p.rates(3_500).size).toBe(0);
  });

  it("share - malformed reports are dropped", () => {
    expect(parseRateReport('{"node":"b","tenants":{"t":{"ticks":1,"bytes":2}}}')).toEqual({ node: "b", tenants: { t: { ticks: 1, bytes: 2 } } });
    for (const bad of ["", "null", "[]", '{"node":"","tenants":{}}', '{"node":"b"}', '{"node":"b","tenants":{"t":{"ticks":-1,"bytes":0}}}', '{"node":"b","tenants":{"t":{"ticks":"1","bytes":0}}}', '{"node":"b","tenants":{"t":null}}']) {
      expect(parseRateReport(bad), bad).toBeUndefined();
    }
  });

  it("share - withPeers sets each named tenant's peers and gives a tenant no longer named its whole quota back", () => {
    let s: IngestQuotaState = withPeers(NO_INGEST_STATE, new Map([["t", { ticks: 10, bytes: 0, gateways: 2 }]]));
    expect(s.get("t")?.peers).toEqual({ ticks: 10, bytes: 0, gateways: 2 });
    s = withPeers(s, new Map());
    expect(s.get("t")?.peers).toBeUndefined();
  });

  /**
   * Two gateways on one simulated clock: every 10 ms each receives `demand[g]` ticks/s in 10-tick batches;
   * every 500 ms each reports its rate over the last second and gets the other's report (`shared`).
   * Returns the ticks admitted in all from second 3 to second 13 (after the start's transient).
   */
  function simulate(demand: readonly [number, number], shared: boolean): number {
    const q: TenantQuotas = { ingestTicksPerSecond: 1_000 };
    const state: IngestQuotaState[] = [NO_INGEST_STATE, NO_INGEST_STATE];
    const history: Map<string, { ticks: number; bytes: number }>[][] = [[], []];
    const carry = [0, 0];
    let admitted = 0;
    for (let ms = 0; ms < 13_000; ms += 10) {
      for (const g of [0, 1]) {
        carry[g]! += (demand[g]! * 10) / 1000;
        while (carry[g]! >= 10) {
          carry[g]! -= 10;
          if (precheck(state[g]!, q, "t", ms) !== undefined) continue;
          const c = charge(state[g]!, q, "t", "trades", 10, 100, undefined, ms);
          if (!c.ok) continue;
          state[g] = c.state;
          if (ms >= 3_000) admitted += 10;
        }
      }
      if (shared && ms % 500 === 0) {
        const rates = [0, 1].map((g) => {
          const now = admittedSoFar(state[g]!).get("t") ?? { ticks: 0, bytes: 0 };
          history[g]!.push(new Map([["t", now]]));
          const back = history[g]!.length > 2 ? history[g]!.shift()! : history[g]![0]!;
          const then = back.get("t")!;
          const secs = history[g]!.length > 1 ? 1 : 0.5;
          return { ticks: (now.ticks - then.ticks) / secs, bytes: (now.bytes - then.bytes) / secs };
        });
        for (const g of [0, 1]) state[g] = withPeers(state[g]!, new Map([["t", { ...rates[1 - g]!, gateways: 2 }]]));
      }
    }
    return admitted / 10; // per second over the 10 s measured
  }

  it("share - two gateways flooded alike admit about the quota in all; per gateway (negative control) twice that", () => {
    const shared = simulate([5_000, 5_000], true);
    const local = simulate([5_000, 5_000], false);
    expect(shared).toBeGreaterThan(900);
    expect(shared).toBeLessThan(1_150);
    expect(local).toBeGreaterThan(1_900);
  });

  it("share - uneven traffic: the busy gateway takes what the quiet one leaves, the total stays near the quota", () => {
    const total = simulate([5_000, 200], true);
    expect(total).toBeGreaterThan(900);
    expect(total).toBeLessThan(1_150);
    // All traffic on one gateway: it grants the whole quota.
    const one = simulate([5_000, 0], true);
    expect(one).toBeGreaterThan(950);
    expect(one).toBeLessThan(1_050);
  });
});
