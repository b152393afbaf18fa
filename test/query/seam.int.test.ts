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
import { diffRows, oracleOf, outRows } from "./oracle.js";
import type { Oracle } from "./oracle.js";
import { cases } from "./cases.js";
import type { Case, CaseSpace } from "./cases.js";

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

/** What the cases draw from: the workload's symbols and span, and the shards' horizons now. */
const spaceOf = (w: Workload, c: Cluster): CaseSpace => ({ symbols: w.symbols, base: T_BASE, span: SPAN, horizons: [...c.tables.values()].flat().map((s) => s.table.horizonMicros) });

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
        cold += await check(engine, tenant, oracle, cases(spaceOf(w, c), rand), `seed ${seed} round 0`);
        for (const [round, frac] of [0.2, 0.5, 0.85].entries()) {
          await moveSeam(tenant, w, c, written, rand, frac);
          for (let k = 0; k < 3; k++) cold += await check(engine, tenant, oracle, cases(spaceOf(w, c), rand), `seed ${seed} round ${round + 1}.${k}`);
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
