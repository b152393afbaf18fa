// Every SQL form against the JSON query it must compile to, and every refused
// form against its error (the construct named, the alternative given).
import { describe, expect, it } from "vitest";
import { QueryError } from "../../protocols/errors.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { compileSql, looksLikeSql } from "../../src/sql/index.js";

const T = Date.UTC(2024, 0, 2, 14, 30) * 1000;
const specs = new Map([
  ["trades", parseTableSpec({ name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] })],
  ["quotes", parseTableSpec({ name: "quotes", columns: [{ name: "bid", type: "float64" }, { name: "ask", type: "float64" }] })],
  ["fx", parseTableSpec({ name: "fx", symbolColumn: "pair", timeColumn: "stamp", columns: [{ name: "rate", type: "float64" }] })],
]);
const q = (sql: string) => compileSql(sql, (t) => specs.get(t.split(".").pop()!)).query;

const FORMS: [string, string, Record<string, unknown>][] = [
  ["select all", "SELECT * FROM trades", { op: "range", table: "trades" }],
  [
    "range with symbols, ISO and µs bounds, desc, limit",
    "SELECT sym, ts, price FROM trades WHERE sym IN ('AAPL', 'MSFT') AND ts >= '2024-01-02T14:30:00Z' AND ts < 1704205900000000 ORDER BY ts DESC LIMIT 10",
    { op: "range", table: "trades", symbols: ["AAPL", "MSFT"], t0: T, t1: 1704205900000000, columns: ["price"], order: "desc", limit: 10 },
  ],
  ["sym = and reversed comparison", "SELECT * FROM trades WHERE sym = 'A' AND '2024-01-02T14:30:00Z' <= ts", { op: "range", table: "trades", symbols: ["A"], t0: T }],
  ["ts > and <= are exclusive/inclusive", "SELECT * FROM trades WHERE ts > 10 AND ts <= 20", { op: "range", table: "trades", t0: 11, t1: 21 }],
  ["BETWEEN is inclusive", "SELECT * FROM trades WHERE ts BETWEEN '2024-01-02T14:30:00.000001Z' AND 1704205800000009", { op: "range", table: "trades", t0: T + 1, t1: T + 10 }],
  ["ts = one instant", "SELECT * FROM trades WHERE ts = 5", { op: "range", table: "trades", t0: 5, t1: 6 }],
  ["date literal and zone offset", "SELECT * FROM trades WHERE ts >= '2024-01-02' AND ts < '2024-01-02T15:30:00+01:00'", { op: "range", table: "trades", t0: Date.UTC(2024, 0, 2) * 1000, t1: T }],
  ["TIMESTAMP literal", "SELECT * FROM trades WHERE ts >= TIMESTAMP '2024-01-02 14:30:00'", { op: "range", table: "trades", t0: T }],
  ["sym and ts only", "SELECT sym, ts FROM trades", { op: "range", table: "trades", columns: [] }],
  ["ORDER BY sym, ts", "SELECT * FROM trades ORDER BY sym, ts", { op: "range", table: "trades", sort: "symbol" }],
  ["ORDER BY sym DESC, ts DESC LIMIT", "SELECT * FROM trades ORDER BY sym DESC, ts DESC LIMIT 5", { op: "range", table: "trades", sort: "symbol", order: "desc", limit: 5 }],
  ["tenant-qualified table", "SELECT * FROM acme.trades", { op: "range", table: "acme.trades" }],
  ["quoted names and comments", `SELECT "price" FROM trades -- the prices\n /* all */`, { op: "range", table: "trades", columns: ["price"] }],
  ["the table's own symbol and time columns", "SELECT pair, stamp, rate FROM fx WHERE pair IN ('EURUSD') AND stamp >= 5", { op: "range", table: "fx", symbols: ["EURUSD"], t0: 5, columns: ["rate"] }],
  ["LATEST ON", "SELECT * FROM trades WHERE sym IN ('A') LATEST ON ts PARTITION BY sym", { op: "lastBy", table: "trades", symbols: ["A"] }],
  ["LATEST ON with a time bound", "SELECT sym, ts, price FROM trades WHERE ts < '2024-01-02T14:30:00Z' LATEST ON ts PARTITION BY sym", { op: "lastBy", table: "trades", t1: T, columns: ["price"] }],
  ["LATEST BY ... AT", "SELECT * FROM trades LATEST BY sym AT '2024-01-02T14:30:00.5Z'", { op: "lastBy", table: "trades", at: T + 500_000 }],
  ["EARLIEST BY ... AT (first-by)", "SELECT * FROM quotes EARLIEST BY sym AT 100", { op: "firstBy", table: "quotes", at: 100 }],
  ["LATEST ON custom columns", "SELECT * FROM fx LATEST ON stamp PARTITION BY pair", { op: "lastBy", table: "fx" }],
  [
    "ASOF JOIN with TOLERANCE",
    "SELECT t.sym, t.ts, t.price, q.bid FROM trades t ASOF JOIN quotes q ON (sym) TOLERANCE '500ms' WHERE t.ts >= 1 AND t.sym IN ('A')",
    { op: "asof", table: "trades", symbols: ["A"], t0: 1, columns: ["price"], right: { table: "quotes", columns: ["bid"] }, tolerance: "500ms" },
  ],
  ["ASOF JOIN all columns, ON a = b", "SELECT * FROM trades t ASOF JOIN quotes q ON t.sym = q.sym", { op: "asof", table: "trades", right: { table: "quotes" } }],
  ["ASOF JOIN USING, unqualified right column, unquoted tolerance", "SELECT t.*, ask FROM trades t ASOF JOIN quotes USING (sym) TOLERANCE 1s", { op: "asof", table: "trades", right: { table: "quotes", columns: ["ask"] }, tolerance: "1s" }],
  [
    "WINDOW JOIN",
    "SELECT t.sym, t.ts, t.price, count(*) AS n, avg(q.bid) AS avg_bid, vwap(r2.price, r2.size) FROM trades t WINDOW JOIN quotes q ON (sym) RANGE BETWEEN '2s' PRECEDING AND '1s' FOLLOWING WHERE t.ts >= 1".replace("r2.price, r2.size", "q.bid, q.ask"),
    { op: "windowJoin", table: "trades", t0: 1, columns: ["price"], right: { table: "quotes" }, before: "2s", after: "1s", aggregates: [{ fn: "count", as: "n" }, { fn: "avg", column: "bid", as: "avg_bid" }, { fn: "vwap", column: "bid", weight: "ask" }] },
  ],
  ["WINDOW JOIN up to the current row", "SELECT t.sym, t.ts, max(q.ask) FROM trades t WINDOW JOIN quotes q ON (sym) RANGE BETWEEN INTERVAL '1 minute' PRECEDING AND CURRENT ROW", { op: "windowJoin", table: "trades", columns: [], right: { table: "quotes" }, before: "1m", after: 0, aggregates: [{ fn: "max", column: "ask" }] }],
  [
    "rolling over a time window, vwap and ema",
    "SELECT sym, ts, price, avg(price) OVER (PARTITION BY sym ORDER BY ts RANGE INTERVAL '5m' PRECEDING) AS avg5, vwap(price, size) OVER (PARTITION BY sym ORDER BY ts RANGE BETWEEN INTERVAL '5 minutes' PRECEDING AND CURRENT ROW) AS vw, ema(price, 0.1) OVER (PARTITION BY sym ORDER BY ts) AS e FROM trades WHERE sym IN ('A')",
    { op: "rolling", table: "trades", symbols: ["A"], columns: ["price"], window: "5m", aggregates: [{ fn: "avg", column: "price", as: "avg5" }, { fn: "vwap", column: "price", weight: "size", as: "vw" }, { fn: "ema", column: "price", alpha: 0.1, as: "e" }] },
  ],
  ["rolling over rows", "SELECT sym, ts, sum(size) OVER (PARTITION BY sym ORDER BY ts ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS s10, stddev(price) OVER (PARTITION BY sym ORDER BY ts ROWS 9 PRECEDING) FROM trades", { op: "rolling", table: "trades", columns: [], rows: 10, aggregates: [{ fn: "sum", column: "size", as: "s10" }, { fn: "stddev", column: "price" }] }],
  ["ema alone needs no frame", "SELECT sym, ts, ema(price, 0.5) OVER (PARTITION BY sym ORDER BY ts) AS e FROM trades ORDER BY ts", { op: "rolling", table: "trades", columns: [], rows: 1, aggregates: [{ fn: "ema", column: "price", alpha: 0.5, as: "e" }], sort: "time" }],
  ["SAMPLE BY * is OHLCV bars", "SELECT * FROM trades WHERE sym IN ('A') SAMPLE BY 1m", { op: "bars", table: "trades", symbols: ["A"], bucket: "1m" }],
  ["SAMPLE BY ... FILL(PREV) bars", "SELECT sym, ts, first(price) AS open, max(price) AS high, min(price) AS low, last(price) AS close, sum(size) AS volume FROM trades WHERE ts >= 1 AND ts < 9 SAMPLE BY 5s FILL(PREV) ALIGN TO CALENDAR", { op: "bars", table: "trades", t0: 1, t1: 9, bucket: "5s", price: "price", size: "size", fill: "previous" }],
  ["SAMPLE BY FILL(0) and FILL(NULL)", "SELECT * FROM trades WHERE ts >= 1 AND ts < 9 SAMPLE BY 1h FILL(0)", { op: "bars", table: "trades", t0: 1, t1: 9, bucket: "1h", fill: "zero" }],
  ["SAMPLE BY with aggregates is a group-by per symbol and bucket", "SELECT sym, ts, avg(price) AS ap, count(*) FROM trades SAMPLE BY 1m", { op: "groupBy", table: "trades", by: ["symbol", "bucket"], bucket: "1m", aggregates: [{ fn: "avg", column: "price", as: "ap" }, { fn: "count" }] }],
  ["SAMPLE BY without sym buckets all symbols", "SELECT ts, sum(size) FROM trades SAMPLE BY 1d", { op: "groupBy", table: "trades", by: ["bucket"], bucket: "1d", aggregates: [{ fn: "sum", column: "size" }] }],
  [
    "GROUP BY sym, time_bucket",
    "SELECT sym, time_bucket('1m', ts) AS minute, first(price) AS open, last(price) AS close, vwap(price) FROM trades WHERE ts >= 1 GROUP BY sym, minute ORDER BY sym, minute",
    { op: "groupBy", table: "trades", t0: 1, by: ["symbol", "bucket"], bucket: "1m", aggregates: [{ fn: "first", column: "price", as: "open" }, { fn: "last", column: "price", as: "close" }, { fn: "vwap", column: "price" }] },
  ],
  ["GROUP BY time_bucket expression", "SELECT time_bucket('250ms', ts), count(*) FROM trades GROUP BY time_bucket('250ms', ts)", { op: "groupBy", table: "trades", by: ["bucket"], bucket: "250ms", aggregates: [{ fn: "count" }] }],
  ["GROUP BY sym", "SELECT sym, count(*) AS n, max(price) FROM trades GROUP BY sym", { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "count", as: "n" }, { fn: "max", column: "price" }] }],
  ["aggregates without GROUP BY", "SELECT count(*), avg(price) FROM trades WHERE sym = 'A'", { op: "groupBy", table: "trades", symbols: ["A"], by: [], aggregates: [{ fn: "count" }, { fn: "avg", column: "price" }] }],
];

