// Random query cases for every operator with the DuckDB SQL that answers each
// over every tick (test/query/oracle.ts): the seam property test and the
// cluster oracle test on node processes draw from the same list.
import { symFilter } from "./oracle.js";

export interface Case {
  readonly name: string;
  readonly query: Record<string, unknown>;
  readonly sql: string;
  /** Post-processing of oracle rows (EMA). */
  readonly fix?: (rows: unknown[][]) => unknown[][];
}

/** Where the cases are drawn from: symbols (the second one is named in a symbol list), [base, base + span), the shards' horizons. */
export interface CaseSpace {
  readonly symbols: readonly string[];
  readonly base: number;
  readonly span: number;
  readonly horizons: readonly number[];
}

/** One random case per operator (and variant), each with the DuckDB SQL of its answer over the `trades` and `quotes` views. */
export function cases(space: CaseSpace, rand: () => number): Case[] {
  const { base: T_BASE, span: SPAN, horizons } = space;
  const pick = (): number => T_BASE + Math.floor(rand() * SPAN);
  const H = Math.max(T_BASE + 1, horizons[Math.floor(rand() * horizons.length)]!);
  let a = pick();
  let b = pick();
  if (a > b) [a, b] = [b, a];
  const symsList: (readonly string[] | undefined)[] = [undefined, ["EARLY", space.symbols[1]!, "NOPE"], space.symbols.filter(() => rand() < 0.5)];
  const syms = symsList[Math.floor(rand() * symsList.length)];
  const symQ = syms === undefined ? {} : { symbols: syms };
  const sf = symFilter(syms);
  const sfl = symFilter(syms, "l.sym");
  const range = (t0: number, t1: number) => `ts >= ${t0} AND ts < ${t1}`;
  const lrange = (t0: number, t1: number) => `l.ts >= ${t0} AND l.ts < ${t1}`;
  const tol = [undefined, 0, 1000, 500_000][Math.floor(rand() * 4)];
  const out: Case[] = [];
  const limit = Math.floor(rand() * 50);
  out.push({ name: "range", query: { op: "range", table: "trades", t0: a, t1: b, ...symQ }, sql: `SELECT sym, ts, price, size FROM trades WHERE ${range(a, b)}${sf} ORDER BY ts, lsn, "row"` });
  out.push({ name: "range empty", query: { op: "range", table: "trades", t0: a, t1: a, ...symQ }, sql: `SELECT sym, ts, price, size FROM trades WHERE false` });
  out.push({
    name: "range desc limit by symbol",
    query: { op: "range", table: "quotes", t0: H, t1: b + SPAN, order: "desc", limit, sort: "symbol", ...symQ },
    sql: `SELECT sym, ts, bid, ask FROM quotes WHERE ${range(H, b + SPAN)}${sf} ORDER BY sym DESC, ts DESC, lsn DESC, "row" DESC LIMIT ${limit}`,
  });
  for (const at of [a, H, H - 1]) {
    out.push({
      name: `lastBy at ${at - T_BASE}`,
      query: { op: "lastBy", table: "trades", at, ...symQ },
      sql: `SELECT sym, ts, price, size FROM trades WHERE ts <= ${at}${sf} QUALIFY row_number() OVER (PARTITION BY sym ORDER BY ts DESC, lsn DESC, "row" DESC) = 1 ORDER BY sym`,
    });
    out.push({
      name: `firstBy at ${at - T_BASE}`,
      query: { op: "firstBy", table: "quotes", at, columns: ["ask"], ...symQ },
      sql: `SELECT sym, ts, ask FROM quotes WHERE ts >= ${at}${sf} QUALIFY row_number() OVER (PARTITION BY sym ORDER BY ts, lsn, "row") = 1 ORDER BY sym`,
    });
  }
  for (const direction of ["backward", "forward", "nearest"] as const) {
    const t0 = rand() < 0.3 ? Math.min(H, b) : a;
    const tolSql = tol === undefined ? "" : ` AND abs(pk.ts - l_ts) <= ${tol}`;
    const pickSql =
      direction === "backward" ? "bk" : direction === "forward" ? "fw" : "CASE WHEN bk IS NOT NULL AND (fw IS NULL OR l_ts - bk.ts <= fw.ts - l_ts) THEN bk ELSE fw END";
    out.push({
      name: `asof ${direction} tol ${tol}`,
      query: { op: "asof", table: "trades", t0, t1: b, right: { table: "quotes" }, direction, ...(tol === undefined ? {} : { tolerance: tol }), ...symQ },
      sql: `WITH m AS (SELECT l.sym, l.ts AS l_ts, l.lsn AS l_lsn, l."row" AS l_row, l.price, l.size,
              (SELECT arg_max({'ts': q.ts, 'bid': q.bid, 'ask': q.ask}, (q.ts, q.lsn, q."row")) FROM quotes q WHERE q.sym = l.sym AND q.ts <= l.ts) AS bk,
              (SELECT arg_min({'ts': q.ts, 'bid': q.bid, 'ask': q.ask}, (q.ts, q.lsn, q."row")) FROM quotes q WHERE q.sym = l.sym AND q.ts >= l.ts) AS fw
            FROM trades l WHERE ${lrange(t0, b)}${sfl}),
          pp AS (SELECT *, ${pickSql} AS pk FROM m)
          SELECT sym, l_ts, price, size,
            CASE WHEN pk IS NOT NULL${tolSql} THEN pk.ts END,
            CASE WHEN pk IS NOT NULL${tolSql} THEN pk.bid END,
            CASE WHEN pk IS NOT NULL${tolSql} THEN pk.ask END
          FROM pp ORDER BY l_ts, l_lsn, l_row`,
    });
  }
  const before = Math.floor(rand() * 3_000_000);
  const after = Math.floor(rand() * 1_000_000);
  out.push({
    name: `windowJoin -${before} +${after}`,
    query: {
      op: "windowJoin",
      table: "trades",
      t0: a,
      t1: b,
      columns: ["price"],
      right: { table: "trades" },
      before,
      after,
      aggregates: [
        { fn: "count" },
        { fn: "sum", column: "size" },
        { fn: "avg", column: "price" },
        { fn: "min", column: "price" },
        { fn: "max", column: "price" },
        { fn: "first", column: "price" },
        { fn: "last", column: "price" },
        { fn: "vwap", column: "price" },
      ],
      ...symQ,
    },
    sql: `SELECT l.sym, l.ts, l.price, count(r.ts), CAST(sum(r.size) AS DOUBLE), avg(r.price), min(r.price), max(r.price),
            arg_min(r.price, (r.ts, r.lsn, r."row")), arg_max(r.price, (r.ts, r.lsn, r."row")), sum(r.price * r.size) / sum(r.size)
          FROM trades l LEFT JOIN trades r ON r.sym = l.sym AND r.ts BETWEEN l.ts - ${before} AND l.ts + ${after}
          WHERE ${lrange(a, b)}${sfl} GROUP BY l.sym, l.ts, l.lsn, l."row", l.price ORDER BY l.ts, l.lsn, l."row"`,
  });
  const win = 1 + Math.floor(rand() * 4_000_000);
  const alpha = 0.3;
  out.push({
    name: `rolling time ${win}`,
    query: {
      op: "rolling",
      table: "trades",
      t0: a,
      t1: b,
      columns: [],
      window: win,
      aggregates: [
        { fn: "sum", column: "size" },
        { fn: "avg", column: "price" },
        { fn: "min", column: "price" },
        { fn: "max", column: "price" },
        { fn: "count" },
        { fn: "stddev", column: "price" },
        { fn: "vwap", column: "price" },
        { fn: "ema", column: "price", alpha },
      ],
      ...symQ,
    },
    sql: `SELECT l.sym, l.ts, CAST(sum(r.size) AS DOUBLE), avg(r.price), min(r.price), max(r.price), count(*), stddev_samp(r.price), sum(r.price * r.size) / sum(r.size), any_value(l.price)
          FROM trades l JOIN trades r ON r.sym = l.sym AND r.ts > l.ts - ${win} AND (r.ts, r.lsn, r."row") <= (l.ts, l.lsn, l."row")
          WHERE ${lrange(a, b)}${sfl} GROUP BY l.sym, l.ts, l.lsn, l."row" ORDER BY l.sym, l.ts, l.lsn, l."row"`,
    fix: (rows) => {
      // EMA over each symbol's rows in range, seeded with the first: computed here from DuckDB's rows.
      let sym: unknown = undefined;
      let e = 0;
      return rows.map((r) => {
        const x = r[9] as number;
        e = r[0] === sym ? alpha * x + (1 - alpha) * e : x;
        sym = r[0];
        return [...r.slice(0, 9), e];
      });
    },
  });
  const n = 1 + Math.floor(rand() * 6);
  out.push({
    name: `rolling rows ${n}`,
    query: { op: "rolling", table: "trades", t0: a, t1: b, window: undefined, rows: n, aggregates: [{ fn: "sum", column: "price" }, { fn: "max", column: "price" }, { fn: "stddev", column: "price" }], ...symQ },
    sql: `SELECT sym, ts, price, size, s, mx, sd FROM (
            SELECT *, sum(price) OVER w AS s, max(price) OVER w AS mx, stddev_samp(price) OVER w AS sd FROM trades
            WINDOW w AS (PARTITION BY sym ORDER BY ts, lsn, "row" ROWS BETWEEN ${n - 1} PRECEDING AND CURRENT ROW))
          WHERE ${range(a, b)}${sf} ORDER BY sym, ts, lsn, "row"`,
  });
  const bucket = [1_000_000, 1_500_000, 5_000_000][Math.floor(rand() * 3)]!;
  const bars = `SELECT sym, (ts // ${bucket}) * ${bucket} AS bk, arg_min(price, (ts, lsn, "row")) AS o, max(price) AS h, min(price) AS lo, arg_max(price, (ts, lsn, "row")) AS c,
      CAST(sum(size) AS DOUBLE) AS v, count(*) AS n, sum(price * size) / sum(size) AS vw FROM trades WHERE ${range(a, b)}${sf} GROUP BY sym, bk`;
  out.push({ name: `bars ${bucket}`, query: { op: "bars", table: "trades", t0: a, t1: b, bucket, ...symQ }, sql: `${bars} ORDER BY sym, bk` });
  const first = Math.floor(a / bucket) * bucket;
  const symsSql = syms === undefined ? `SELECT DISTINCT sym FROM trades WHERE ${range(a, b)}` : `SELECT unnest([${syms.map((s) => `'${s}'`).join(", ") || "NULL"}]::VARCHAR[]) AS sym`;
  for (const fill of ["null", "previous", "zero"] as const) {
    const ohlc = (col: string): string =>
      fill === "zero" ? `coalesce(${col}, 0)` : fill === "previous" ? `coalesce(${col}, last_value(c IGNORE NULLS) OVER (PARTITION BY g.sym ORDER BY g.bk ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))` : col;
    out.push({
      name: `bars ${bucket} fill ${fill}`,
      query: { op: "bars", table: "trades", t0: a, t1: b, bucket, fill, ...symQ },
      sql: `WITH b AS (${bars}), g AS (SELECT s.sym, r.range AS bk FROM (${symsSql}) s CROSS JOIN range(${first}, ${b}, ${bucket}) r WHERE s.sym IS NOT NULL)
            SELECT g.sym, g.bk, ${ohlc("o")}, ${ohlc("h")}, ${ohlc("lo")}, ${ohlc("c")}, coalesce(v, 0), coalesce(n, 0), vw
            FROM g LEFT JOIN b ON b.sym = g.sym AND b.bk = g.bk ORDER BY g.sym, g.bk`,
    });
  }
  const aggs = `count(*), CAST(sum(size) AS DOUBLE), avg(price), min(price), max(price), arg_min(price, (ts, lsn, "row")), arg_max(price, (ts, lsn, "row")), sum(price * size) / sum(size)`;
  const gAggs = [
    { fn: "count" },
    { fn: "sum", column: "size" },
    { fn: "avg", column: "price" },
    { fn: "min", column: "price" },
    { fn: "max", column: "price" },
    { fn: "first", column: "price" },
    { fn: "last", column: "price" },
    { fn: "vwap", column: "price" },
  ];
  out.push({ name: "groupBy symbol", query: { op: "groupBy", table: "trades", t0: a, t1: b, by: ["symbol"], aggregates: gAggs, ...symQ }, sql: `SELECT sym, ${aggs} FROM trades WHERE ${range(a, b)}${sf} GROUP BY sym ORDER BY sym` });
  out.push({
    name: "groupBy bucket",
    query: { op: "groupBy", table: "trades", t0: a, t1: b, by: ["bucket"], bucket, aggregates: gAggs, ...symQ },
    sql: `SELECT (ts // ${bucket}) * ${bucket} AS bk, ${aggs} FROM trades WHERE ${range(a, b)}${sf} GROUP BY bk ORDER BY bk`,
  });
  out.push({ name: "groupBy all", query: { op: "groupBy", table: "trades", t0: a, t1: b, by: [], aggregates: gAggs, ...symQ }, sql: `SELECT ${aggs} FROM trades WHERE ${range(a, b)}${sf}` });
  return out.map((c) => ({ ...c, query: JSON.parse(JSON.stringify(c.query)) as Record<string, unknown> }));
}

