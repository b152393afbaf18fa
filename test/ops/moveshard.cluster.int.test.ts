// pxctl move shard against node processes (--shards assigned, a 3-server NATS
// cluster, a real clickhouse-server): during ingest one shard moves from the
// node holding more shards to the other (the live node with the fewest
// shards), pxctl follows it until it is live there, it stays there over many
// reconciles (same lease revision), every acked tick is in ClickHouse exactly
// once (the old owner's sink fenced as in a drain) and queries through each
// node answer the WAL's rows completely. --clear sends it back home.
// Refusals: an unknown shard, a target that is not a live node.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { IngestAck } from "../../protocols/ingest.js";
import { runPxctl } from "../../src/cli/commands.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { createToken } from "../../src/auth/index.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { testNatsAuth } from "../helpers/cluster.js";
import { proxistCluster, waitEachShardLiveOnce, waitPersistedOn, waitSpread } from "../helpers/nodecluster.js";
import type { ProxistCluster } from "../helpers/nodecluster.js";
import { publishUntilStopped } from "../helpers/pump.js";
import { exactlyOnceReport } from "../helpers/sink.js";
import { NodeQuerier } from "../helpers/nodequery.js";
import { replayDigests } from "../helpers/replay.js";
import { walTicks } from "../helpers/walticks.js";
import { diffRows, oracleOf } from "../query/oracle.js";

const TENANT = "mv";
const SPEC = parseClusterSpec({
  tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 6, retention: { hotSeconds: 1 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] }] }],
});
const TRADES = SPEC.tenants[0]!.tables[0]!;
const IDS = ["n1", "n2"];

let c: ProxistCluster;
beforeAll(async () => {
  c = await proxistCluster(SPEC, {}, [], { clickhouse: true });
  await c.spawn(IDS);
  await waitSpread(c, IDS, 60_000);
}, 180_000);
afterAll(async () => {
  await c?.close();
});

