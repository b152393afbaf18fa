// SQL against DuckDB: the query engine's random oracle cases (test/query/cases.ts)
// are written as SQL, compiled, checked to be the same query as the case's JSON,
// and run by the engine on the same ticks DuckDB answers from.
import { describe, expect, it } from "vitest";
import { parseQuery } from "../../protocols/query.js";
import { compileSql } from "../../src/sql/index.js";
import { cases } from "../query/cases.js";
import { SPAN, TENANT, T_BASE, buildHot, rng, workload } from "../query/fixture.js";
import { diffRows, oracleOf, outRows } from "../query/oracle.js";

type J = Record<string, unknown>;
const aggSql = (a: J, q = ""): string => (a.fn === "count" ? "count(*)" : a.fn === "ema" ? `ema(${q}${String(a.column)}, ${String(a.alpha)})` : `${String(a.fn)}(${q}${String(a.column)})`) + (a.as ? ` AS ${String(a.as)}` : "");

/** The SQL a user would write for a case's JSON query; undefined where SQL has no form for it. */
function toSql(j: J): string | undefined {
  const syms = j.symbols as string[] | undefined;
  if (syms?.length === 0) return undefined; // SQL has no empty IN list
  const where = (p = ""): string => {
    const c = [...(j.t0 === undefined ? [] : [`${p}ts >= ${String(j.t0)}`]), ...(j.t1 === undefined ? [] : [`${p}ts < ${String(j.t1)}`]), ...(syms ? [`${p}sym IN (${syms.map((s) => `'${s}'`).join(", ")})`] : [])];
    return c.length === 0 ? "" : ` WHERE ${c.join(" AND ")}`;
  };
  const cols = (p = ""): string => (j.columns === undefined ? `${p}*` : [`${p}sym`, `${p}ts`, ...(j.columns as string[]).map((c) => p + c)].join(", "));
  const aggs = j.aggregates as J[] | undefined;
  switch (j.op) {
    case "range": {
      const order = j.sort === "symbol" ? ` ORDER BY sym ${j.order === "desc" ? "DESC" : "ASC"}, ts ${j.order === "desc" ? "DESC" : "ASC"}` : j.order === "desc" ? " ORDER BY ts DESC" : "";
      return `SELECT ${cols()} FROM ${String(j.table)}${where()}${order}${j.limit === undefined ? "" : ` LIMIT ${String(j.limit)}`}`;
    }
    case "lastBy":
    case "firstBy":
      return `SELECT ${cols()} FROM ${String(j.table)}${where()} ${j.op === "lastBy" ? "LATEST" : "EARLIEST"} BY sym AT ${String(j.at)}`;
    case "asof":
      if (j.direction !== "backward") return undefined; // SQL has ASOF JOIN backward only; the JSON form has forward and nearest
      return `SELECT * FROM ${String(j.table)} l ASOF JOIN ${String((j.right as J).table)} r ON (sym)${j.tolerance === undefined ? "" : ` TOLERANCE ${String(j.tolerance)}`}${where("l.")}`;
    case "windowJoin":
      return `SELECT ${cols("l.")}, ${aggs!.map((a) => aggSql(a, "r.")).join(", ")} FROM ${String(j.table)} l WINDOW JOIN ${String((j.right as J).table)} r ON (sym) RANGE BETWEEN ${String(j.before)} PRECEDING AND ${String(j.after)} FOLLOWING${where("l.")}`;
    case "rolling": {
      const frame = j.rows !== undefined ? `ROWS ${Number(j.rows) - 1} PRECEDING` : `RANGE ${String(j.window)} PRECEDING`;
      return `SELECT ${cols()}, ${aggs!.map((a) => aggSql(a).replace(/( AS|$)/, ` OVER (PARTITION BY sym ORDER BY ts ${frame})$1`)).join(", ")} FROM ${String(j.table)}${where()}`;
    }
    case "bars": {
      const fill = { null: "NULL", previous: "PREV", zero: "0" }[String(j.fill)];
      return `SELECT * FROM ${String(j.table)}${where()} SAMPLE BY ${String(j.bucket)}${fill ? ` FILL(${fill})` : ""}`;
    }
    case "groupBy": {
      const by = j.by as string[];
      const keys = [...(by.includes("symbol") ? ["sym"] : []), ...(by.includes("bucket") ? [`time_bucket('${String(j.bucket)}', ts)`] : [])];
      return `SELECT ${[...keys, ...aggs!.map((a) => aggSql(a))].join(", ")} FROM ${String(j.table)}${where()}${keys.length ? ` GROUP BY ${keys.join(", ")}` : ""}`;
    }
  }
  return undefined;
}

describe("sql - oracle", () => {
  it("sql - the engine's oracle cases written as SQL compile to the same query and match DuckDB", { timeout: 120_000 }, async () => {
    const seen = new Set<string>();
    for (const seed of [3, 11]) {
      const w = workload(seed);
      const c = buildHot(w);
      const engine = c.engine(undefined);
      const oracle = await oracleOf(w.ticks);
      const rand = rng(seed * 7);
      try {
        for (let round = 0; round < 3; round++) {
          const space = { symbols: w.symbols, base: T_BASE, span: SPAN, horizons: [...c.tables.values()].flat().map((s) => s.table.horizonMicros) };
          for (const k of cases(space, rand)) {
            const sql = toSql(k.query);
            if (sql === undefined) continue;
            const where = `seed ${seed} ${k.name}: ${sql}`;
            const compiled = compileSql(sql).query;
            expect(parseQuery(compiled), where).toEqual(parseQuery(k.query));
            const got = outRows((await engine.execute(TENANT, compiled)).table);
            const want = await oracle.rows(k.sql);
            expect(diffRows(got, k.fix ? k.fix(want) : want), where).toBeUndefined();
            seen.add(String(k.query.op));
          }
        }
      } finally {
        oracle.close();
      }
    }
    expect([...seen].sort()).toEqual(["asof", "bars", "firstBy", "groupBy", "lastBy", "range", "rolling", "windowJoin"]);
  });
});
