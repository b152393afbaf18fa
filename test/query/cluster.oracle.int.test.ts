// The cluster against DuckDB: a 3-server NATS cluster, a real clickhouse-server
// and three Proxist node processes (`--shards assigned`, sinks on; trades 6
// shards and quotes 4, so join sides route differently). Publishers ingest a
// random workload (many symbols, equal timestamps, late ticks) in rounds while
// the seam moves (rows older than 5 s of data time are evicted once persisted);
// after each round every node answers every operator over gRPC exactly like
// DuckDB over every acknowledged tick (test/query/oracle.ts, the cases of
// test/query/cases.ts). Then one node is SIGKILLed: while its shards move, an
// answer is complete and exact, or incomplete with notes naming the missing
// shards (every other shard's rows exact), or UNAVAILABLE under
// `"consistency":"complete"`: never silently short.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status as Status } from "@grpc/grpc-js";
import { bucketOf } from "../../protocols/routing.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { IngestAck } from "../../protocols/ingest.js";
import { createToken } from "../../src/auth/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import { proxistCluster, waitPersistedOn, waitSpread } from "../helpers/nodecluster.js";
import type { ProxistCluster } from "../helpers/nodecluster.js";
import { NodeQuerier } from "../helpers/nodequery.js";
import type { NodeAnswer } from "../helpers/nodequery.js";
import { shardViews } from "../helpers/sink.js";
import { walTicks } from "../helpers/walticks.js";
import type { WalTicks } from "../helpers/walticks.js";
import { cases } from "./cases.js";
import { diffRows, oracleOf, symFilter } from "./oracle.js";
import type { Oracle } from "./oracle.js";
import { SPAN, T_BASE, rng } from "./fixture.js";

const TENANT = "orc";
const SPEC = parseClusterSpec({
  tenants: [
    {
      name: TENANT,
      tables: [
        { name: "trades", shards: 6, retention: { hotSeconds: 5 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] },
        { name: "quotes", shards: 4, retention: { hotSeconds: 5 }, columns: [{ name: "bid", type: "float64" }, { name: "ask", type: "float64" }] },
      ],
    },
  ],
});
const SPECS = SPEC.tenants[0]!.tables;
const IDS = ["n1", "n2", "n3"];
/** "EARLY" ticks only in the first tenth of the span, so it ends up wholly in ClickHouse. */
const SYMBOLS = ["EARLY", ...Array.from({ length: 47 }, (_, i) => `S${i}`)];
const BATCHES_PER_ROUND = 12;

let c: ProxistCluster;
let token: string;
const acks: IngestAck[] = [];
const rand = rng(2026);

/** A batch of `table` at data time `clock`: symbols at random, ts on a 1 ms grid (equal timestamps), 10% up to 6 s late. */
function batch(table: TableSpec, clock: number): TickBatch {
  const syms = SYMBOLS.filter((s) => s !== "EARLY" || clock < T_BASE + SPAN / 10);
  const n = 1 + Math.floor(rand() * 80);
  const symbolIndex = new Uint32Array(n);
  const ts = new Float64Array(n);
  const values = table.columns.map(() => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    symbolIndex[i] = Math.floor(rand() * syms.length);
    const late = rand() < 0.1 ? Math.floor(rand() * SPAN * 0.3) : Math.floor(rand() * 400_000);
    ts[i] = Math.max(T_BASE, Math.floor((clock - late) / 1000) * 1000);
    values[0]![i] = 100 + Math.round(rand() * 1000) / 100;
    values[1]![i] = table.name === "trades" ? 1 + Math.floor(rand() * 500) : values[0]![i]! + 0.05;
  }
  return { rows: n, symbols: syms, symbolIndex, ts, values };
}

/** Publishes the batches of data time [from, to) of the span for both tables; every one must be acknowledged. */
async function ingestRound(from: number, to: number): Promise<void> {
  const pubs = SPECS.map((s) => [s, new TickPublisher(c.nc, { tenant: TENANT, spec: s, maxInFlight: 4, timeoutMs: 5_000, maxAttempts: 10 })] as const);
  const pending: Promise<IngestAck>[] = [];
  for (let k = 1; k <= BATCHES_PER_ROUND; k++) {
    const clock = T_BASE + Math.floor((from + ((to - from) * k) / BATCHES_PER_ROUND) * SPAN);
    for (const [s, p] of pubs) pending.push(p.publish(batch(s, clock)));
  }
  acks.push(...(await Promise.all(pending)));
}

/** The WAL as the oracle sees it, after checking that it holds exactly the acknowledged records. */
async function acknowledged(): Promise<{ wal: WalTicks; oracle: Oracle }> {
  const wal = await walTicks(c.nc, TENANT, SPECS);
  expect(wal.duplicateMsgIds).toEqual([]);
  expect([...wal.lsns].sort((a, b) => a - b)).toEqual(acks.flatMap((a) => a.appends.map((x) => x.lsn)).sort((a, b) => a - b));
  return { wal, oracle: await oracleOf(wal.ticks) };
}

