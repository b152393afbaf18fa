// Failover with real processes: a 3-server NATS cluster (R3 WAL and KV), three
// Proxist nodes in `--shards assigned` mode. SIGKILL one during ingest: its
// shards go live on the survivors and no acknowledged tick is lost or
// duplicated. SIGSTOP the leader past its lease, then SIGCONT: another node
// leads and the old leader is fenced (steps down, writes nothing).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { CONTROL_DEFAULTS } from "../../src/node/control/index.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { IngestAck } from "../../protocols/ingest.js";
import { publishUntilStopped } from "../helpers/pump.js";
import type { Running } from "../helpers/pump.js";
import { readWal } from "../helpers/wal.js";
import { replayDigests } from "../helpers/replay.js";
import { proxistCluster, waitEachShardLiveOnce, waitSpread } from "../helpers/nodecluster.js";
import type { ProxistCluster } from "../helpers/nodecluster.js";

const SPEC = parseClusterSpec({
  tenants: [{ name: "fo", tables: [{ name: "trades", shards: 6, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
});
const trades = SPEC.tenants[0]!.tables[0]!;
const IDS = ["n1", "n2", "n3"];

let c: ProxistCluster;
const walk = new RandomWalk(symbolNames(200), 7, 1.75e15);
const acks: IngestAck[] = [];

/** Ingests until stopped; only acknowledged batches count (a batch caught by a dying node is retried with the same seq). */
function pump(): Running {
  const p = new TickPublisher(c.nc, { tenant: "fo", spec: trades, maxInFlight: 4, timeoutMs: 1_000, maxAttempts: 10 });
  return publishUntilStopped(p, () => walk.trades(200, 200_000), acks, 4);
}

/** Every acked LSN is in the WAL, no batch is there twice, and each live shard equals the replay of the WAL. */
async function expectExactlyOnce(ids: readonly string[]): Promise<void> {
  const wal = await readWal(c.nc, "fo");
  const lsns = new Set(wal.map((r) => r.lsn));
  const acked = acks.flatMap((a) => a.appends.map((x) => x.lsn));
  expect(acked.length).toBeGreaterThan(0);
  expect(acked.filter((l) => !lsns.has(l)), "acked LSNs missing from the WAL").toEqual([]);
  expect(new Set(wal.map((r) => r.msgId)).size, "a batch stored twice").toBe(wal.length);

  const expected = await replayDigests(c.nc, "fo", [trades]);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const live = await c.liveShards(ids, true);
    const behind = [...expected].filter(([k, e]) => {
      const owners = live.get(k) ?? [];
      return owners.length !== 1 || owners[0]![1].appliedLsn < e.appliedLsn;
    });
    if (behind.length === 0) {
      for (const [k, e] of expected) {
        const s = live.get(k)![0]![1];
        expect(s.rows, `rows of ${k}`).toBe(e.rows);
        expect(s.digest, `digest of ${k}`).toBe(e.digest);
      }
      return;
    }
    if (Date.now() > deadline) throw new Error(`shards did not catch up: ${behind.map(([k]) => k).join(", ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const leaderLines = (id: string): number => (c.nodes.get(id)?.output().match(/controller \S+: leader \(term/g) ?? []).length;

beforeAll(async () => {
  c = await proxistCluster(SPEC);
  await c.spawn(IDS);
  await waitSpread(c, IDS, 30_000);
});

afterAll(async () => {
  await c?.close();
});

describe("control - failover of real nodes on a 3-server NATS cluster", () => {
  it("failover - SIGKILL a node during ingest: its shards go live on the survivors, no acked tick lost or duplicated", async () => {
    const leader = (await c.stores.lease.read())!.record.holder;
    const victim = IDS.find((id) => id !== leader)!;
    const survivors = IDS.filter((id) => id !== victim);
    const before = await c.liveShards(IDS);
    const moved = [...before].filter(([, o]) => o[0]![0] === victim).map(([k]) => k);
    expect(moved.length).toBeGreaterThan(0);

    const ingest = pump();
    await new Promise((r) => setTimeout(r, 1_500));
    const killedAt = Date.now();
    await c.signal(victim, "SIGKILL");
    const live = await waitEachShardLiveOnce(c, survivors, 20_000);
    const toLive = Date.now() - killedAt;
    for (const k of moved) expect(survivors).toContain(live.get(k)![0]![0]);
    // Ingest went on through the failover.
    const acksAtLive = acks.length;
    await new Promise((r) => setTimeout(r, 1_000));
    await ingest.stop();
    expect(acks.length).toBeGreaterThan(acksAtLive);
    expect(toLive).toBeLessThan(CONTROL_DEFAULTS.nodeTimeoutMs + 10_000);

    await expectExactlyOnce(survivors);
    const assign = await c.stores.assignments.read();
    for (const k of await c.shardKeys()) expect(assign.get(k)?.node, k).toBe(live.get(k)![0]![0]);
  });

  it("fencing - SIGSTOP the leader past its lease, SIGCONT: a new leader took over, the old one is fenced", async () => {
    const old = (await c.stores.lease.read())!;
    const oldLeader = old.record.holder;
    expect([...c.nodes.keys()]).toContain(oldLeader);
    const other = [...c.nodes.keys()].find((id) => id !== oldLeader)!;
    const ingest = pump();

    await c.signal(oldLeader, "SIGSTOP");
    const stoppedAt = Date.now();
    let lease = old;
    while (lease.record.holder === oldLeader || lease.record.term <= old.record.term) {
      if (Date.now() - stoppedAt > 3 * CONTROL_DEFAULTS.leaseMs) throw new Error(`no new leader: ${JSON.stringify(lease.record)}`);
      await new Promise((r) => setTimeout(r, 100));
      lease = (await c.stores.lease.read()) ?? lease;
    }
    expect(lease.record.holder).toBe(other);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(CONTROL_DEFAULTS.leaseMs - CONTROL_DEFAULTS.leaseMs / 3 - 200);
    const newTerm = lease.record.term;
    // The new leader moved the sleeper's shards to itself: everything is live on the one awake node.
    await waitEachShardLiveOnce(c, [other], 20_000);
    expect(await c.stores.assignments.marker()).toMatchObject({ holder: other, term: newTerm });
    const electedBefore = leaderLines(oldLeader);

    c.nodes.get(oldLeader)!.child.kill("SIGCONT");
    // The old leader finds its lease gone and steps down instead of writing.
    const deadline = Date.now() + 15_000;
    while (!/controller \S+: stepped down/.test(c.nodes.get(oldLeader)!.output())) {
      if (Date.now() > deadline) throw new Error(`old leader did not step down:\n${c.nodes.get(oldLeader)!.output().split("\n").slice(-30).join("\n")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // It rejoins as a follower; each shard is live once across both nodes.
    await waitEachShardLiveOnce(c, [oldLeader, other], 30_000);
    await new Promise((r) => setTimeout(r, 1_000));
    await ingest.stop();
    expect(leaderLines(oldLeader)).toBe(electedBefore);
    expect((await c.stores.lease.read())?.record).toMatchObject({ holder: other, term: newTerm });
    expect(await c.stores.assignments.marker()).toMatchObject({ holder: other, term: newTerm });
    for (const a of (await c.stores.assignments.read()).values()) expect(a.term).toBeLessThanOrEqual(newTerm);
    await expectExactlyOnce([oldLeader, other]);
    const assign = await c.stores.assignments.read();
    const live = await c.liveShards([oldLeader, other]);
    for (const k of await c.shardKeys()) expect(assign.get(k)?.node, k).toBe(live.get(k)![0]![0]);
  });
});
