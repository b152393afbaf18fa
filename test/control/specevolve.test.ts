import { describe, expect, it } from "vitest";
import { evolveClusterSpec, evolveTable, handleControl } from "../../src/control/index.js";
import type { ControlBackend, StoredTenant } from "../../src/control/index.js";
import { columnDefault, parseTableSpec, parseTenantSpec, specAtVersion } from "../../protocols/tablespec.js";
import type { ClusterSpec, TableSpec } from "../../protocols/tablespec.js";

const base = {
  name: "trades",
  shards: 2,
  columns: [
    { name: "price", type: "float64" },
    { name: "size", type: "int64" },
  ],
};
const v1 = parseTableSpec(base, "acme");
const table = (patch: Record<string, unknown>): TableSpec => parseTableSpec({ ...base, ...patch }, "acme");
const refusals = (next: TableSpec, prev: TableSpec = v1): string[] => evolveTable("acme", prev, next).refused;

describe("spec evolution rules", () => {
  it("specevolve - adding a column at the end with a default and a version bump is live; the column is stamped with its version", () => {
    const next = table({ version: 2, columns: [...base.columns, { name: "venue", type: "int32", default: 7 }] });
    const e = evolveTable("acme", v1, next);
    expect(e.refused).toEqual([]);
    expect(e.spec.columns.map((c) => [c.name, c.since])).toEqual([
      ["price", undefined],
      ["size", undefined],
      ["venue", 2],
    ]);
    // The stamp survives the next apply (the file has no "since") and version 1 reads the old columns.
    const again = evolveTable("acme", e.spec, table({ version: 3, columns: [...base.columns, { name: "venue", type: "int32", default: 7 }, { name: "ok", type: "bool", default: true }] }));
    expect(again.refused).toEqual([]);
    expect(again.spec.columns.map((c) => c.since)).toEqual([undefined, undefined, 2, 3]);
    expect(specAtVersion(again.spec, 1).columns.map((c) => c.name)).toEqual(["price", "size"]);
    expect(specAtVersion(again.spec, 2).columns.map((c) => c.name)).toEqual(["price", "size", "venue"]);
    expect(specAtVersion(again.spec, 2)).toBe(specAtVersion(again.spec, 2));
    expect(again.spec.columns.map(columnDefault)).toEqual([0, 0, 7, 1]);
  });

  it("specevolve - retention, maxBatchRows and allowNonFinite change live", () => {
    const next = parseTableSpec({ ...base, maxBatchRows: 10, retention: { hotSeconds: 60 }, columns: [{ name: "price", type: "float64", allowNonFinite: true }, base.columns[1]] }, "acme");
    expect(refusals(next)).toEqual([]);
  });

  it("specevolve - every refused change names itself and the way to do it", () => {
    const NEW = "create a new table (another name) with the spec you want and write to it";
    expect(refusals(table({ version: 2, columns: [base.columns[0]] }))).toEqual([`tenant acme table trades: removing column size is refused (${NEW})`]);
    expect(refusals(table({ columns: [base.columns[0], { name: "size", type: "float64" }] }))).toEqual([`tenant acme table trades: retyping column size from int64 to float64 is refused (${NEW})`]);
    expect(refusals(table({ columns: [base.columns[0], { name: "qty", type: "int64" }] }))).toEqual([`tenant acme table trades: renaming column size to qty is refused (${NEW})`]);
    expect(refusals(table({ columns: [base.columns[1], base.columns[0]] }))).toEqual([
      `tenant acme table trades: moving column price from position 1 to 2 is refused (columns keep their order; add new columns at the end, or ${NEW})`,
      `tenant acme table trades: moving column size from position 2 to 1 is refused (columns keep their order; add new columns at the end, or ${NEW})`,
    ]);
    expect(refusals(table({ version: 2, columns: [base.columns[0], { name: "venue", type: "int32", default: 0 }, base.columns[1]] }))).toEqual([
      `tenant acme table trades: moving column size from position 2 to 3 is refused (columns keep their order; add new columns at the end, or ${NEW})`,
    ]);
    expect(refusals(table({ columns: [base.columns[0], { name: "size", type: "int64", default: 5 }] }))).toEqual([
      `tenant acme table trades: changing the default of column size from null to 5 is refused (rows already written read as the old default; keep it, or ${NEW})`,
    ]);
    expect(refusals(table({ shards: 4 }))).toEqual([
      `tenant acme table trades: changing the shard count from 2 to 4 is refused (symbols would route to other buckets and resharding does not exist yet; ${NEW})`,
    ]);
    expect(refusals(table({ version: 1 }), table({ version: 3 }))).toEqual([
      "tenant acme table trades: lowering the version from 3 to 1 is refused (records and rows of version 3 exist; keep version 3 or raise it)",
    ]);
    expect(refusals(table({ symbolColumn: "ticker" }))).toEqual([`tenant acme table trades: renaming the symbol column sym to ticker is refused (${NEW})`]);
    expect(refusals(table({ timeColumn: "time" }))).toEqual([`tenant acme table trades: renaming the time column ts to time is refused (${NEW})`]);
    expect(refusals(table({ version: 2, columns: [...base.columns, { name: "venue", type: "int32" }] }))).toEqual([
      'tenant acme table trades: adding column venue without a default is refused (rows written before it need a value: give it "default")',
    ]);
    expect(refusals(table({ columns: [...base.columns, { name: "venue", type: "int32", default: 0 }] }))).toEqual([
      "tenant acme table trades: adding column(s) venue without raising the version is refused (set version to 2 so records of either version can be told apart)",
    ]);
  });

  it("specevolve - renaming a table (one removed, one added with the same columns) is refused; adding a table is not", () => {
    const current = new Map([["acme", parseTenantSpec({ name: "acme", tables: [base] })]]);
    const renamed: ClusterSpec = { tenants: [parseTenantSpec({ name: "acme", tables: [{ ...base, name: "fills" }] })] };
    expect(evolveClusterSpec(current, renamed).refused).toEqual([
      "tenant acme: renaming table trades to fills is refused (a table's WAL, snapshots and ClickHouse table are keyed by its name; add fills in one apply and remove trades in a later one)",
    ]);
    const added: ClusterSpec = { tenants: [parseTenantSpec({ name: "acme", tables: [base, { ...base, name: "fills" }] })] };
    expect(evolveClusterSpec(current, added).refused).toEqual([]);
  });

  it("specevolve - a default must fit its column type", () => {
    expect(() => table({ columns: [...base.columns, { name: "ok", type: "bool", default: 1 }] })).toThrow(/column "ok" has default 1, but a bool column's default is true or false; fix the default/);
    expect(() => table({ columns: [...base.columns, { name: "n", type: "int32", default: 1.5 }] })).toThrow(/an int32 column's default is an integer within 32 bits/);
    expect(() => table({ columns: [...base.columns, { name: "x", type: "float64", default: true }] })).toThrow(/a float64 column's default is a finite number/);
  });

  it("specevolve - apply and --dry-run both refuse, and nothing is written", async () => {
    const tenants = new Map<string, StoredTenant>([["acme", { spec: parseTenantSpec({ name: "acme", tables: [base] }), revision: 3 }]]);
    const written: ClusterSpec[] = [];
    const b: ControlBackend = {
      tenants: async () => tenants,
      apply: async (spec) => {
        written.push(spec);
        return new Map([["acme", 4]]);
      },
      readState: async () => {
        throw new Error("not used");
      },
    };
    const retyped = { tenants: [{ name: "acme", tables: [{ ...base, columns: [base.columns[0], { name: "size", type: "float64" }] }] }] };
    for (const dryRun of [true, false]) {
      await expect(handleControl("apply", { spec: retyped, dryRun }, b)).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/^apply refused, nothing was changed:\n {2}tenant acme table trades: retyping column size from int64 to float64 is refused/),
      });
    }
    expect(written).toEqual([]);
    // The live change is written with the new column stamped.
    const added = { tenants: [{ name: "acme", tables: [{ ...base, version: 2, columns: [...base.columns, { name: "venue", type: "int32", default: 7 }] }] }] };
    await expect(handleControl("apply", { spec: added }, b)).resolves.toMatchObject({ applied: true });
    expect(written[0]!.tenants[0]!.tables[0]!.columns[2]).toEqual({ name: "venue", type: "int32", allowNonFinite: false, default: 7, since: 2 });
  });
});
