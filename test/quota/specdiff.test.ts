// Quotas in `pxctl apply`'s diff: a quota-only change is a change (the tenant is
// written) and reads as one line per quota.
import { describe, expect, it } from "vitest";
import { diffClusterSpec, formatDiff } from "../../src/control/index.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";

const table = { name: "t", columns: [{ name: "p", type: "float64" }] };

describe("quota - spec diff", () => {
  it("diff - changing, adding and removing quotas is a tenant change, one line", () => {
    const before = parseClusterSpec({ tenants: [{ name: "a", tables: [table], quotas: { concurrentQueries: 4, symbols: 10 } }] });
    const after = parseClusterSpec({ tenants: [{ name: "a", tables: [table], quotas: { concurrentQueries: 8, resultRows: 1000 } }] });
    const d = diffClusterSpec(new Map([["a", before.tenants[0]!]]), after);
    expect(d.changedTenants).toEqual(["a"]);
    expect(formatDiff(d)).toEqual(["~ tenant a: quotas.concurrentQueries 4 -> 8; quotas.resultRows (none) -> 1000; quotas.symbols 10 -> (none)"]);
    expect(diffClusterSpec(new Map([["a", after.tenants[0]!]]), after).changedTenants).toEqual([]);
  });
});
