// The query description: JSON validation (errors name the field, the rule and
// the fix), defaults, durations, and the protobuf round trip.
import { describe, expect, it } from "vitest";
import { decodeQuery, encodeQuery, parseDuration, parseQuery, queryFromProto, queryToProto } from "../../protocols/query.js";
import { QueryError } from "../../protocols/errors.js";

const examples: Record<string, unknown>[] = [
  { op: "range", table: "trades", symbols: ["AAPL", "MSFT"], t0: 1_700_000_000_000_000, t1: 1_700_000_360_000_000, columns: ["price"], limit: 100, order: "desc" },
  { op: "lastBy", table: "trades", at: 1_700_000_000_000_000 },
  { op: "firstBy", table: "quotes", t0: 1_700_000_000_000_000, t1: 1_700_000_060_000_000, symbols: ["AAPL"] },
  { op: "asof", table: "trades", t0: 1, t1: 2, right: { table: "quotes", columns: ["bid", "ask"] }, direction: "nearest", tolerance: "500ms" },
  { op: "windowJoin", table: "trades", t0: 1, t1: 2, right: { table: "quotes" }, before: "1s", after: 0, aggregates: [{ fn: "avg", column: "bid" }, { fn: "count" }] },
  { op: "rolling", table: "trades", window: "5m", aggregates: [{ fn: "vwap", column: "price" }, { fn: "ema", column: "price", alpha: 0.1, as: "ema10" }] },
  { op: "rolling", table: "trades", rows: 20, aggregates: [{ fn: "stddev", column: "price" }] },
  { op: "bars", table: "trades", t0: 0, t1: 86_400_000_000, bucket: "1m", fill: "previous" },
  { op: "groupBy", table: "trades", by: ["symbol", "bucket"], bucket: "1h", aggregates: [{ fn: "sum", column: "size" }, { fn: "last", column: "price" }] },
];

describe("query - JSON form", () => {
  it("query - range is the default operator and t0/t1 default to everything", () => {
    const q = parseQuery({ table: "trades" });
    expect(q.op).toBe("range");
    expect(q.t0).toBe(0);
    expect(q.t1).toBeGreaterThan(Date.UTC(2100, 0, 1) * 1000);
  });

  it("query - every example parses", () => {
    for (const e of examples) expect(() => parseQuery(e), JSON.stringify(e)).not.toThrow();
  });

  it("query - durations take units or microseconds", () => {
    expect(parseDuration("d", "5m", 1, 1e12)).toBe(300_000_000);
    expect(parseDuration("d", "250ms", 1, 1e12)).toBe(250_000);
    expect(parseDuration("d", "1d", 1, 1e12)).toBe(86_400_000_000);
    expect(parseDuration("d", 42, 1, 1e12)).toBe(42);
    expect(() => parseDuration("bucket", "5 minutes", 1, 1e12)).toThrow(/bucket.*number with a unit/);
  });

  it("query - errors name the field, the rule and the fix", () => {
    const bad: [unknown, RegExp][] = [
      [{ op: "scan", table: "t" }, /field op.*use one of range/],
      [{ op: "range", table: "Trades" }, /table/],
      [{ op: "range", table: "t", t0: 5, t1: 1 }, /t1 1 is before t0 5.*swap/],
      [{ op: "range", table: "t", bogus: 1 }, /bogus/],
      [{ op: "rolling", table: "t", aggregates: [{ fn: "sum", column: "x" }] }, /window\/rows: give exactly one/],
      [{ op: "rolling", table: "t", window: "1m", aggregates: [{ fn: "first", column: "x" }] }, /aggregates\[0\].*does not support fn "first"/],
      [{ op: "rolling", table: "t", window: "1m", aggregates: [{ fn: "ema", column: "x" }] }, /ema needs "alpha"/],
      [{ op: "groupBy", table: "t", by: ["bucket"], aggregates: [{ fn: "count" }] }, /by "bucket" needs "bucket"/],
      [{ op: "bars", table: "t", bucket: "1us" }, /bucket.*out of range/],
      [{ op: "groupBy", table: "t", by: [], aggregates: [{ fn: "sum" }] }, /needs "column"/],
      [{ op: "range", table: "t", symbols: ["A", "A"] }, /listed twice/],
      [[1, 2], /JSON object/],
    ];
    for (const [q, re] of bad) {
      let err: unknown;
      try {
        parseQuery(q);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(q)).toBeInstanceOf(QueryError);
      expect((err as QueryError).code, JSON.stringify(q)).toBe("INVALID_ARGUMENT");
      expect((err as Error).message, JSON.stringify(q)).toMatch(re);
    }
  });
});

describe("query - protobuf form", () => {
  it("query - JSON -> proto -> JSON keeps the meaning of every example", () => {
    for (const e of examples) {
      const back = queryFromProto(queryToProto(e));
      expect(parseQuery(back), JSON.stringify(e)).toEqual(parseQuery(e));
      expect(parseQuery(decodeQuery(encodeQuery(e)))).toEqual(parseQuery(e));
    }
  });

  it("query - consistency and per-table minLsn survive the protobuf form; both LSN forms at once are refused", () => {
    for (const e of [
      { op: "asof", table: "trades", right: { table: "quotes" }, consistency: "complete", minLsn: { trades: 12, quotes: 7 } },
      { op: "lastBy", table: "trades", consistency: "available", minLsn: 5 },
      { op: "range", table: "trades" },
    ]) {
      expect(parseQuery(decodeQuery(encodeQuery(e))), JSON.stringify(e)).toEqual(parseQuery(e));
    }
    expect(parseQuery(decodeQuery(encodeQuery({ op: "range", table: "trades", consistency: "complete" }))).consistency).toBe("complete");
    const both = queryToProto({ op: "range", table: "trades", minLsn: 5 });
    both.minLsnByTable = { trades: 7n };
    expect(() => queryFromProto(both)).toThrow(/min_lsn and min_lsn_by_table are both set; use min_lsn .* or min_lsn_by_table/);
  });

  it("query - an unknown version or garbage bytes are rejected with a fix", () => {
    const p = queryToProto({ table: "trades" });
    p.version = 9;
    expect(() => queryFromProto(p)).toThrow(/version 9 is not supported/);
    expect(() => decodeQuery(Uint8Array.of(0xff, 0xff, 0xff))).toThrow(/not a proxist.v1.Query/);
  });
});