async function pxctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const env = { PX_NATS_CREDS: (await testNatsAuth()).credsPath("admin") };
  const code = await runPxctl(["--nats", c.nats.urls, ...argv], { stdout: (t) => out.push(t), stderr: (t) => err.push(t), readFile: async () => "", prompt: async () => "y", env }).catch((e: unknown) => {
    err.push((e as Error).message);
    return -1;
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("pxctl move shard", () => {
  it("move - an unknown shard and a target that is not a live node are refused by name", async () => {
    const unknown = await pxctl("move", "shard", "trades/99");
    expect(unknown.code, unknown.err).toBe(EXIT.notFound);
    expect(unknown.err).toMatch(/move: shard trades\/99 does not exist: table mv.trades has 6 shards \(0-5\)/);
    const dead = await pxctl("move", "shard", "trades/0", "--to", "n9");
    expect(dead.code, dead.err).toBe(EXIT.usage);
    expect(dead.err).toMatch(/move: target node n9 is not a live running node \(live: n[12]\)/);
  }, 30_000);

  it("move - during ingest the shard moves to the less loaded node, is live there, stays there; 0 acked ticks lost or doubled; queries answer completely; --clear sends it home", async () => {
    const owned = async (id: string) => [...(await c.liveShards([id])).keys()].sort();
    const from = (await owned("n1")).length >= (await owned("n2")).length ? "n1" : "n2";
    const to = from === "n1" ? "n2" : "n1";
    const key = (await owned(from))[0]!;
    const bucket = key.split(".")[2]!;

    const acks: IngestAck[] = [];
    const walk = new RandomWalk(symbolNames(100), 7, 1.75e15);
    const ingest = publishUntilStopped(new TickPublisher(c.nc, { tenant: TENANT, spec: TRADES, maxInFlight: 4, timeoutMs: 1_000, maxAttempts: 20 }), () => walk.trades(200, 200_000), acks, 2);
    await new Promise((r) => setTimeout(r, 1_500));

    const r = await pxctl("move", "shard", `trades/${bucket}`, "--wait", "60000");
    expect(r.code, `${r.out}\n${r.err}`).toBe(EXIT.ok);
    expect(r.out).toMatch(new RegExp(`^shard ${key.replace(/\./g, "\\.")} moves from ${from} to ${to} \\(the live node with the fewest shards`));
    expect(r.out).toMatch(new RegExp(`moved ${key.replace(/\./g, "\\.")} from ${from} to ${to} in [\\d.]+ s: live there \\(lease revision \\d+\\)`));
    console.log(`move shard:\n${r.out}`);
    const live = await c.liveShards(IDS);
    expect(live.get(key)?.map(([id]) => id)).toEqual([to]);

    // Many reconciles (1 s each) later it is still there, never re-assigned.
    const assigned = (await c.stores.assignments.read()).get(key)!;
    expect(assigned.node).toBe(to);
    await new Promise((r) => setTimeout(r, 4_000));
    expect((await c.stores.assignments.read()).get(key)).toEqual(assigned);
    await ingest.stop();

    // Every acked tick in ClickHouse exactly once: the old owner's sink was fenced by the new lease revision.
    const wal = await walTicks(c.nc, TENANT, [TRADES]);
    const acked = acks.flatMap((a) => a.appends.map((x) => x.lsn));
    expect(acked.length).toBeGreaterThan(0);
    expect(acked.filter((l) => !wal.lsns.has(l))).toEqual([]);
    const expected = await replayDigests(c.nc, TENANT, [TRADES]);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const now = await c.liveShards(IDS);
      const behind = [...expected].filter(([k, e]) => (now.get(k)?.length ?? 0) !== 1 || now.get(k)![0]![1].appliedLsn < e.appliedLsn);
      if (behind.length === 0) break;
      if (Date.now() > deadline) throw new Error(`shards did not catch up: ${behind.map(([k]) => k).join(", ")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitPersistedOn(c, TENANT, "trades", IDS);
    expect(await exactlyOnceReport(c.clickhouse!.ch, c.nc, TENANT, TRADES)).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0, walRows: wal.ticks.length });

    // Queries through each node (hot rows and ClickHouse stitched) return the WAL's rows, complete.
    const oracle = await oracleOf(wal.ticks);
    const token = await createToken(c.nc, { tenant: TENANT, role: "reader", replicas: 3 });
    try {
      const want = await oracle.rows(`SELECT sym, ts, price, size FROM trades ORDER BY ts, lsn, "row"`);
      for (const id of IDS) {
        const q = new NodeQuerier(c.nodes.get(id)!.grpcPort, token);
        try {
          const range = await q.query({ op: "range", table: "trades", consistency: "complete", minLsn: wal.maxLsn });
          expect(range.error).toBeUndefined();
          expect({ id, complete: range.complete, diff: diffRows(range.rows, want) }).toEqual({ id, complete: true, diff: undefined });
        } finally {
          q.close();
        }
      }
    } finally {
      oracle.close();
    }

    // --clear: the override goes and the shard returns to where placement puts it (its old node).
    const cleared = await pxctl("move", "shard", `trades/${bucket}`, "--clear");
    expect(cleared.code, cleared.err).toBe(EXIT.ok);
    expect(cleared.out).toMatch(new RegExp(`placement override of ${key.replace(/\./g, "\\.")} \\(to ${to}\\) cleared`));
    await waitEachShardLiveOnce(c, IDS, 60_000);
    const deadline2 = Date.now() + 30_000;
    while ((await c.liveShards(IDS)).get(key)?.[0]?.[0] !== from && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 200));
    expect((await c.liveShards(IDS)).get(key)?.map(([id]) => id)).toEqual([from]);

    // Both changes are in the operations event log, in order, and a clear of nothing is not.
    const nothing = await pxctl("move", "shard", `trades/${bucket}`, "--clear");
    expect(nothing.out).toMatch(/has no placement override; nothing to clear/);
    const events = await pxctl("events", "--last", "200");
    expect(events.code, events.err).toBe(EXIT.ok);
    const moves = events.out.split("\n").filter((l) => /shard\.move/.test(l) && l.includes(key));
    expect(moves, events.out).toHaveLength(2);
    expect(moves[0]).toMatch(new RegExp(`shard\\.move .*pxctl move shard: shard ${key.replace(/\./g, "\\.")} moves from ${from} to ${to}`));
    expect(moves[1]).toMatch(/shard\.move_cleared .*pxctl move shard: placement override of .* cleared/);
  }, 240_000);
});
