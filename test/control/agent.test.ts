import { afterEach, describe, expect, it } from "vitest";
import { SimulatedClock, createActor } from "xstate";
import type { Actor } from "xstate";
import { agentMachine, agentPhase, shardWork } from "../../actors/agent.js";
import type { AgentInput, HostedShard } from "../../actors/agent.js";
import { agentActors } from "../../src/node/control/index.js";
import { AssignmentStore } from "../../src/control/index.js";
import type { AssignmentTable } from "../../src/control/index.js";
import { Cluster, FakeHost, advance, flush } from "./fakes.js";

const actors: Actor<typeof agentMachine>[] = [];
afterEach(() => {
  for (const a of actors.splice(0)) a.stop();
});

function agent(cluster: Cluster, nodeId: string, clock: SimulatedClock, o: Partial<AgentInput> = {}) {
  const client = cluster.client();
  const host = new FakeHost();
  const actor = createActor(
    agentMachine.provide({
      actors: agentActors({ nodeId, address: `${nodeId}:8080`, softwareVersion: "test", host, heartbeats: client.stores.heartbeats, assignments: client.stores.assignments }),
    }),
    { input: { nodeId, heartbeatMs: 100, isolationMs: 500, drainTimeoutMs: 2_000, retryMs: 100, ...o }, clock },
  );
  actors.push(actor);
  actor.start();
  return { actor, host, client, phase: () => agentPhase(actor.getSnapshot()) };
}

/** Plays the leader: writes assignments to px_assign the way the controller does. */
class FakeLeader {
  private table: AssignmentTable | undefined;
  private readonly store: AssignmentStore;
  constructor(cluster: Cluster) {
    this.store = new AssignmentStore(cluster.buckets.assign);
  }
  async assign(writes: Record<string, string | undefined>): Promise<void> {
    this.table ??= await this.store.fence("leader", 1, 0);
    this.table = await this.store.write(this.table, Object.entries(writes).map(([key, node]) => ({ key, node })), 1, 0);
  }
  revision(key: string): number | undefined {
    return this.table?.assignments.get(key)?.leaseRevision;
  }
}

const h = (key: string, leaseRevision: number): HostedShard => {
  const [tenant, table, bucket] = key.split(".");
  return { shard: { tenant: tenant!, table: table!, bucket: Number(bucket) }, leaseRevision };
};

