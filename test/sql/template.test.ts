// Statement shapes (src/sql/template.ts): a statement bound into the parse of
// an earlier statement of its shape equals its own direct parse, for every
// kind of statement the SQL front end takes, with literals that differ from the
// ones the shape was first parsed with.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseStatement } from "../../src/sql/ast.js";
import { extract } from "../../src/sql/extensions.js";
import { clearShapes, parseShaped } from "../../src/sql/template.js";

const STATEMENTS = [
  "SELECT * FROM trades",
  "SELECT sym, ts, price FROM trades WHERE sym IN ('AAPL', 'MSFT') AND ts >= '2024-01-02T14:30:00Z' AND ts < 1704205900000000 ORDER BY ts DESC LIMIT 10",
  "SELECT * FROM trades WHERE sym = 'A' AND '2024-01-02T14:30:00Z' <= ts",
  "SELECT * FROM trades WHERE ts > 10 AND ts <= 20 AND price > -5 AND size < 3.5",
  "SELECT * FROM trades WHERE ts BETWEEN '2024-01-02T14:30:00.000001Z' AND 1704205800000009",
  "SELECT * FROM trades WHERE ts >= TIMESTAMP '2024-01-02 14:30:00'",
  "SELECT * FROM trades WHERE sym IN ('it''s', 'a') LIMIT 0",
  "SELECT * FROM trades WHERE sym IN ('A') LATEST ON ts PARTITION BY sym",
  "SELECT * FROM trades LATEST BY sym AT '2024-01-02T14:30:00.5Z'",
  "SELECT t.sym, t.ts, t.price, q.bid FROM trades t ASOF JOIN quotes q ON (sym) TOLERANCE '500ms' WHERE t.sym = 'A'",
  "SELECT sym, ts, avg(price) OVER (PARTITION BY sym ORDER BY ts RANGE INTERVAL '5m' PRECEDING) AS a FROM trades WHERE sym = 'X'",
  "SELECT sym, ts, vwap(price, size) OVER (PARTITION BY sym ORDER BY ts ROWS 20 PRECEDING) FROM trades",
  "SELECT sym, ts, ema(price, 0.1) OVER (PARTITION BY sym ORDER BY ts) FROM trades",
  "SELECT * FROM trades WHERE ts >= '2024-01-02' SAMPLE BY 1m FILL(PREV)",
  "SELECT sym, time_bucket('1m', ts) AS b, first(price), max(price), sum(size) FROM trades WHERE sym IN ('A', 'B') GROUP BY sym, b",
  "SELECT count(*) FROM trades WHERE ts >= now() - INTERVAL '1h'",
  "EXPLAIN SELECT * FROM trades WHERE sym = 'A' LIMIT 5",
  "SELECT * FROM trades WHERE sym = '__px_literal_0__' AND ts > 1",
  "SELECT * FROM trades WHERE ts > 7777000000000 AND ts < 5",
];

const parserText = (sql: string): string => extract(sql).sql;
const direct = (sql: string): unknown => JSON.parse(JSON.stringify(parseStatement(sql)));

/** The statement with other literals: every string gets `tag` inside, every plain integer becomes another. */
function relit(sql: string, tag: string, n: number): string {
  return sql.replace(/'(?:[^']|'')*'/g, (s) => `'${tag}${s.slice(1)}`).replace(/\b(?<![.\d])(\d{1,15})\b(?![.\d'])/g, (d) => String((Number(d) + n) % 1e15));
}

describe("sql statement shapes", () => {
  it("template - a statement bound into its shape equals its direct parse", () => {
    fc.assert(
      fc.property(fc.constantFrom(...STATEMENTS), fc.string({ unit: fc.constantFrom("x", "Y", "0", "-", " ", ":", "''"), maxLength: 6 }), fc.integer({ min: 1, max: 1e9 }), (sql, tag, n) => {
        clearShapes();
        let first: string;
        try {
          first = parserText(relit(sql, tag, n));
        } catch {
          // A literal the time-series clauses read (a duration) no longer valid: not a statement.
          return fc.pre(false);
        }
        const again = parserText(sql);
        parseShaped(first);
        expect(parseShaped(again)).toEqual(direct(again));
        expect(parseShaped(first)).toEqual(direct(first));
      }),
      { numRuns: 150 },
    );
  }, 60_000);

  it("template - a literal is bound, not kept from the shape's first statement", () => {
    clearShapes();
    const a = parseShaped(parserText("SELECT * FROM trades WHERE sym = 'A' LIMIT 1"));
    const b = parseShaped(parserText("SELECT * FROM trades WHERE sym = 'B' LIMIT 2"));
    expect(JSON.stringify(a)).toContain('"A"');
    expect(JSON.stringify(b)).toContain('"B"');
    expect(b).toEqual(direct(parserText("SELECT * FROM trades WHERE sym = 'B' LIMIT 2")));
  });

  it("template - a statement that does not parse is refused in its own words", () => {
    clearShapes();
    expect(() => parseShaped(parserText("SELECT * FROM trades WHERE sym = 'A' AND"))).toThrow(/does not parse/);
  });
});