describe("sql - forms compile to the query model", () => {
  for (const [name, sql, want] of FORMS) {
    it(`sql - ${name}`, () => {
      expect(q(sql)).toEqual(want);
    });
  }

  it("sql - EXPLAIN is flagged and compiles the statement", () => {
    expect(compileSql("EXPLAIN SELECT * FROM trades LATEST ON ts PARTITION BY sym")).toEqual({ explain: true, query: { op: "lastBy", table: "trades" } });
  });

  it("sql - keywords are case-insensitive and words inside strings are not clauses", () => {
    expect(q("select * from trades where sym in ('SAMPLE BY 1m', 'LATEST ON') latest on ts partition by sym")).toEqual({ op: "lastBy", table: "trades", symbols: ["SAMPLE BY 1m", "LATEST ON"] });
  });

  it("sql - a statement parsed before compiles against the current table specs", () => {
    const sql = "SELECT * FROM prices LATEST ON stamp PARTITION BY pair";
    let spec = { symbolColumn: "sym", timeColumn: "ts", columns: [] as { name: string }[] };
    const tables = () => spec;
    expect(() => compileSql(sql, tables)).toThrow(/PARTITION BY pair/);
    spec = { symbolColumn: "pair", timeColumn: "stamp", columns: [] };
    expect(compileSql(sql, tables).query).toEqual({ op: "lastBy", table: "prices" });
    expect(compileSql(sql, tables)).toEqual(compileSql(sql, tables));
  });

  it("sql - now() and now() +/- an interval, in WHERE and in LATEST BY ... AT", () => {
    const now = T + 10_000_000;
    const c = (sql: string) => compileSql(sql, () => undefined, now).query;
    expect(c("SELECT * FROM trades WHERE ts > now() - INTERVAL '5 minutes' AND ts <= now()")).toEqual({ op: "range", table: "trades", t0: now - 300_000_000 + 1, t1: now + 1 });
    expect(c("SELECT * FROM trades WHERE ts >= now() - '1h' AND ts < current_timestamp + INTERVAL '1' SECOND")).toEqual({ op: "range", table: "trades", t0: now - 3_600_000_000, t1: now + 1_000_000 });
    expect(c("SELECT * FROM trades LATEST BY sym AT now() - '10s'")).toEqual({ op: "lastBy", table: "trades", at: now - 10_000_000 });
    // The parsed statement is cached, now() is not: a later clock gives a later bound.
    expect(compileSql("SELECT * FROM trades LATEST BY sym AT now() - '10s'", () => undefined, now + 5).query).toEqual({ op: "lastBy", table: "trades", at: now - 10_000_000 + 5 });
    expect(() => c("SELECT * FROM trades WHERE ts > now() - price")).toThrow(/price as a duration/);
  });

  it("sql - SAMPLE BY ... FILL without an end fills up to now; without a start it is refused", () => {
    expect(compileSql("SELECT * FROM trades WHERE ts >= 5 SAMPLE BY 1m FILL(PREV)", () => undefined, 1000).query).toEqual({ op: "bars", table: "trades", t0: 5, t1: 1001, bucket: "1m", fill: "previous" });
    expect(() => compileSql("SELECT * FROM trades SAMPLE BY 1m FILL(NULL)")).toThrow(/FILL needs the start of the time range; add WHERE ts >= now\(\)/);
  });

  it("sql - SQL and JSON bodies are told apart", () => {
    expect(looksLikeSql("  SELECT 1")).toBe(true);
    expect(looksLikeSql(' {"table":"trades"}')).toBe(false);
  });
});

