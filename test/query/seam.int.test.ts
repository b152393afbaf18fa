// Property test of the seam-aware engine against a real clickhouse-server and
// DuckDB: random workloads (late ticks, equal timestamps, a symbol that is
// entirely cold), the seam moved to random points per shard (the "sink" writes
// rows up to and beyond P to ClickHouse, then the shard evicts under P and H),
// and every operator's answer compared with DuckDB over every tick.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClickhouseHttp, detectServer, encodeRowBinarySegments, ensureSchema, insertRowBinary } from "../../src/clickhouse/index.js";
import type { ClickhouseServerInfo } from "../../src/clickhouse/index.js";
import { ClickhouseColdSource } from "../../src/query/index.js";
import type { ColdSource, ProxistQueryEngine } from "../../src/query/index.js";
import { startClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import type { ClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import { SPAN, T_BASE, buildHot, rng, workload } from "./fixture.js";
import type { Cluster, Workload } from "./fixture.js";
import { diffRows, oracleOf, outRows, symFilter } from "./oracle.js";
import type { Oracle } from "./oracle.js";

let server: ClickhouseServer;
let ch: ClickhouseHttp;
let info: ClickhouseServerInfo;

beforeAll(async () => {
  server = await startClickhouseServer();
  ch = new ClickhouseHttp({ url: server.httpUrl });
  info = await detectServer(ch);
});

afterAll(async () => {
  ch?.close();
  await server?.dispose();
});

/** Per shard: the LSN the "sink" has written to ClickHouse up to. */
type Written = Map<string, number>;

/** Moves the seam of every shard forward to a random (P, H); writes rows up to P (and sometimes beyond) first. */
async function moveSeam(tenant: string, w: Workload, c: Cluster, written: Written, rand: () => number, frac: number): Promise<void> {
  for (const spec of w.specs) {
    const shards = c.tables.get(spec.name)!;
    for (const sh of shards) {
      const key = `${spec.name}.${sh.bucket}`;
      const recs = w.records.filter((r) => r.table === spec.name && r.bucket === sh.bucket);
      if (recs.length === 0) continue;
      const pIndex = Math.min(recs.length - 1, Math.floor(recs.length * Math.min(1, frac + rand() * 0.2)));
      const P = recs[pIndex]!.lsn;
      // The sink may be ahead of the shard's P: those rows are in ClickHouse but must not count.
      const ahead = recs[Math.min(recs.length - 1, pIndex + Math.floor(rand() * 4))]!.lsn;
      const from = written.get(key) ?? 0;
      const segs = recs.filter((r) => r.lsn > from && r.lsn <= ahead).map((r) => ({ batch: r.batch, meta: { lsn: r.lsn, shard: sh.bucket } }));
      if (segs.length > 0) {
        const body = encodeRowBinarySegments(spec, segs);
        await insertRowBinary(ch, tenant, spec, body, { rows: segs.reduce((n, s) => n + s.batch.rows, 0), capabilities: info.capabilities });
        written.set(key, Math.max(from, ahead));
      }
      const H = T_BASE + Math.floor(SPAN * Math.min(1, frac + rand() * 0.15));
      sh.table.evict(P, H);
    }
  }
}

interface Case {
  readonly name: string;
  readonly query: Record<string, unknown>;
  readonly sql: string;
  /** Post-processing of oracle rows (EMA). */
  readonly fix?: (rows: unknown[][]) => unknown[][];
}

function cases(w: Workload, c: Cluster, rand: () => number): Case[] {
  const pick = (): number => T_BASE + Math.floor(rand() * SPAN);
  const horizons = [...c.tables.values()].flat().map((s) => s.table.horizonMicros);
  const H = Math.max(T_BASE + 1, horizons[Math.floor(rand() * horizons.length)]!);
  let a = pick();
  let b = pick();
  if (a > b) [a, b] = [b, a];
  const symsList: (readonly string[] | undefined)[] = [undefined, ["EARLY", w.symbols[1]!, "NOPE"], w.symbols.filter(() => rand() < 0.5)];
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

/** Runs every case on `engines` (aggregates pushed down, and cold rows fetched) and compares with the oracle. */
async function check(engines: readonly ProxistQueryEngine[], tenant: string, oracle: Oracle, list: readonly Case[], label: string): Promise<number> {
  let coldRows = 0;
  for (const c of list) {
    const want = await oracle.rows(c.sql);
    const aggregate = c.query.op === "bars" || c.query.op === "groupBy";
    for (const [e, engine] of (aggregate ? engines : engines.slice(0, 1)).entries()) {
      const r = await engine.execute(tenant, c.query);
      coldRows += r.coldRows;
      expect(r.notes).toEqual([]);
      const d = diffRows(outRows(r.table), c.fix ? c.fix(want) : want);
      expect(d, `${label} ${c.name} (engine ${e}): ${JSON.stringify(c.query)}`).toBeUndefined();
    }
  }
  return coldRows;
}

describe("query - seam property", () => {
  for (const seed of [1, 2, 3]) {
    it(`seam - every operator matches DuckDB as the seam moves (seed ${seed})`, async () => {
      const tenant = `qs${seed}`;
      const w = workload(seed);
      const c = buildHot(w, tenant);
      for (const spec of w.specs) await ensureSchema(ch, tenant, spec);
      const oracle = await oracleOf(w.ticks);
      const coldCh = new ClickhouseColdSource(ch);
      // The second engine's cold store takes no SQL: aggregates fetch cold rows instead of pushing down.
      const rowsOnly: ColdSource = { range: (...a) => coldCh.range(...a), edge: (...a) => coldCh.edge(...a) };
      const engine = [c.engine(coldCh), c.engine(rowsOnly)];
      const rand = rng(seed * 7919);
      const written: Written = new Map();
      let cold = 0;
      try {
        // Round 0: nothing evicted (all hot); then the seam moves forward three times.
        cold += await check(engine, tenant, oracle, cases(w, c, rand), `seed ${seed} round 0`);
        for (const [round, frac] of [0.2, 0.5, 0.85].entries()) {
          await moveSeam(tenant, w, c, written, rand, frac);
          for (let k = 0; k < 3; k++) cold += await check(engine, tenant, oracle, cases(w, c, rand), `seed ${seed} round ${round + 1}.${k}`);
        }
      } finally {
        oracle.close();
      }
      // The test is only meaningful if the cold side was read.
      expect(cold).toBeGreaterThan(0);
    });
  }

  it("seam - as-of and last-by just above H use the seam cache, not ClickHouse", async () => {
    const tenant = "qscache";
    const w = workload(5);
    const c = buildHot(w, tenant);
    for (const spec of w.specs) await ensureSchema(ch, tenant, spec);
    const inner = new ClickhouseColdSource(ch);
    const calls: string[] = [];
    const counting: ColdSource = {
      range: (s, a, b, sig) => (calls.push("range"), inner.range(s, a, b, sig)),
      edge: (s, side, ts, k, sig) => (calls.push(`edge ${side} ${k}`), inner.edge(s, side, ts, k, sig)),
    };
    await moveSeam(tenant, w, c, new Map(), rng(11), 0.5);
    const maxH = Math.max(...[...c.tables.values()].flat().map((s) => s.table.horizonMicros));
    const engine = c.engine(counting);
    const oracle = await oracleOf(w.ticks);
    try {
      const last = await engine.execute(tenant, { op: "lastBy", table: "trades", at: maxH });
      const aj = await engine.execute(tenant, { op: "asof", table: "trades", t0: maxH, t1: T_BASE + SPAN, right: { table: "quotes" } });
      expect(calls).toEqual([]);
      const want = await oracle.rows(`SELECT sym, ts, price, size FROM trades WHERE ts <= ${maxH} QUALIFY row_number() OVER (PARTITION BY sym ORDER BY ts DESC, lsn DESC, "row" DESC) = 1 ORDER BY sym`);
      expect(diffRows(outRows(last.table), want)).toBeUndefined();
      expect(aj.table.rows).toBeGreaterThan(0);
      // Below H the cold store is asked.
      await engine.execute(tenant, { op: "lastBy", table: "trades", at: T_BASE + SPAN / 10 });
      expect(calls.length).toBeGreaterThan(0);
    } finally {
      oracle.close();
    }
  });

  it("seam - without a cold store the result is hot only and says so", async () => {
    const tenant = "qsnocold";
    const w = workload(9);
    const c = buildHot(w, tenant);
    for (const sh of [...c.tables.values()].flat()) sh.table.evict(Number.MAX_SAFE_INTEGER, T_BASE + SPAN / 2);
    const engine = c.engine(undefined);
    const r = await engine.execute(tenant, { op: "range", table: "trades", t0: T_BASE, t1: T_BASE + SPAN });
    expect(r.notes.length).toBeGreaterThan(0);
    expect(r.notes[0]).toMatch(/hot rows only/);
    // Above the horizon nothing is missing.
    const above = await engine.execute(tenant, { op: "range", table: "trades", t0: T_BASE + SPAN / 2, t1: T_BASE + SPAN });
    expect(above.notes).toEqual([]);
    // lastBy above H answers from the seam cache, without ClickHouse.
    const last = await engine.execute(tenant, { op: "lastBy", table: "trades", at: T_BASE + SPAN });
    expect(last.notes).toEqual([]);
    expect(last.table.rows).toBe(new Set(w.ticks.filter((t) => t.table === "trades").map((t) => t.sym)).size);
  });
});
