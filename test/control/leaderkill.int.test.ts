// Leader kill with ClickHouse: a 3-server NATS cluster, a real clickhouse-server
// and three Proxist node processes with sinks (rows older than 1 s of data time
// are evicted once persisted, so queries read ClickHouse too). During ingest the
// node holding the control-plane lease is SIGKILLed: a survivor is elected, the
// dead node's shards go live on the survivors, no acknowledged tick is lost or
// stored twice (WAL, hot sets, ClickHouse by (_lsn, _row)), and a query through
// each survivor returns exactly the WAL's rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TickPublisher } from "../../src/client/publisher.js";
import { createToken } from "../../src/auth/index.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { IngestAck } from "../../protocols/ingest.js";
import { publishUntilStopped } from "../helpers/pump.js";
import type { Running } from "../helpers/pump.js";
import { replayDigests } from "../helpers/replay.js";
import { proxistCluster, waitEachShardLiveOnce, waitPersistedOn, waitSpread } from "../helpers/nodecluster.js";
import type { ProxistCluster } from "../helpers/nodecluster.js";
import { exactlyOnceReport } from "../helpers/sink.js";
import { NodeQuerier } from "../helpers/nodequery.js";
import { walTicks } from "../helpers/walticks.js";
import { diffRows, oracleOf } from "../query/oracle.js";

const TENANT = "lk";
const SPEC = parseClusterSpec({
  tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 12, retention: { hotSeconds: 1 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] }] }],
});
const TRADES = SPEC.tenants[0]!.tables[0]!;
const IDS = ["n1", "n2", "n3"];

let c: ProxistCluster;
const walk = new RandomWalk(symbolNames(200), 11, 1.75e15);
const acks: IngestAck[] = [];

/** Ingests until stopped; only acknowledged batches count (a batch caught by a dying node is retried with the same seq). */
function pump(): Running {
  const p = new TickPublisher(c.nc, { tenant: TENANT, spec: TRADES, maxInFlight: 4, timeoutMs: 1_000, maxAttempts: 20 });
  return publishUntilStopped(p, () => walk.trades(200, 200_000), acks, 3);
}

beforeAll(async () => {
  c = await proxistCluster(SPEC, {}, [], { clickhouse: true });
  await c.spawn(IDS);
  await waitSpread(c, IDS, 60_000);
}, 180_000);

afterAll(async () => {
  await c?.close();
});

describe("control - leader kill with ClickHouse on node processes", () => {
  it("failover - SIGKILL the leader during ingest: shards move and go live, 0 acked ticks lost, 0 duplicated in ClickHouse, survivors answer the acked set", async () => {
    const leader = (await c.stores.lease.read())!.record.holder;
    const survivors = IDS.filter((id) => id !== leader);
    const before = await c.liveShards(IDS);
    const moved = [...before].filter(([, o]) => o[0]![0] === leader).map(([k]) => k);
    // Placement is rendezvous hashing of fixed node ids and shard keys: 12 shards give every node some.
    expect(moved.length, `the leader ${leader} holds no shard`).toBeGreaterThan(0);

    const ingest = pump();
    await new Promise((r) => setTimeout(r, 2_000));
    const killedAt = performance.now();
    await c.signal(leader, "SIGKILL");
    const live = await waitEachShardLiveOnce(c, survivors, 60_000, 20);
    const toLiveS = (performance.now() - killedAt) / 1000;
    console.log(`leader kill: ${leader} (${moved.length} shards) SIGKILLed; every shard live on ${survivors.join(",")} after ${toLiveS.toFixed(3)} s`);
    for (const k of moved) expect(survivors).toContain(live.get(k)![0]![0]);
    const newLeader = (await c.stores.lease.read())!.record.holder;
    expect(survivors).toContain(newLeader);
    // Ingest goes on through the failover.
    const acksAtLive = acks.length;
    await new Promise((r) => setTimeout(r, 1_500));
    await ingest.stop();
    expect(acks.length).toBeGreaterThan(acksAtLive);

    // WAL: every acked LSN is there, no batch twice.
    const wal = await walTicks(c.nc, TENANT, [TRADES]);
    const acked = acks.flatMap((a) => a.appends.map((x) => x.lsn));
    expect(acked.filter((l) => !wal.lsns.has(l)), "acked LSNs missing from the WAL").toEqual([]);
    expect(wal.duplicateMsgIds, "batches stored twice").toEqual([]);

    // Hot sets: each shard live once on a survivor and caught up with the WAL (their rows are checked by the queries below:
    // eviction makes a hot set's digest differ from a replay of the whole WAL).
    const expected = await replayDigests(c.nc, TENANT, [TRADES]);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const now = await c.liveShards(survivors);
      const behind = [...expected].filter(([k, e]) => (now.get(k)?.length ?? 0) !== 1 || now.get(k)![0]![1].appliedLsn < e.appliedLsn);
      if (behind.length === 0) {
        // Rows were evicted, so the queries below stitch ClickHouse and RAM.
        expect([...now.values()].reduce((n, o) => n + o[0]![1].rows, 0)).toBeLessThan(wal.ticks.length);
        break;
      }
      if (Date.now() > deadline) throw new Error(`shards did not catch up: ${behind.map(([k]) => k).join(", ")}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    // ClickHouse: every WAL row exactly once by (_lsn, _row).
    await waitPersistedOn(c, TENANT, "trades", survivors);
    const report = await exactlyOnceReport(c.clickhouse!.ch, c.nc, TENANT, TRADES);
    expect(report).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    expect(report.walRows).toBe(wal.ticks.length);

    // Queries through each survivor (hot rows and ClickHouse stitched) equal the WAL's rows.
    const oracle = await oracleOf(wal.ticks);
    const token = await createToken(c.nc, { tenant: TENANT, role: "reader", replicas: 3 });
    try {
      const want = await oracle.rows(`SELECT sym, ts, price, size FROM trades ORDER BY ts, lsn, "row"`);
      const wantLast = await oracle.rows(`SELECT sym, ts, price, size FROM trades QUALIFY row_number() OVER (PARTITION BY sym ORDER BY ts DESC, lsn DESC, "row" DESC) = 1 ORDER BY sym`);
      for (const id of survivors) {
        const q = new NodeQuerier(c.nodes.get(id)!.grpcPort, token);
        try {
          const range = await q.query({ op: "range", table: "trades", consistency: "complete", minLsn: wal.maxLsn });
          expect(range.error).toBeUndefined();
          expect({ id, complete: range.complete, diff: diffRows(range.rows, want) }).toEqual({ id, complete: true, diff: undefined });
          const last = await q.query({ op: "lastBy", table: "trades", consistency: "complete" });
          expect({ id, diff: diffRows(last.rows, wantLast) }).toEqual({ id, diff: undefined });
        } finally {
          q.close();
        }
      }
    } finally {
      oracle.close();
    }
  }, 300_000);
});