const querier = (id: string): NodeQuerier => new NodeQuerier(c.nodes.get(id)!.grpcPort, token);

/** Every random case on every node in `ids`, read-after-write at the WAL's end, against the oracle. */
async function checkAll(ids: readonly string[], label: string): Promise<number> {
  const { wal, oracle } = await acknowledged();
  const horizons = (await Promise.all(ids.map((id) => shardViews(c.nodes.get(id)!.httpPort, TENANT)))).flat().map((v) => v.horizonMicros);
  const qs = ids.map(querier);
  let checked = 0;
  try {
    for (const k of cases({ symbols: SYMBOLS, base: T_BASE, span: SPAN, horizons }, rand)) {
      const want = await oracle.rows(k.sql);
      for (const [i, q] of qs.entries()) {
        const got = await q.query({ ...k.query, minLsn: wal.maxLsn, consistency: "complete" });
        const where = `${label} ${ids[i]} ${k.name}: ${JSON.stringify(k.query)}`;
        expect(got.error, where).toBeUndefined();
        expect(got.notes, where).toEqual([]);
        expect(diffRows(got.rows, k.fix ? k.fix(want) : want), where).toBeUndefined();
        checked++;
      }
    }
  } finally {
    qs.forEach((q) => q.close());
    oracle.close();
  }
  return checked;
}

/** Queries asked while a node is dead; `sf(col)` restricts the oracle to the symbols whose shards answered. */
const KILL_QUERIES: { query: Record<string, unknown>; sql: (sf: (col?: string) => string) => string }[] = [
  { query: { op: "range", table: "trades" }, sql: (sf) => `SELECT sym, ts, price, size FROM trades WHERE true${sf()} ORDER BY ts, lsn, "row"` },
  {
    query: { op: "lastBy", table: "quotes" },
    sql: (sf) => `SELECT sym, ts, bid, ask FROM quotes WHERE true${sf()} QUALIFY row_number() OVER (PARTITION BY sym ORDER BY ts DESC, lsn DESC, "row" DESC) = 1 ORDER BY sym`,
  },
  {
    query: { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "count" }, { fn: "sum", column: "size" }] },
    sql: (sf) => `SELECT sym, count(*), CAST(sum(size) AS DOUBLE) FROM trades WHERE true${sf()} GROUP BY sym ORDER BY sym`,
  },
  {
    query: { op: "bars", table: "trades", t0: T_BASE, t1: T_BASE + SPAN, bucket: 2_000_000 },
    sql: (sf) => `SELECT sym, (ts // 2000000) * 2000000 AS bk, arg_min(price, (ts, lsn, "row")), max(price), min(price), arg_max(price, (ts, lsn, "row")),
        CAST(sum(size) AS DOUBLE), count(*), sum(price * size) / sum(size) FROM trades WHERE ts < ${T_BASE + SPAN}${sf()} GROUP BY sym, bk ORDER BY sym, bk`,
  },
  {
    query: { op: "asof", table: "trades", t0: T_BASE + SPAN / 2, t1: T_BASE + SPAN, right: { table: "quotes" } },
    sql: (sf) => `SELECT l.sym, l.ts, l.price, l.size, bk.ts, bk.bid, bk.ask FROM (
        SELECT l.*, (SELECT arg_max({'ts': q.ts, 'bid': q.bid, 'ask': q.ask}, (q.ts, q.lsn, q."row")) FROM quotes q WHERE q.sym = l.sym AND q.ts <= l.ts) AS bk
        FROM trades l WHERE l.ts >= ${T_BASE + SPAN / 2} AND l.ts < ${T_BASE + SPAN}${sf("l.sym")}) l ORDER BY l.ts, l.lsn, l."row"`,
  },
];

const NOTE = /^table (trades|quotes) shard (\d+): (missing|lagging)/;

interface KillTally {
  complete: number;
  incomplete: number;
  unavailable: number;
}

