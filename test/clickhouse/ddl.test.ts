import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { addColumnSql, createDatabaseSql, createTableSql, databaseName, partitionDayOf, qualifiedTable, quoteIdent, tableColumns } from "../../src/clickhouse/index.js";

const spec = parseTableSpec({
  name: "quotes",
  symbolColumn: "ticker",
  timeColumn: "time",
  columns: [
    { name: "bid", type: "float64" },
    { name: "ratio", type: "float32" },
    { name: "size", type: "int64" },
    { name: "lots", type: "int32" },
    { name: "firm", type: "bool" },
  ],
});

describe("ddl - table text", () => {
  it("ddl - maps value types and appends the bookkeeping columns in order", () => {
    expect(tableColumns(spec).map((c) => `${c.name}:${c.type}`)).toEqual([
      "ticker:String",
      "time:Int64",
      "bid:Float64",
      "ratio:Float32",
      "size:Int64",
      "lots:Int32",
      "firm:UInt8",
      "_lsn:UInt64",
      "_row:UInt32",
      "_shard:UInt16",
    ]);
  });

  it("ddl - CREATE TABLE is idempotent, partitions by UTC day and sorts by (symbol, time, _lsn, _row)", () => {
    expect(createTableSql("acme", spec)).toBe(
      [
        "CREATE TABLE IF NOT EXISTS `px_acme`.`quotes` (",
        "  `ticker` String,",
        "  `time` Int64,",
        "  `bid` Float64,",
        "  `ratio` Float32,",
        "  `size` Int64,",
        "  `lots` Int32,",
        "  `firm` UInt8,",
        "  `_lsn` UInt64,",
        "  `_row` UInt32,",
        "  `_shard` UInt16",
        ")",
        "ENGINE = MergeTree",
        "PARTITION BY toDate(toDateTime(intDiv(`time`, 1000000), 'UTC'))",
        "ORDER BY (`ticker`, `time`, `_lsn`, `_row`)",
      ].join("\n"),
    );
    expect(createDatabaseSql("acme")).toBe("CREATE DATABASE IF NOT EXISTS `px_acme`");
  });

  it("ddl - identifiers are validated before they reach SQL", () => {
    expect(quoteIdent("_lsn")).toBe("`_lsn`");
    expect(() => quoteIdent("a`; DROP TABLE x")).toThrow(/identifier/);
    expect(() => quoteIdent("1abc")).toThrow(/identifier/);
    expect(() => databaseName("Acme")).toThrow(/tenant "Acme"/);
    expect(() => qualifiedTable("acme", "x y")).toThrow(/identifier/);
    expect(databaseName("acme_2")).toBe("px_acme_2");
  });

  it("ddl - partitionDayOf is the UTC day, also before 1970", () => {
    expect(partitionDayOf(Date.UTC(2023, 10, 14, 23, 59, 59, 999) * 1000 + 999)).toBe(19_675);
    expect(partitionDayOf(Date.UTC(2023, 10, 15) * 1000)).toBe(19_676);
    expect(partitionDayOf(-1)).toBe(-1);
  });

  it("ddl - a column added by a spec change carries its default for older rows", () => {
    const v2 = parseTableSpec({ name: "t", version: 2, columns: [{ name: "p", type: "float64" }, { name: "venue", type: "int32", default: 7, since: 2 }, { name: "ok", type: "bool", default: true, since: 2 }, { name: "q", type: "float64" }] });
    expect(addColumnSql("acme", v2, "venue")).toBe("ALTER TABLE `px_acme`.`t` ADD COLUMN `venue` Int32 DEFAULT 7");
    expect(addColumnSql("acme", v2, "ok")).toBe("ALTER TABLE `px_acme`.`t` ADD COLUMN `ok` UInt8 DEFAULT 1");
    expect(addColumnSql("acme", v2, "q")).toBe("ALTER TABLE `px_acme`.`t` ADD COLUMN `q` Float64");
  });
});