/** [name, SQL, what the message must name (construct), what it must offer (alternative)] */
const REFUSED: [string, string, RegExp, RegExp][] = [
  ["INSERT", "INSERT INTO trades VALUES ('A', 1, 2, 3)", /INSERT statement/, /POST \/v1\/ingest/],
  ["DELETE", "DELETE FROM trades", /DELETE statement/, /pxctl apply/],
  ["several statements", "SELECT * FROM trades; SELECT * FROM quotes", /several statements/, /one statement/],
  ["WITH", "WITH x AS (SELECT * FROM trades) SELECT * FROM x", /WITH/, /directly/],
  ["UNION", "SELECT * FROM trades UNION SELECT * FROM quotes", /UNION/, /separately/],
  ["DISTINCT", "SELECT DISTINCT sym FROM trades", /DISTINCT/, /LATEST ON/],
  ["subquery", "SELECT * FROM (SELECT * FROM trades) x", /subquery/, /directly/],
  ["inner join", "SELECT * FROM trades t JOIN quotes q ON t.sym = q.sym", /INNER JOIN/, /ASOF JOIN/],
  ["comma join", "SELECT * FROM trades, quotes", /comma join/, /ASOF JOIN/],
  ["LT JOIN", "SELECT * FROM trades LT JOIN quotes ON (sym)", /LT JOIN/, /ASOF JOIN/],
  ["asof on a value column", "SELECT * FROM trades t ASOF JOIN quotes q ON t.price = q.bid", /ON t\.price = q\.bid/, /ON \(sym\)/],
  ["TOLERANCE without ASOF", "SELECT * FROM trades TOLERANCE '1s'", /TOLERANCE without ASOF JOIN/, /ASOF JOIN quotes/],
  ["WINDOW JOIN without its range", "SELECT t.sym, count(*) FROM trades t WINDOW JOIN quotes q ON (sym)", /needs its window/, /RANGE BETWEEN/],
  ["OR", "SELECT * FROM trades WHERE sym = 'A' OR sym = 'B'", /OR in WHERE/, /sym IN/],
  ["NOT", "SELECT * FROM trades WHERE NOT sym = 'A'", /NOT in WHERE/, /sym IN/],
  ["value filter", "SELECT * FROM trades WHERE price > 100", /filtering on price/, /filter other columns in the client/],
  ["LIKE", "SELECT * FROM trades WHERE sym LIKE 'A%'", /WHERE sym LIKE/, /sym IN/],
  ["expression timestamp", "SELECT * FROM trades WHERE ts > ts - 5", /expression/, /literal/],
  ["bad timestamp", "SELECT * FROM trades WHERE ts > 'yesterday'", /'yesterday' is not a timestamp/, /ISO date-time/],
  ["timestamp in seconds", "SELECT * FROM trades WHERE ts > 99999999999999999", /outside 1970-01-01/, /microseconds/],
  ["expression column", "SELECT price * size FROM trades", /expression price \* size/, /client/],
  ["renamed column", "SELECT price AS p FROM trades", /renaming the column price AS p/, /AS/],
  ["unknown function", "SELECT median(price) FROM trades", /median\(\)/, /count\(\*\), sum/],
  ["DISTINCT aggregate", "SELECT count(DISTINCT sym) FROM trades", /DISTINCT/, /count/],
  ["ORDER BY a value", "SELECT * FROM trades ORDER BY price", /ORDER BY price/, /order by ts/],
  ["mixed directions", "SELECT * FROM trades ORDER BY sym ASC, ts DESC", /mixed directions/, /both ASC or both DESC/],
  ["OFFSET", "SELECT * FROM trades LIMIT 10 OFFSET 5", /OFFSET/, /WHERE ts >/],
  ["HAVING", "SELECT sym, count(*) FROM trades GROUP BY sym HAVING count(*) > 1", /HAVING/, /client/],
  ["GROUP BY a value column", "SELECT price, count(*) FROM trades GROUP BY price", /GROUP BY price/, /time_bucket/],
  ["ungrouped column", "SELECT sym, price, count(*) FROM trades GROUP BY sym", /price is neither grouped nor aggregated/, /last\(price\)/],
  ["LIMIT on an aggregate", "SELECT count(*) FROM trades LIMIT 1", /LIMIT on GROUP BY/, /time range/],
  ["two forms at once", "SELECT * FROM trades SAMPLE BY 1m LATEST ON ts PARTITION BY sym", /LATEST ON with SAMPLE BY/, /separate queries/],
  ["LATEST partitioned by a value", "SELECT * FROM trades LATEST ON ts PARTITION BY price", /PARTITION BY price/, /symbol column sym/],
  ["OVER without partition", "SELECT avg(price) OVER (ORDER BY ts ROWS 3 PRECEDING) FROM trades", /PARTITION BY nothing/, /PARTITION BY sym/],
  ["OVER without a frame", "SELECT avg(price) OVER (PARTITION BY sym ORDER BY ts) FROM trades", /without a frame/, /RANGE INTERVAL '5m' PRECEDING/],
  ["unbounded frame", "SELECT sum(size) OVER (PARTITION BY sym ORDER BY ts ROWS UNBOUNDED PRECEDING) FROM trades", /UNBOUNDED PRECEDING/, /GROUP BY sym/],
  ["frame ending after the row", "SELECT sum(size) OVER (PARTITION BY sym ORDER BY ts ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM trades", /does not end at the current row/, /ROWS 10 PRECEDING/],
  ["two frames", "SELECT sum(size) OVER (PARTITION BY sym ORDER BY ts ROWS 1 PRECEDING), avg(price) OVER (PARTITION BY sym ORDER BY ts ROWS 2 PRECEDING) FROM trades", /different window frames/, /same frame/],
  ["named window", "SELECT avg(price) OVER w FROM trades WINDOW w AS (PARTITION BY sym)", /named window/, /inline/],
  ["month duration", "SELECT * FROM trades SAMPLE BY 1M", /'1M' is not a duration/, /us, ms, s, m, h or d/],
  ["FILL(LINEAR)", "SELECT * FROM trades SAMPLE BY 1m FILL(LINEAR)", /FILL\(LINEAR\)/, /FILL\(PREV\)/],
  ["ALIGN TO FIRST OBSERVATION", "SELECT * FROM trades SAMPLE BY 1m ALIGN TO FIRST OBSERVATION", /ALIGN TO FIRST/, /CALENDAR/],
  ["FILL with stddev", "SELECT sym, stddev(price) FROM trades SAMPLE BY 1m FILL(PREV)", /stddev\(\) with SAMPLE BY ... FILL/, /drop FILL/],
  ["ema without alpha", "SELECT ema(price) OVER (PARTITION BY sym ORDER BY ts) FROM trades", /smoothing factor/, /ema\(price, 0\.1\)/],
  ["syntax error", "SELEC * FROM trades", /does not parse/, /SELECT \.\.\. FROM/],
  ["empty", "  ", /empty/, /SELECT/],
  ["unclosed string", "SELECT * FROM trades WHERE sym = 'A", /not closed/, /close it/],
];

