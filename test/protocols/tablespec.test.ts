import { describe, expect, it } from "vitest";
import { DEFAULT_CLUSTER_SPEC, SpecError, lagSloOf, parseClusterSpec, parseTableSpec, parseTenantSpec } from "../../protocols/tablespec.js";

describe("tablespec - validation", () => {
  it("defaults - a minimal table gets symbol/time columns, shards and retention", () => {
    const t = parseTableSpec({ name: "trades", columns: [{ name: "price", type: "float64" }] });
    expect(t).toMatchObject({ symbolColumn: "sym", timeColumn: "ts", shards: 4, version: 1, retention: { hotSeconds: 3600 } });
    expect(t.columns[0]!.allowNonFinite).toBe(false);
  });

  it("default spec - tenant default has trades and quotes", () => {
    expect(DEFAULT_CLUSTER_SPEC.tenants[0]!.tables.map((t) => [t.name, t.columns.map((c) => c.name)])).toEqual([
      ["trades", ["price", "size"]],
      ["quotes", ["bid", "ask", "bid_size", "ask_size"]],
    ]);
  });

  it.each([
    [{ name: "Trades", columns: [{ name: "p", type: "float64" }] }, /table name must be lowercase/],
    [{ name: "t", columns: [{ name: "p", type: "string" }] }, /Expected "float64" \| "float32"/],
    [{ name: "t", columns: [] }, /length of at least 1/],
    [{ name: "t", columns: [{ name: "p", type: "float64" }], extra: 1 }, /excess property/],
    [{ name: "t", columns: [{ name: "p", type: "float64" }, { name: "p", type: "int32" }] }, /column "p" is declared twice/],
    [{ name: "t", columns: [{ name: "sym", type: "float64" }] }, /clashes with the symbol\/time column/],
    [{ name: "t", columns: [{ name: "_lsn", type: "float64" }] }, /column name must be/],
    [{ name: "t", columns: [{ name: "q", type: "int32", allowNonFinite: true }] }, /only float columns can hold NaN/],
    [{ name: "t", shards: 0, columns: [{ name: "p", type: "float64" }] }, /shards/],
    [{ name: "t", snapshot: { walBytes: 0 }, columns: [{ name: "p", type: "float64" }] }, /between 1 and .*\n?.*\["snapshot"\]\["walBytes"\]/],
  ])("bad spec %# - rejected with the path and the rule", (input, message) => {
    expect(() => parseTableSpec(input, "x")).toThrow(SpecError);
    expect(() => parseTableSpec(input, "x")).toThrow(message);
  });

  it.each(["ctl", "events", "node"])("tenant name %s - refused: px.%s.* is a system subject a tenant would be granted", (name) => {
    expect(() => parseTenantSpec({ name, tables: [] })).toThrow(new RegExp(`tenant name must not be ctl, events, node: those are Proxist's own subjects`));
    // Names that only start like one stay valid.
    expect(parseTenantSpec({ name: `${name}x`, tables: [] }).name).toBe(`${name}x`);
  });

  it("cluster - duplicate tenants and tables are rejected", () => {
    expect(() => parseClusterSpec({ tenants: [{ name: "a", tables: [] }, { name: "a", tables: [] }] })).toThrow(/tenant "a" is declared twice/);
    const t = { name: "x", columns: [{ name: "p", type: "float64" }] };
    expect(() => parseClusterSpec({ tenants: [{ name: "a", tables: [t, t] }] })).toThrow(/table "x" is declared twice/);
  });
});

describe("tablespec - lag SLO", () => {
  const cols = [{ name: "p", type: "float64" }];
  it("lagSlo - defaults when absent (on, 60 s / 100,000 records, 30 s dwell), given fields win, round-trips", () => {
    expect(lagSloOf(parseTableSpec({ name: "t", columns: cols }))).toEqual({ seconds: 60, records: 100_000, dwellSeconds: 30, enabled: true });
    const t = parseTableSpec({ name: "t", columns: cols, lagSlo: { seconds: 5, enabled: false } });
    expect(lagSloOf(t)).toEqual({ seconds: 5, records: 100_000, dwellSeconds: 30, enabled: false });
    expect(parseTableSpec(JSON.parse(JSON.stringify(t)))).toEqual(t);
  });

  it.each([
    [{ seconds: 0 }, /between 1 and 86400\s+at \["lagSlo"\]\["seconds"\]/],
    [{ records: 1.5 }, /\["lagSlo"\]\["records"\]/],
    [{ dwellSeconds: 7200 }, /between 1 and 3600\s+at \["lagSlo"\]\["dwellSeconds"\]/],
    [{ enabled: "yes" }, /\["lagSlo"\]\["enabled"\]/],
    [{ minutes: 1 }, /excess property|minutes/],
  ])("bad lagSlo %# - rejected naming the field, the rule and the fix", (lagSlo, message) => {
    expect(() => parseTableSpec({ name: "t", columns: cols, lagSlo }, "x")).toThrow(SpecError);
    expect(() => parseTableSpec({ name: "t", columns: cols, lagSlo }, "x")).toThrow(message);
    expect(() => parseTableSpec({ name: "t", columns: cols, lagSlo }, "x")).toThrow(/Fix the spec and apply it again/);
  });
});

describe("tablespec - tenant quotas", () => {
  const table = { name: "t", columns: [{ name: "p", type: "float64" }] };
  it("quotas - kept as given, absent ones off, and they round-trip as JSON", () => {
    const spec = parseClusterSpec({ tenants: [{ name: "a", tables: [table], quotas: { ingestTicksPerSecond: 1000, concurrentQueries: 4 } }] });
    expect(spec.tenants[0]!.quotas).toEqual({ ingestTicksPerSecond: 1000, concurrentQueries: 4 });
    expect(parseTenantSpec(JSON.parse(JSON.stringify(spec.tenants[0])))).toEqual(spec.tenants[0]);
    expect(parseClusterSpec({ tenants: [{ name: "b", tables: [table] }] }).tenants[0]!.quotas).toBeUndefined();
  });

  it.each([
    [{ concurrentQueries: 0 }, /quotas.*concurrentQueries/],
    [{ ingestTicksPerSecond: 1.5 }, /quotas.*ingestTicksPerSecond/],
    [{ hotBytes: -1 }, /quotas.*hotBytes/],
    [{ resultRow: 10 }, /excess property|resultRow/],
  ])("bad quota %# - rejected naming the quota and the rule", (quotas, message) => {
    expect(() => parseClusterSpec({ tenants: [{ name: "a", tables: [table], quotas }] })).toThrow(SpecError);
    expect(() => parseClusterSpec({ tenants: [{ name: "a", tables: [table], quotas }] })).toThrow(message);
  });
});
