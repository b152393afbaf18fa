// Feeds - FeedSpec in a tenant spec (px_config, `pxctl apply`): parsed with
// the tenant, diffed as feed.add / feed.change / feed.remove, and a feed whose
// query does not run on the tenant's tables is refused by name before
// anything is written (apply and --dry-run alike).
import { describe, expect, it } from "vitest";
import { diffClusterSpec, formatDiff, handleControl } from "../../src/control/index.js";
import type { ControlBackend, StoredTenant } from "../../src/control/index.js";
import { parseClusterSpec, parseTenantSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec } from "../../protocols/tablespec.js";

const trades = { name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] };
const vwap = { name: "vwap_1m", query: { op: "rolling", table: "trades", window: "1m", aggregates: [{ fn: "vwap", column: "price" }] } };

function backend(tenants: Map<string, StoredTenant>, written: ClusterSpec[]): ControlBackend {
  return {
    tenants: async () => tenants,
    apply: async (spec) => {
      written.push(spec);
      return new Map(spec.tenants.map((t) => [t.name, 2]));
    },
    readState: async () => {
      throw new Error("not used");
    },
  };
}

describe("feeds - FeedSpec in px_config", () => {
  it("spec - feeds parse with the tenant; a name declared twice or a bad name is refused", () => {
    const s = parseClusterSpec({ tenants: [{ name: "acme", tables: [trades], feeds: [vwap] }] });
    expect(s.tenants[0]!.feeds).toEqual([vwap]);
    expect(parseClusterSpec({ tenants: [{ name: "acme", tables: [trades] }] }).tenants[0]!.feeds).toBeUndefined();
    expect(() => parseClusterSpec({ tenants: [{ name: "acme", tables: [trades], feeds: [vwap, vwap] }] })).toThrow(/feed "vwap_1m" is declared twice/);
    expect(() => parseClusterSpec({ tenants: [{ name: "acme", tables: [trades], feeds: [{ ...vwap, name: "VWAP" }] }] })).toThrow(/feed name must be lowercase/);
  });

  it("spec - diff shows added, changed and removed feeds", () => {
    const current = new Map([["acme", parseTenantSpec({ name: "acme", tables: [trades], feeds: [vwap, { name: "old", query: { op: "lastBy", table: "trades" } }] })]]);
    const desired = parseClusterSpec({ tenants: [{ name: "acme", tables: [trades], feeds: [{ ...vwap, query: { ...vwap.query, window: "5m" } }, { name: "last", query: { op: "lastBy", table: "trades" } }] }] });
    const lines = formatDiff(diffClusterSpec(current, desired));
    expect(lines).toContain("+ feed acme.last");
    expect(lines).toContain("- feed acme.old");
    expect(lines.some((l) => l.startsWith('~ feed acme.vwap_1m: query.window "1m" -> "5m"'))).toBe(true);
    expect(lines.some((l) => l.startsWith("! tenant acme feed vwap_1m: a changed definition cannot continue the stream"))).toBe(true);
  });

  it("apply - a feed on an unknown table or column, or with window 0, is refused and nothing is written", async () => {
    const written: ClusterSpec[] = [];
    const b = backend(new Map([["acme", { spec: parseTenantSpec({ name: "acme", tables: [trades] }), revision: 1 }]]), written);
    const bad = [
      { name: "a", query: { op: "range", table: "quotes" } },
      { name: "b", query: { op: "range", table: "trades", columns: ["px"] } },
      { name: "c", query: { op: "rolling", table: "trades", window: 0, aggregates: [{ fn: "count" }] } },
    ];
    for (const dryRun of [true, false]) {
      await expect(handleControl("apply", { spec: { tenants: [{ name: "acme", tables: [trades], feeds: bad }] }, dryRun }, b)).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/^apply refused, nothing was changed:\n {2}tenant acme feed a: tenant acme has no table quotes \(its tables: trades\)\n {2}tenant acme feed b: .*no column "px".*\n {2}tenant acme feed c: .*window/),
      });
    }
    expect(written).toEqual([]);
    await expect(handleControl("apply", { spec: { tenants: [{ name: "acme", tables: [trades], feeds: [vwap] }] } }, b)).resolves.toMatchObject({ applied: true });
    expect(written[0]!.tenants[0]!.feeds).toEqual([vwap]);
  });
});