describe("agent", () => {
  it("agent - shard work: stop what is not ours, restart what has a newer lease, start the rest", () => {
    const hosted = new Map([["a.t.0", h("a.t.0", 3)], ["a.t.1", h("a.t.1", 4)], ["a.t.2", h("a.t.2", 5)]]);
    const desired = new Map([["a.t.1", h("a.t.1", 9)], ["a.t.2", h("a.t.2", 5)], ["a.t.3", h("a.t.3", 7)]]);
    const w = shardWork(desired, hosted);
    expect(w.stop.map((s) => s.leaseRevision)).toEqual([3, 4]);
    expect(w.start.map((s) => s.leaseRevision)).toEqual([9, 7]);
  });

  it("agent - joins with a heartbeat, then runs", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const a = agent(cluster, "n1", clock);
    expect(a.phase()).toBe("starting");
    await advance(clock, 50);
    expect(a.phase()).toBe("running");
    await advance(clock, 150);
    const hb = (await cluster.client().stores.heartbeats.read()).get("n1");
    expect(hb?.info).toMatchObject({ nodeId: "n1", state: "running", address: "n1:8080" });
  });

  it("agent - the heartbeat says how long the node has been live; a gap longer than liveGapMs (a pause) starts it again", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    // Wall time = the simulated clock + a jump: a jump is time that passed without the process running (SIGSTOP).
    let jump = 0;
    const client = cluster.client();
    const actor = createActor(
      agentMachine.provide({
        actors: agentActors({ nodeId: "n1", address: "n1:8080", softwareVersion: "test", host: new FakeHost(), heartbeats: client.stores.heartbeats, assignments: client.stores.assignments, nowMicros: () => (clock.now() + jump) * 1000, liveGapMs: 300 }),
      }),
      { input: { nodeId: "n1", heartbeatMs: 100, isolationMs: 5_000, drainTimeoutMs: 2_000, retryMs: 100 }, clock },
    );
    actors.push(actor);
    actor.start();
    const liveFor = async (): Promise<number | undefined> => (await client.stores.heartbeats.read()).get("n1")?.info.liveForMs;
    await advance(clock, 50);
    for (let i = 0; i < 20; i++) await advance(clock, 100);
    const before = (await liveFor())!;
    expect(before).toBeGreaterThanOrEqual(1_800);
    // A 200 ms hiccup is within the gap: it keeps counting.
    jump += 200;
    await advance(clock, 100);
    expect(await liveFor()).toBeGreaterThan(before);
    // Paused for a second: live again from the next heartbeat.
    jump += 1_000;
    await advance(clock, 100);
    expect(await liveFor()).toBeLessThan(300);
    for (let i = 0; i < 5; i++) await advance(clock, 100);
    expect(await liveFor()).toBeGreaterThanOrEqual(400);
  });

  it("agent - starts its assigned shards with their lease revision and stops those moved away", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const leader = new FakeLeader(cluster);
    const a = agent(cluster, "n1", clock);
    await advance(clock, 50);
    await leader.assign({ "acme.trades.0": "n1", "acme.trades.1": "n2", "acme.trades.2": "n1" });
    await advance(clock, 50);
    expect(new Map(a.host.running)).toEqual(new Map([["acme.trades.0", leader.revision("acme.trades.0")], ["acme.trades.2", leader.revision("acme.trades.2")]]));
    await leader.assign({ "acme.trades.0": "n2", "acme.trades.2": undefined });
    await advance(clock, 50);
    expect(a.host.running.size).toBe(0);
    await advance(clock, 200);
    const hb = (await cluster.client().stores.heartbeats.read()).get("n1");
    expect(hb?.info.shards).toEqual([]);
  });

  it("agent - a shard reassigned under a newer lease revision is stopped, then restarted with it (fencing)", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const leader = new FakeLeader(cluster);
    const a = agent(cluster, "n1", clock);
    await leader.assign({ "acme.trades.0": "n1" });
    await advance(clock, 50);
    const first = leader.revision("acme.trades.0")!;
    // Away and back before this agent acted on it: only the newer revision is valid now.
    await leader.assign({ "acme.trades.0": "n1" });
    await advance(clock, 50);
    const second = leader.revision("acme.trades.0")!;
    expect(second).toBeGreaterThan(first);
    expect(a.host.calls).toEqual([
      { op: "start", key: "acme.trades.0", leaseRevision: first },
      { op: "stop", key: "acme.trades.0" },
      { op: "start", key: "acme.trades.0", leaseRevision: second },
    ]);
    await advance(clock, 150);
    const hb = (await cluster.client().stores.heartbeats.read()).get("n1");
    expect(hb?.info.shards).toEqual([expect.objectContaining({ tenant: "acme", table: "trades", bucket: 0, leaseRevision: second, appliedLsn: 10 })]);
  });

  // Issue 19: a KV watch that breaks (its consumer gone, its iterator ended) delivers nothing more. The agent let it lie, so
  // every later assignment of its node was missed while the node kept heartbeating: shards hosted by no node, silently.
  it("agent - a px_assign watch that breaks is re-opened: assignments made and removed while it was blind are followed", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const leader = new FakeLeader(cluster);
    const lines: string[] = [];
    const client = cluster.client();
    const host = new FakeHost();
    const actor = createActor(
      agentMachine.provide({
        actors: agentActors({ nodeId: "n1", address: "n1:8080", softwareVersion: "test", host, heartbeats: client.stores.heartbeats, assignments: client.stores.assignments, log: (l) => lines.push(l) }),
      }),
      { input: { nodeId: "n1", heartbeatMs: 100, isolationMs: 5_000, retryMs: 100 }, clock },
    );
    actors.push(actor);
    actor.start();
    await leader.assign({ "acme.trades.0": "n1", "acme.trades.1": "n1" });
    await advance(clock, 100);
    expect([...host.running.keys()].sort()).toEqual(["acme.trades.0", "acme.trades.1"]);
    cluster.buckets.assign.breakWatchers("watcher consumer lost (test)");
    // While blind: a shard failed over to this node, another moved away, one removed.
    await leader.assign({ "acme.trades.2": "n1", "acme.trades.0": "n2", "acme.trades.1": undefined });
    // The watch re-opens within its retry (1 s) and resyncs.
    await advance(clock, 1_500);
    expect(new Map(host.running)).toEqual(new Map([["acme.trades.2", leader.revision("acme.trades.2")]]));
    expect(lines.some((l) => l.includes("cannot watch px_assign") && l.includes("watcher consumer lost"))).toBe(true);
    // And it goes on following changes.
    await leader.assign({ "acme.trades.3": "n1" });
    await advance(clock, 100);
    expect([...host.running.keys()].sort()).toEqual(["acme.trades.2", "acme.trades.3"]);
  });

  it("agent - a shard its host stopped running behind its back is left out of the heartbeat and started again", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const leader = new FakeLeader(cluster);
    const a = agent(cluster, "n1", clock);
    const lost: string[] = [];
    a.actor.on("lost", (e) => lost.push(...e.shards.map((h) => `${h.shard.bucket}@${h.leaseRevision}`)));
    await leader.assign({ "acme.trades.0": "n1", "acme.trades.1": "n1" });
    await advance(clock, 100);
    const rev = leader.revision("acme.trades.1")!;
    // The host lost it (a restart on a new spec that failed after its stop, say); the start fails for a while.
    a.host.running.delete("acme.trades.1");
    a.host.failStarts.add("acme.trades.1");
    await advance(clock, 250);
    expect.soft(lost).toEqual([`1@${rev}`]);
    const hb = (await cluster.client().stores.heartbeats.read()).get("n1");
    expect.soft(hb?.info.shards.map((s) => s.bucket)).toEqual([0]);
    a.host.failStarts.clear();
    await advance(clock, 250);
    expect.soft(new Map(a.host.running)).toEqual(new Map([["acme.trades.0", leader.revision("acme.trades.0")], ["acme.trades.1", rev]]));
    expect.soft((await cluster.client().stores.heartbeats.read()).get("n1")?.info.shards.map((s) => s.bucket)).toEqual([0, 1]);
  });

  it("agent - a shard its host takes off while stopping it (as the real host does) is not reported lost", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const leader = new FakeLeader(cluster);
    // Like LocalShardHost: the shard leaves the host's map at once, the stop resolves once its sink stopped (here 500 ms).
    class SlowStopHost extends FakeHost {
      override async stop(shard: Parameters<FakeHost["stop"]>[0]): Promise<void> {
        await super.stop(shard);
        await new Promise((r) => clock.setTimeout(r, 500));
      }
    }
    const client = cluster.client();
    const host = new SlowStopHost();
    const actor = createActor(agentMachine.provide({ actors: agentActors({ nodeId: "n1", address: "n1:8080", softwareVersion: "test", host, heartbeats: client.stores.heartbeats, assignments: client.stores.assignments }) }), {
      input: { nodeId: "n1", heartbeatMs: 100, isolationMs: 5_000, retryMs: 100 },
      clock,
    });
    actors.push(actor);
    const lost: unknown[] = [];
    actor.on("lost", (e) => lost.push(e));
    actor.start();
    await leader.assign({ "acme.trades.0": "n1", "acme.trades.1": "n1" });
    await advance(clock, 100);
    // One moves away, the other is restarted under a newer revision (fencing): both stops take 5 heartbeats.
    await leader.assign({ "acme.trades.0": "n2", "acme.trades.1": "n1" });
    await advance(clock, 1_500);
    expect(lost).toEqual([]);
    expect(new Map(host.running)).toEqual(new Map([["acme.trades.1", leader.revision("acme.trades.1")]]));
  });

  it("agent - a failed start is retried after a backoff", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const leader = new FakeLeader(cluster);
    const a = agent(cluster, "n1", clock);
    a.host.failStarts.add("acme.trades.0");
    await leader.assign({ "acme.trades.0": "n1" });
    await advance(clock, 250);
    const attempts = a.host.calls.filter((c) => c.op === "start").length;
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(4); // backoff, not a busy loop
    a.host.failStarts.clear();
    await advance(clock, 150);
    expect(a.host.running.has("acme.trades.0")).toBe(true);
  });

  it("agent - cut off from NATS past the isolation timeout it stops every shard, and resumes after", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const leader = new FakeLeader(cluster);
    const a = agent(cluster, "n1", clock);
    await leader.assign({ "acme.trades.0": "n1", "acme.trades.1": "n1" });
    await advance(clock, 100);
    expect(a.host.running.size).toBe(2);
    a.client.setDown(true);
    await advance(clock, 300);
    expect(a.host.running.size).toBe(2); // a short outage changes nothing
    await advance(clock, 400);
    expect(a.host.running.size).toBe(0);
    a.client.setDown(false);
    await advance(clock, 200);
    expect(a.host.running.size).toBe(2);
  });

  it("agent - draining waits until the leader moved its shards, then leaves and removes its heartbeat", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const leader = new FakeLeader(cluster);
    const a = agent(cluster, "n1", clock);
    await leader.assign({ "acme.trades.0": "n1" });
    await advance(clock, 100);
    a.actor.send({ type: "drain" });
    await advance(clock, 200);
    expect(a.phase()).toBe("draining");
    expect((await cluster.client().stores.heartbeats.read()).get("n1")?.info.state).toBe("draining");
    expect(a.host.running.size).toBe(1);
    await leader.assign({ "acme.trades.0": "n2" });
    await advance(clock, 50);
    expect(a.host.running.size).toBe(0);
    expect(a.phase()).toBe("stopped");
    expect((await cluster.client().stores.heartbeats.read()).has("n1")).toBe(false);
  });

  it("agent - stop stops every shard and removes the heartbeat", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const leader = new FakeLeader(cluster);
    const a = agent(cluster, "n1", clock);
    await leader.assign({ "acme.trades.0": "n1" });
    await advance(clock, 100);
    a.actor.send({ type: "stop" });
    await flush();
    expect(a.phase()).toBe("stopped");
    expect(a.host.running.size).toBe(0);
    expect((await cluster.client().stores.heartbeats.read()).has("n1")).toBe(false);
  });
});
