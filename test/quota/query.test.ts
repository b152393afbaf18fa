// Query quotas as bookkeeping: concurrency per tenant, a query's memory and
// result rows; each refusal is QueryError RESOURCE_EXHAUSTED naming the quota.
import { describe, expect, it } from "vitest";
import { QueryError } from "../../protocols/errors.js";
import { QueryQuotas } from "../../src/quota/index.js";
import type { TenantQuotas } from "../../protocols/tablespec.js";

const quotas = (by: Record<string, TenantQuotas>) => new QueryQuotas((t) => by[t] ?? {});

describe("quota - queries", () => {
  it("concurrentQueries - the next query of a tenant at its quota is refused; another tenant's is not; release frees a slot", () => {
    const q = quotas({ a: { concurrentQueries: 2 } });
    const one = q.begin("a");
    q.begin("a");
    let err: unknown;
    try {
      q.begin("a");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QueryError);
    expect(err).toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    expect((err as Error).message).toMatch(/tenant a: quota concurrentQueries = 2 is reached across the cluster \(2 queries of the tenant run now: 2 on this node, 0 on other nodes as they last reported\); this query needs one more.*raise quotas.concurrentQueries in tenant a's spec/);
    expect(() => q.begin("b")).not.toThrow();
    one.release();
    one.release(); // twice is once
    expect(q.runningOf("a")).toBe(1);
    expect(() => q.begin("a")).not.toThrow();
  });

  it("queryMemoryBytes - a hold past the quota throws and is not counted", () => {
    const b = quotas({ a: { queryMemoryBytes: 1_000 } }).begin("a");
    b.hold(600, "loading 10 rows");
    expect(() => b.hold(600, "loading 10 rows")).toThrow(/quota queryMemoryBytes = 1000 would be passed: the query holds 600 bytes and loading 10 rows needs 600 more/);
    expect(b.heldBytes).toBe(600);
  });

  it("resultRows - more rows than the quota throw; as many pass", () => {
    const b = quotas({ a: { resultRows: 10 } }).begin("a");
    expect(() => b.resultRows(10)).not.toThrow();
    expect(() => b.resultRows(11)).toThrow(/quota resultRows = 10 would be passed: the result has 11 rows/);
  });

  it("no quotas - nothing is refused", () => {
    const b = quotas({}).begin("a");
    b.hold(Number.MAX_SAFE_INTEGER, "x");
    b.resultRows(1e12);
  });
});