describe("sql - refused forms name the construct and the alternative", () => {
  for (const [name, sql, construct, alternative] of REFUSED) {
    it(`sql - refuses ${name}`, () => {
      let err: unknown;
      try {
        q(sql);
      } catch (e) {
        err = e;
      }
      expect(err, sql).toBeInstanceOf(QueryError);
      expect((err as QueryError).code).toBe("INVALID_ARGUMENT");
      expect((err as Error).message).toMatch(construct);
      expect((err as Error).message).toMatch(alternative);
    });
  }

  it("sql - what the query model refuses comes back with its own message", () => {
    expect(() => q("SELECT sym, ts, stddev(price) FROM trades GROUP BY sym, ts")).toThrow(QueryError);
    expect(() => q("SELECT * FROM trades WHERE ts < 9 LATEST BY sym AT 5")).toThrow(/either "at" or t0\/t1|at/);
  });
});

describe("sql - user-defined functions (the tenant's, by kind)", () => {
  const fns = (name: string) => ({ myvwap: "aggregate", notional: "scalar" }) [name] as "aggregate" | "scalar" | undefined;
  const u = (sql: string) => compileSql(sql, (t) => specs.get(t.split(".").pop()!), T, fns).query;
  it("udf - an aggregate in GROUP BY, SAMPLE BY and OVER; a scalar as a derived column of a range scan", () => {
    expect(u("SELECT sym, myvwap(price, size) AS mine FROM trades GROUP BY sym")).toEqual({ op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "size"], as: "mine" }] });
    expect(u("SELECT sym, ts, myvwap(price, size) FROM trades WHERE ts >= 0 AND ts < 60000000 SAMPLE BY 1m")).toMatchObject({ op: "groupBy", by: ["symbol", "bucket"], bucket: "1m", aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "size"] }] });
    expect(u("SELECT sym, ts, myvwap(price, size) OVER (PARTITION BY sym ORDER BY ts RANGE INTERVAL '5m' PRECEDING) FROM trades")).toMatchObject({ op: "rolling", window: "5m", aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "size"] }] });
    expect(u("SELECT ts, sym, price, notional(price, size) AS n FROM trades WHERE sym = 'A' LIMIT 5")).toEqual({ op: "range", table: "trades", symbols: ["A"], columns: ["price"], derived: [{ fn: "udf", name: "notional", args: ["price", "size"], as: "n" }], limit: 5 });
    expect(u("SELECT *, notional(price, size) FROM trades")).toEqual({ op: "range", table: "trades", derived: [{ fn: "udf", name: "notional", args: ["price", "size"] }] });
  });

  it("udf - refused: a scalar with an aggregating form, a non-column argument, an unknown name (the alternative named)", () => {
    expect(() => u("SELECT sym, notional(price, size) FROM trades GROUP BY sym")).toThrow(/SQL: the scalar function notional\(\) with GROUP BY is not supported; scalar user-defined functions add columns to plain SELECTs/);
    expect(() => u("SELECT notional(price, size), count(*) FROM trades")).toThrow(/the scalar function notional\(\) with aggregates is not supported/);
    expect(() => u("SELECT * FROM trades LATEST ON ts PARTITION BY sym")).not.toThrow();
    expect(() => u("SELECT sym, myvwap(price, 2) FROM trades GROUP BY sym")).toThrow(/myvwap\(\): argument 2 \(2\) must be a column/);
    expect(() => u("SELECT sym, nope(price) FROM trades GROUP BY sym")).toThrow(/SQL: the function nope\(\) is not supported; .*or a user-defined function of the tenant \(pxctl apply\)/);
    // Without the tenant's functions (another tenant), the same name is unknown.
    expect(() => q("SELECT sym, myvwap(price, size) FROM trades GROUP BY sym")).toThrow(/the function myvwap\(\) is not supported/);
  });
});
