// Issue 19: after a node SIGKILL a shard stayed hosted by no node for minutes.
// The leader wrote px_assign and trusted the nodes to follow it; nothing
// compared an assignment with what its node's heartbeats report. These tests
// run whole nodes (controller + agent + a recording host) on one simulated
// clock, kill one without a goodbye (its heartbeat and lease stay in KV) and
// restart it under the same id.
import { afterEach, describe, expect, it } from "vitest";
import { SimulatedClock, createActor } from "xstate";
import type { Actor } from "xstate";
import { controllerMachine } from "../../actors/controller.js";
import type { ControllerEmitted } from "../../actors/controller.js";
import { agentMachine } from "../../actors/agent.js";
import { agentActors, controllerActors } from "../../src/node/control/index.js";
import { AssignmentStore, OverrideStore, dueRepairs, noteReport } from "../../src/control/index.js";
import type { Assignment } from "../../src/control/index.js";
import { Cluster, FakeHost, advance, staticCatalog, tenant } from "./fakes.js";

const running: { stop(): void }[] = [];
afterEach(() => {
  for (const a of running.splice(0)) a.stop();
});

const SHARDS = 6;
const REPAIR_MS = 2_000;

/** One node process: a controller (every node contends) and an agent over its own host; timings a fifth of the real ones. */
class SimNode {
  host = new FakeHost();
  controller: Actor<typeof controllerMachine> | undefined;
  agent: Actor<typeof agentMachine> | undefined;
  client: ReturnType<Cluster["client"]> | undefined;
  readonly events: ControllerEmitted[] = [];
  constructor(
    readonly id: string,
    readonly cluster: Cluster,
    readonly clock: SimulatedClock,
    readonly repairMs: number,
  ) {}

  start(): void {
    this.host = new FakeHost();
    this.client = this.cluster.client();
    const now = (): number => this.clock.now();
    const catalog = staticCatalog([tenant("acme", { trades: SHARDS })]);
    this.controller = createActor(controllerMachine.provide({ actors: controllerActors({ ...this.client.stores, catalog }) }), {
      input: { id: this.id, leaseMs: 600, nodeTimeoutMs: 400, reconcileMs: 200, retryMs: 100, settleMs: 3_000, repairMs: this.repairMs, now },
      clock: this.clock,
    });
    for (const t of ["unhosted", "elected"] as const) this.controller.on(t, (e) => this.events.push(e));
    const io = { nodeId: this.id, address: `${this.id}:1`, softwareVersion: "test", host: this.host, heartbeats: this.client.stores.heartbeats, assignments: this.client.stores.assignments };
    this.agent = createActor(agentMachine.provide({ actors: agentActors(io) }), { input: { nodeId: this.id, heartbeatMs: 100, isolationMs: 6_000, retryMs: 100 }, clock: this.clock });
    running.push(this.controller, this.agent);
    this.controller.start();
    this.agent.start();
  }

  /** SIGKILL: no shard stop, no heartbeat delete, no lease release; whatever it had in flight is cut off. */
  kill(): void {
    this.client?.setDown(true);
    this.controller?.stop();
    this.agent?.stop();
    this.host.running.clear();
    this.controller = undefined;
    this.agent = undefined;
  }

  get alive(): boolean {
    return this.agent !== undefined;
  }

  /** Its agent stops following px_assign (a watch that died without a word) while it keeps heartbeating. */
  deafen(): void {
    this.client!.views[2]!.down = true;
  }
}

function cluster(repairMs: number): { cluster: Cluster; clock: SimulatedClock; nodes: SimNode[] } {
  const c = new Cluster();
  const clock = new SimulatedClock();
  return { cluster: c, clock, nodes: ["n1", "n2", "n3"].map((id) => new SimNode(id, c, clock, repairMs)) };
}

