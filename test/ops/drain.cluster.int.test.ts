// pxctl drain node against node processes (--shards assigned, a 3-server NATS
// cluster): the named node hands its shards to the other, pxctl follows the
// move until every shard is live elsewhere, the drained node owns nothing and
// the cluster keeps answering. Refusals name the node: an unknown node.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { runPxctl } from "../../src/cli/commands.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { testNatsAuth } from "../helpers/cluster.js";
import { proxistCluster, waitEachShardLiveOnce } from "../helpers/nodecluster.js";
import type { ProxistCluster } from "../helpers/nodecluster.js";

const SPEC = parseClusterSpec({
  tenants: [{ name: "drn", tables: [{ name: "trades", shards: 6, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
});

let c: ProxistCluster;
beforeAll(async () => {
  c = await proxistCluster(SPEC);
  await c.spawn(["n1", "n2"]);
  await waitEachShardLiveOnce(c, ["n1", "n2"], 60_000);
}, 120_000);
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

describe("pxctl drain node", () => {
  it("drain - an unknown node is refused by name", async () => {
    const r = await pxctl("drain", "node", "nope");
    expect(r.code, r.err).toBe(EXIT.notFound);
    expect(r.err).toMatch(/no node nope answered the drain request \(nodes that answered: n1, n2\)/);
  }, 30_000);

  it("drain - the node's shards move to the other and are live there; pxctl shows progress and ends when they are", async () => {
    // One view in which every shard is live once (a single poll can catch a shard between states and count it nowhere).
    const before = await waitEachShardLiveOnce(c, ["n1", "n2"], 60_000);
    const owned = (id: string) => [...before.values()].filter((owners) => owners[0]![0] === id).length;
    // Drain the node that holds more shards (rendezvous placement may give one node most of them).
    const victim = owned("n1") >= owned("n2") ? "n1" : "n2";
    const other = victim === "n1" ? "n2" : "n1";
    expect(owned(victim)).toBeGreaterThan(0);
    const r = await pxctl("drain", "node", victim, "--wait", "60000");
    expect(r.code, `${r.out}\n${r.err}`).toBe(EXIT.ok);
    expect(r.out).toMatch(new RegExp(`^${victim}: draining: handing \\d+ shards to the other nodes`));
    expect(r.out).toMatch(new RegExp(`drained ${victim} in [\\d.]+ s: its shards are live on ${other};`));
    // Every shard is live on the other node, none on the drained one.
    const live = await c.liveShards(["n1", "n2"]);
    expect([...live.keys()].sort()).toEqual((await c.shardKeys()).sort());
    for (const [key, owners] of live) expect(owners.map(([id]) => id), key).toEqual([other]);
    // The cluster status agrees, and the event log recorded the drain.
    const status = JSON.parse((await pxctl("status", "-o", "json")).out) as { shards: { owner: string; state: string }[] };
    expect(status.shards.every((s) => s.owner === other)).toBe(true);
    const events = await pxctl("events", "--last", "20");
    expect(events.out).toMatch(new RegExp(`${victim}\\s+node.drain\\s+draining`));
  }, 120_000);
});
