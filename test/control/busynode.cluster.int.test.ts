// A node whose main thread is busy (a long synchronous query: simulated by the
// test entry's main.block-on-sigusr2 failpoint, 5 s against a node timeout of
// 2 s) keeps its shards: the heartbeat thread goes on putting its heartbeat.
// Negative control: the same node with the heartbeat thread off
// (PX_HEARTBEAT_GRACE_MS=0) loses its shards to the others. One cluster: a
// first node that leads the control plane (started alone, so it wins the lease
// and keeps it), then the covered node and the control, each blocked in turn
// (a blocked leader would hand over its lease, which is another story).
// The control's shards come back only after the placement settle period
// (PX_PLACEMENT_SETTLE_MS, 5 s here): not while it flaps back, then its share
// in one step. BUSYNODE_SETTLE_MS=0 is that part's negative control (they come
// back within seconds, as before hysteresis).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { proxistCluster, waitEachShardLiveOnce, waitSpread } from "../helpers/nodecluster.js";
import type { ProxistCluster } from "../helpers/nodecluster.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { Assignment } from "../../src/control/index.js";

const SPEC = parseClusterSpec({
  tenants: [{ name: "busy", tables: [{ name: "trades", shards: 9, columns: [{ name: "price", type: "float64" }] }] }],
});
const BLOCK_MS = 5_000;
// 5 s: well above the ~1.5 s in which the shards come back without a settle period (the negative control), and
// it is waited out twice in this file (the joining nodes in beforeAll, the control's return).
const SETTLE_MS = Number(process.env.BUSYNODE_SETTLE_MS ?? 5_000);

let c: ProxistCluster;
beforeAll(async () => {
  c = await proxistCluster(SPEC, { PX_PLACEMENT_SETTLE_MS: String(SETTLE_MS) });
  await c.spawn(["lead"]);
  const deadline = Date.now() + 30_000;
  while ((await c.stores.lease.read())?.record.holder !== "lead") {
    if (Date.now() > deadline) throw new Error("node lead did not become the leader within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  // Started by hand: each node gets its own environment (the covered one and the control).
  const args = ["--shards", "assigned", "--grpc-port", "0"];
  const base = { PX_REPLICAS: "3", PX_FAILPOINTS: "main.block-on-sigusr2", PX_BLOCK_MS: String(BLOCK_MS), PX_PLACEMENT_SETTLE_MS: String(SETTLE_MS) };
  const [covered, bare] = await Promise.all([
    spawnNodeProcess(c.nats.urls, base, [...args, "--node-id", "covered"]),
    spawnNodeProcess(c.nats.urls, { ...base, PX_HEARTBEAT_GRACE_MS: "0" }, [...args, "--node-id", "bare"]),
  ]);
  c.nodes.set("covered", covered);
  c.nodes.set("bare", bare);
  // The two join a leader that may have settled already: they get their shares once they have settled.
  await waitSpread(c, ["lead", "covered", "bare"], 90_000);
}, 150_000);
afterAll(async () => {
  await c?.close();
});

const owners = async (): Promise<Map<string, Assignment>> => c.stores.assignments.read();
const ownedBy = (m: Map<string, Assignment>, node: string): string[] => [...m].filter(([, a]) => a.node === node).map(([k]) => k).sort();

/** Blocks `node`'s main thread for BLOCK_MS; returns the assignments before and every sample taken until well after the block. */
async function blockAndSee(node: string): Promise<{ before: Map<string, Assignment>; samples: Map<string, Assignment>[] }> {
  const before = await owners();
  expect(ownedBy(before, node).length).toBeGreaterThan(0);
  expect((await c.stores.lease.read())?.record.holder).toBe("lead");
  await c.signal(node, "SIGUSR2");
  const samples: Map<string, Assignment>[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < BLOCK_MS + 1_500) {
    samples.push(await owners());
    await new Promise((r) => setTimeout(r, 200));
  }
  return { before, samples };
}

/** Waits for the node's log line saying its heartbeat thread runs (it boots TypeScript through tsx: seconds on a busy machine). */
async function heartbeatThreadUp(node: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!/heartbeat thread running/.test(c.nodes.get(node)!.output())) {
    if (Date.now() > deadline) throw new Error(`node ${node}: no "heartbeat thread running" line within 60 s:\n${c.nodes.get(node)!.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("a busy node keeps its shards", () => {
  it("busy node - the main thread blocked 5 s (node timeout 2 s): the heartbeat thread keeps the node's shards where they were", async () => {
    await heartbeatThreadUp("covered");
    const { before, samples } = await blockAndSee("covered");
    // At no moment did a shard of the blocked node go elsewhere (or come back under a new lease revision).
    for (const m of samples) for (const k of ownedBy(before, "covered")) expect([m.get(k)?.node, m.get(k)?.leaseRevision]).toEqual(["covered", before.get(k)!.leaseRevision]);
    // It answers again: its shards are live on it.
    await waitEachShardLiveOnce(c, ["lead", "covered", "bare"], 30_000);
    expect(c.nodes.get("covered")!.output()).toMatch(/main thread was busy for \d+ ms; the heartbeat thread kept the node's heartbeat/);
  }, 60_000);

  it("busy node - negative control: without the heartbeat thread (PX_HEARTBEAT_GRACE_MS=0) the same block moves the node's shards away; they come back only after the settle period, then nothing moves", async () => {
    const { before, samples } = await blockAndSee("bare");
    const t0 = Date.now() - (BLOCK_MS + 1_500);
    const moved = ownedBy(before, "bare").filter((k) => samples.some((m) => m.get(k)?.node !== "bare"));
    expect(moved.length).toBeGreaterThan(0);
    // Awake again (it heartbeats from the block's end), but settling: it gets nothing back for the settle period.
    const awake = t0 + BLOCK_MS;
    let back: number | undefined;
    while (back === undefined && Date.now() - awake < SETTLE_MS + 15_000) {
      if (ownedBy(await owners(), "bare").length > 0) back = Date.now();
      else await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`busy node: bare awake at +${awake - t0} ms, owns shards again at ${back === undefined ? "never" : `+${back - t0} ms`} (settle ${SETTLE_MS} ms)`);
    expect(back).toBeDefined();
    // The 5 s settle less a second of slack (fails with BUSYNODE_SETTLE_MS=0, the negative control).
    expect(back! - awake).toBeGreaterThanOrEqual(4_000);
    // Its share (floor(9 / 3)) in one step (a second for the leader's writes of that step); then nothing moves.
    await new Promise((r) => setTimeout(r, 1_000));
    const settled = await owners();
    expect(ownedBy(settled, "bare").length).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 3_000));
    expect([...(await owners())].map(([k, a]) => [k, a.node, a.leaseRevision])).toEqual([...settled].map(([k, a]) => [k, a.node, a.leaseRevision]));
  }, 90_000);
});
