// The gateway's ingest quota decisions, pure: rates per tenant on a simulated
// clock, hot bytes, symbols, and that a tenant without quotas costs nothing.
import { describe, expect, it } from "vitest";
import { NO_INGEST_STATE, charge, precheck, symbolKey, withUsage } from "../../src/quota/index.js";
import type { IngestQuotaState } from "../../src/quota/index.js";

describe("quota - ingest", () => {
  it("ticks/s - a tenant over its rate is refused retryably, naming the quota, its value, the wait and the fix", () => {
    const q = { ingestTicksPerSecond: 1_000 };
    let s: IngestQuotaState = NO_INGEST_STATE;
    const c1 = charge(s, q, "a", "trades", 800, 10, undefined, 0);
    expect(c1.ok).toBe(true);
    s = c1.state;
    const c2 = charge(s, q, "a", "trades", 800, 10, undefined, 0);
    expect(c2.ok).toBe(false);
    if (c2.ok) return;
    expect(c2.refusal).toMatchObject({ quota: "ingestTicksPerSecond", retryable: true, retryAfterMs: 600 });
    expect(c2.refusal.message).toMatch(/tenant a: quota ingestTicksPerSecond = 1000 is used up \(this batch has 800 ticks\).*retry it unchanged after 600 ms.*raise quotas.ingestTicksPerSecond in tenant a's spec.*pxctl apply/);
    // A refused batch takes nothing: 600 ms later it passes.
    expect(charge(c2.state, q, "a", "trades", 800, 10, undefined, 600).ok).toBe(true);
  });

  it("bytes/s - an empty bucket is refused before decoding (precheck)", () => {
    const q = { ingestBytesPerSecond: 1_000 };
    const c = charge(NO_INGEST_STATE, q, "a", "t", 1, 5_000, undefined, 0);
    expect(c.ok).toBe(true); // the first batch over the burst borrows
    const pre = precheck(c.state, q, "a", 100);
    expect(pre).toMatchObject({ quota: "ingestBytesPerSecond", retryable: true });
    expect(pre!.message).toMatch(/quota ingestBytesPerSecond = 1000 is used up/);
    expect(precheck(c.state, q, "a", 4_100)).toBeUndefined();
  });

  it("tenants - one tenant's bucket is its own: b passes while a is refused", () => {
    const q = { ingestTicksPerSecond: 10 };
    const a = charge(NO_INGEST_STATE, q, "a", "t", 10, 1, undefined, 0);
    expect(a.ok).toBe(true);
    expect(charge(a.state, q, "a", "t", 10, 1, undefined, 0).ok).toBe(false);
    expect(charge(a.state, q, "b", "t", 10, 1, undefined, 0).ok).toBe(true);
  });

  it("no quotas - nothing is kept and the state is the same object", () => {
    const c = charge(NO_INGEST_STATE, {}, "a", "t", 1e9, 1e9, undefined, 0);
    expect(c.ok && c.state === NO_INGEST_STATE).toBe(true);
    expect(precheck(NO_INGEST_STATE, {}, "a", 0)).toBeUndefined();
  });

  it("hotBytes - at the quota ingest is refused retryably, and passes once the node reports less", () => {
    const q = { hotBytes: 1_000 };
    const full = withUsage(NO_INGEST_STATE, new Map([["a", { shards: new Map([["t/0", { bytes: 700, symbols: 1 }], ["t/1", { bytes: 500, symbols: 1 }]]) }]]));
    const r = precheck(full, q, "a", 0);
    expect(r).toMatchObject({ quota: "hotBytes", retryable: true });
    expect(r!.message).toMatch(/quota hotBytes = 1000 is reached across the cluster \(its hot sets hold 1200 bytes: 1200 on this node's shards, 0 on other nodes' as they last reported\).*nothing already acknowledged was dropped.*raise quotas.hotBytes/);
    expect(precheck(withUsage(full, new Map([["a", { shards: new Map([["t/0", { bytes: 900, symbols: 1 }]]) }]])), q, "a", 0)).toBeUndefined();
  });

  it("symbols - new symbols past the quota are refused (not retryable); known ones still pass", () => {
    const q = { symbols: 3 };
    let s = withUsage(NO_INGEST_STATE, new Map([["a", { shards: new Map([["t/0", { bytes: 0, symbols: 1 }]]), symbols: new Set([symbolKey("t", "X")]) }]]));
    const c = charge(s, q, "a", "t", 2, 1, ["X", "Y", "Z"], 0);
    expect(c.ok).toBe(true);
    s = c.state;
    const over = charge(s, q, "a", "t", 2, 1, ["X", "W"], 0);
    expect(over.ok).toBe(false);
    if (!over.ok) {
      expect(over.refusal).toMatchObject({ quota: "symbols", retryable: false });
      expect(over.refusal.message).toMatch(/quota symbols = 3 would be passed: the tenant has 3 symbols across the cluster \(1 in its shards, 2 admitted and not yet reported by their shard\) and this batch brings 1 new one\(s\) to table t \(e.g. "W"\).*raise quotas.symbols/);
    }
    expect(charge(s, q, "a", "t", 5, 1, ["X", "Y", "Z"], 0).ok).toBe(true);
    // The same symbol in another table is another series.
    expect(charge(s, q, "a", "u", 1, 1, ["X"], 0).ok).toBe(false);
  });
});