/** Each shard: its assignment, and the live nodes running it (with the revision). "" when it is hosted exactly by its owner. */
async function unhosted(c: Cluster, nodes: readonly SimNode[]): Promise<string[]> {
  const assigned = await new AssignmentStore(c.buckets.assign).read();
  const bad: string[] = [];
  for (let b = 0; b < SHARDS; b++) {
    const key = `acme.trades.${b}`;
    const a = assigned.get(key);
    const hosts = nodes.filter((n) => n.alive && n.host.running.has(key)).map((n) => `${n.id}@${n.host.running.get(key)}`);
    if (a === undefined || hosts.length !== 1 || hosts[0] !== `${a.node}@${a.leaseRevision}`) bad.push(`${key}: assigned to ${a ? `${a.node}@${a.leaseRevision}` : "nobody"}, hosted by ${hosts.join(" + ") || "no node"}`);
  }
  return bad;
}

const owned = async (c: Cluster, node: string): Promise<string[]> => [...(await new AssignmentStore(c.buckets.assign).read())].filter(([, a]) => a.node === node).map(([k]) => k);

describe("unhosted shards (issue 19)", () => {
  // The restart the fault suite does (hold 0.5-3 s, then the node's start-up), scaled by 1/5 like the timings.
  for (const downMs of [100, 300, 500, 800, 1_200]) {
    for (const victim of ["n1", "n2", "n3"]) {
      it(`node ${victim} SIGKILLed and restarted ${downMs} ms later under the same id: every shard ends hosted by its owner, and no repair was needed`, async () => {
        const { cluster: c, clock, nodes } = cluster(REPAIR_MS);
        for (const n of nodes) n.start();
        await advance(clock, 5_000);
        expect(await unhosted(c, nodes)).toEqual([]);
        const v = nodes.find((n) => n.id === victim)!;
        v.kill();
        await advance(clock, downMs);
        v.start();
        // Past the node timeout, the settle period (3 s) and a repair period.
        await advance(clock, 8_000);
        expect(await unhosted(c, nodes)).toEqual([]);
        expect(nodes.flatMap((n) => n.events).filter((e) => e.type === "unhosted")).toEqual([]);
      });
    }
  }

  for (const repairMs of [REPAIR_MS, 0]) {
    it(`a node that heartbeats but no longer follows px_assign gets a killed node's shards: ${repairMs > 0 ? "the leader sees them missing from its heartbeats and moves them to a node that hosts them" : "(negative control: repair off) they stay hosted by no node"}`, async () => {
      const { cluster: c, clock, nodes } = cluster(repairMs);
      const [n1, n2, n3] = nodes as [SimNode, SimNode, SimNode];
      for (const n of nodes) n.start();
      await advance(clock, 5_000);
      expect(await unhosted(c, nodes)).toEqual([]);
      const leader = nodes.find((n) => n.events.some((e) => e.type === "elected"))!;
      // The victim is not the leader, and the deaf node is the other follower (so the failover writes reach it).
      const [victim, deaf] = leader === n1 ? [n2, n3] : leader === n2 ? [n3, n1] : [n1, n2];
      const victimShards = await owned(c, victim.id);
      expect(victimShards.length).toBeGreaterThan(0);
      deaf.deafen();
      victim.kill();
      // Failover: the victim's shards go to the survivors (node timeout 400 ms); the deaf node starts none of its share.
      await advance(clock, 1_000);
      const stuck = await unhosted(c, nodes.filter((n) => n !== victim));
      expect(stuck.length).toBeGreaterThan(0);
      expect(stuck.every((s) => s.includes(`assigned to ${deaf.id}@`) && s.endsWith("hosted by no node"))).toBe(true);
      // A repair period and a heartbeat later.
      await advance(clock, repairMs + 1_000);
      const after = await unhosted(c, nodes.filter((n) => n !== victim));
      if (repairMs === 0) {
        expect(after).toEqual(stuck);
        return;
      }
      expect(after).toEqual([]);
      const repairs = leader.events.filter((e) => e.type === "unhosted");
      expect(repairs.map((r) => r.type === "unhosted" && r.from)).toEqual(repairs.map(() => deaf.id));
      expect(repairs.length).toBe(stuck.length);
    });
  }

  for (const repairMs of [REPAIR_MS, 0]) {
    it(`a killed node's shard fails over to a node that cannot start it: ${repairMs > 0 ? "it moves on to one that can after the repair period" : "(negative control: repair off) it stays hosted by no node"}`, async () => {
      const { cluster: c, clock, nodes } = cluster(repairMs);
      for (const n of nodes) n.start();
      await advance(clock, 5_000);
      const leader = nodes.find((n) => n.events.some((e) => e.type === "elected"))!;
      const victim = nodes.find((n) => n !== leader)!;
      const key = (await owned(c, victim.id))[0]!;
      const survivors = nodes.filter((n) => n !== victim);
      for (const n of survivors) n.host.failStarts.add(key);
      victim.kill();
      await advance(clock, 1_000);
      const owner = (await new AssignmentStore(c.buckets.assign).read()).get(key)!.node;
      expect(survivors.map((n) => n.id)).toContain(owner);
      for (const n of survivors) if (n.id !== owner) n.host.failStarts.delete(key);
      expect(await unhosted(c, survivors)).toEqual([`${key}: assigned to ${owner}@${(await new AssignmentStore(c.buckets.assign).read()).get(key)!.leaseRevision}, hosted by no node`]);
      await advance(clock, REPAIR_MS + 1_000);
      const after = await unhosted(c, survivors);
      if (repairMs === 0) expect(after.length).toBe(1);
      else expect(after).toEqual([]);
    });
  }

  it("a shard a placement override put on a node that cannot start it: the override is cleared and the shard placed where it runs", async () => {
    const { cluster: c, clock, nodes } = cluster(REPAIR_MS);
    for (const n of nodes) n.start();
    await advance(clock, 5_000);
    const assigned = await new AssignmentStore(c.buckets.assign).read();
    const [key, a] = [...assigned].find(([, x]) => x.node !== "n3")!;
    const n3 = nodes[2]!;
    n3.host.failStarts.add(key);
    const overrides = new OverrideStore(c.buckets.placement);
    await overrides.set(key, { node: "n3", from: a.node, by: "operator", reason: "test", requestedAtMs: 0 });
    await advance(clock, 1_000);
    expect((await new AssignmentStore(c.buckets.assign).read()).get(key)?.node).toBe("n3");
    expect(await unhosted(c, nodes)).toEqual([expect.stringContaining(`${key}: assigned to n3@`)]);
    await advance(clock, REPAIR_MS + 2_000);
    expect((await overrides.read()).has(key)).toBe(false);
    expect(await unhosted(c, nodes)).toEqual([]);
    expect((await new AssignmentStore(c.buckets.assign).read()).get(key)?.node).not.toBe("n3");
  });

  it("noteReport / dueRepairs: an assignment counts as hosted once the node reports its revision or a newer one; a node not placeable is left to failover", () => {
    const as = new Map<string, Assignment>([
      ["a.t.0", { node: "n1", leaseRevision: 5, term: 1, assignedAtMs: 0 }],
      ["a.t.1", { node: "n1", leaseRevision: 6, term: 1, assignedAtMs: 0 }],
      ["a.t.2", { node: "n2", leaseRevision: 7, term: 1, assignedAtMs: 0 }],
    ]);
    let t = noteReport(new Map(), as, "n1", new Map([["a.t.0", 5], ["a.t.1", 4]]), 1_000);
    expect([...t.keys()]).toEqual(["a.t.1"]);
    // Still missing later: the first time stays.
    t = noteReport(t, as, "n1", new Map([["a.t.0", 5]]), 2_000);
    expect(t.get("a.t.1")?.since).toBe(1_000);
    // A heartbeat that does not say what it hosts changes nothing.
    expect(noteReport(t, as, "n1", undefined, 3_000)).toBe(t);
    const nodes = [{ id: "n1" }, { id: "n2" }, { id: "n3", settling: true }];
    expect(dueRepairs(t, as, nodes, 2_500, 2_000)).toEqual([]);
    expect(dueRepairs(t, as, nodes, 3_000, 2_000)).toEqual([{ key: "a.t.1", from: "n1", revision: 6, to: "n2", forMs: 2_000 }]);
    // n1 is not placeable (dead, draining): placement fails it over, no repair.
    expect(dueRepairs(t, as, nodes.slice(1), 3_000, 2_000)).toEqual([]);
    // Reported at last: cleared.
    expect(noteReport(t, as, "n1", new Map([["a.t.0", 5], ["a.t.1", 6]]), 3_000).size).toBe(0);
  });
});