/** One answer during the move: complete and exact, or every note names a shard of the dead node and every other shard's symbols are exact. */
async function judge(oracle: Oracle, k: (typeof KILL_QUERIES)[number], got: NodeAnswer, dead: ReadonlySet<string>, strict: boolean, tally: KillTally, where: string): Promise<void> {
  if (got.error !== undefined) {
    // Only "complete" queries may fail, and only for missing shards.
    expect({ where, strict, code: got.error.code }).toEqual({ where, strict: true, code: Status.UNAVAILABLE });
    expect(got.error.details, where).toMatch(/table (trades|quotes) shard \d+/);
    tally.unavailable++;
    return;
  }
  if (got.complete) {
    expect(got.notes, where).toEqual([]);
    const wantRows = await oracle.rows(k.sql(() => ""));
    expect(diffRows(got.rows, wantRows), where).toBeUndefined();
    tally.complete++;
    return;
  }
  expect(strict, `${where}: an incomplete answer under consistency complete`).toBe(false);
  expect(got.notes.length, where).toBeGreaterThan(0);
  const noted = new Set<string>();
  for (const n of got.notes) {
    const m = NOTE.exec(n);
    expect(m, `${where}: note ${n}`).not.toBeNull();
    noted.add(`${m![1]}.${m![2]}`);
  }
  for (const s of noted) expect(dead, `${where}: note on shard ${s}, which the dead node did not own`).toContain(s);
  const answered = SYMBOLS.filter((s) => !noted.has(`trades.${bucketOf(s, 6)}`) && !noted.has(`quotes.${bucketOf(s, 4)}`));
  const rows = got.rows.filter((r) => answered.includes(r[0] as string));
  expect(diffRows(rows, await oracle.rows(k.sql((col) => symFilter(answered, col)))), `${where}: the shards that answered`).toBeUndefined();
  tally.incomplete++;
}

beforeAll(async () => {
  c = await proxistCluster(SPEC, {}, [], { clickhouse: true });
  await c.spawn(IDS);
  await waitSpread(c, IDS, 60_000);
  token = await createToken(c.nc, { tenant: TENANT, role: "reader", replicas: 3 });
}, 180_000);

afterAll(async () => {
  await c?.close();
});

async function persisted(ids: readonly string[]): Promise<void> {
  for (const s of SPECS) await waitPersistedOn(c, TENANT, s.name, ids);
}

describe("cluster - every node answers like DuckDB over the acknowledged ticks", () => {
  it("cluster oracle - every operator on every node process equals DuckDB as the seam moves; a SIGKILLed node's shards are named, never silently missing", async () => {
    let checked = 0;
    await ingestRound(0, 0.3);
    await persisted(IDS);
    checked += await checkAll(IDS, "round 1 (persisted)");
    // Right after ingest: the sinks persist and the shards evict while the queries run.
    await ingestRound(0.3, 0.55);
    checked += await checkAll(IDS, "round 2 (seam moving)");
    await ingestRound(0.55, 0.8);
    await persisted(IDS);
    checked += await checkAll(IDS, "round 3 (persisted)");
    // Rows left RAM: the answers above stitched ClickHouse and the hot sets.
    const hot = (await Promise.all(IDS.map((id) => shardViews(c.nodes.get(id)!.httpPort, TENANT)))).flat().reduce((n, v) => n + v.rows, 0);
    const { wal, oracle } = await acknowledged();
    expect(hot).toBeLessThan(wal.ticks.length);

    // Kill a node that is not the leader (the leader kill is test/control/leaderkill.int.test.ts).
    const leader = (await c.stores.lease.read())!.record.holder;
    const before = await c.liveShards(IDS);
    const owned = (id: string): string[] => [...before].filter(([, o]) => o[0]![0] === id).map(([k]) => k.slice(TENANT.length + 1));
    const victim = IDS.filter((id) => id !== leader).sort((a, b) => owned(b).length - owned(a).length)[0]!;
    const dead = new Set(owned(victim));
    expect(dead.size).toBeGreaterThan(0);
    const survivors = IDS.filter((id) => id !== victim);
    const qs = survivors.map(querier);
    const tally: KillTally = { complete: 0, incomplete: 0, unavailable: 0 };
    try {
      await c.signal(victim, "SIGKILL");
      const killedAt = Date.now();
      // Until every shard is live on a survivor, and one pass after that.
      for (let settled = false, last = false; !last; ) {
        last = settled;
        for (const [i, q] of qs.entries()) {
          for (const k of KILL_QUERIES) {
            for (const strict of [false, true]) {
              const got = await q.query(strict ? { ...k.query, consistency: "complete" } : k.query);
              await judge(oracle, k, got, dead, strict, tally, `${survivors[i]} ${strict ? "complete " : ""}${JSON.stringify(k.query)} at +${Date.now() - killedAt} ms`);
            }
          }
        }
        const live = await c.liveShards(survivors);
        settled = (await c.shardKeys()).every((key) => live.get(key)?.length === 1);
        if (Date.now() - killedAt > 90_000) throw new Error(`shards of ${victim} not live on ${survivors.join(",")} after 90 s`);
      }
      console.log(`cluster oracle: killed ${victim} (${[...dead].join(" ")}); answers while its shards moved: ${JSON.stringify(tally)}`);
    } finally {
      qs.forEach((q) => q.close());
      oracle.close();
    }
    // The node timeout is 2 s: the first queries after the kill found its shards missing.
    expect(tally.incomplete + tally.unavailable).toBeGreaterThan(0);

    // The survivors own everything; more ingest and a last full check on them.
    await ingestRound(0.8, 1);
    await persisted(survivors);
    checked += await checkAll(survivors, "round 4 (after the kill)");
    console.log(`cluster oracle: ${checked} answers checked against DuckDB`);
  }, 600_000);
});
