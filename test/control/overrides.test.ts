// Per-shard placement overrides: placement with overrides (pure), the `move`
// decision and request over an in-memory px_placement, and the controller
// machine honouring, keeping and clearing them (fake IO, SimulatedClock).
import { afterEach, describe, expect, it } from "vitest";
import { SimulatedClock, createActor } from "xstate";
import type { Actor } from "xstate";
import { controllerMachine } from "../../actors/controller.js";
import type { ControllerEmitted } from "../../actors/controller.js";
import { controllerActors } from "../../src/node/control/index.js";
import { AssignmentStore, ControlError, MemoryKv, OverrideStore, decideMove, handleControl, moveShard, placeShards, planAssignments, voidOverrides } from "../../src/control/index.js";
import type { Assignment, ClusterState, ControlBackend, PlacementNode, StoredOverride } from "../../src/control/index.js";
import { MOVE_VERB } from "../../protocols/placement.js";
import { Cluster, advance, heartbeat, staticCatalog, tenant } from "./fakes.js";

const nodes = (...ids: string[]): PlacementNode[] => ids.map((id) => ({ id }));
const shards = (n: number): string[] => Array.from({ length: n }, (_, i) => `t.trades.${i}`);

describe("placement - overrides", () => {
  it("overrides - an override puts its shard on the named node; no other shard moves", () => {
    const s = shards(16);
    const before = placeShards(s, nodes("a", "b", "c"));
    const home = before.owners.get("t.trades.3")!;
    const target = ["a", "b", "c"].find((n) => n !== home)!;
    const after = placeShards(s, nodes("a", "b", "c"), before.owners, new Map([["t.trades.3", target]]));
    expect(after.owners.get("t.trades.3")).toBe(target);
    expect(after.moved).toEqual(["t.trades.3"]);
  });

  it("overrides - the plan with the override makes the move once; the next reconcile writes nothing (no bounce back); without it the shard goes home", () => {
    const s = shards(8);
    const ns = nodes("a", "b");
    // Where placement puts them (each at its home, or moved to its next best by the load bounds).
    const current = new Map<string, Assignment>([...placeShards(s, ns).owners].map(([k, node]) => [k, { node, leaseRevision: 1, term: 1, assignedAtMs: 0 }]));
    const home = current.get("t.trades.0")!.node;
    const target = home === "a" ? "b" : "a";
    const overrides = new Map([["t.trades.0", target]]);
    expect(planAssignments(s, ns, current, overrides)).toEqual([{ key: "t.trades.0", node: target, pinned: true }]);
    current.set("t.trades.0", { node: target, leaseRevision: 2, term: 1, assignedAtMs: 0, pinned: true });
    expect(planAssignments(s, ns, current, overrides)).toEqual([]);
    // The override cleared: the pinned shard goes back home.
    expect(planAssignments(s, ns, current)).toEqual([{ key: "t.trades.0", node: home }]);
    // Negative control: a resident that no override put there stays (residents do not move without cause).
    current.set("t.trades.0", { node: target, leaseRevision: 2, term: 1, assignedAtMs: 0 });
    expect(planAssignments(s, ns, current)).toEqual([]);
  });

  it("overrides - an override to a node that is not placeable or full is not honoured, and is void", () => {
    const s = shards(4);
    const p = placeShards(s, nodes("a", "b"), new Map(), new Map([["t.trades.0", "gone"]]));
    expect(["a", "b"]).toContain(p.owners.get("t.trades.0"));
    const full = placeShards(s, [{ id: "a", capacity: 1 }, { id: "b" }], new Map(), new Map([["t.trades.0", "a"], ["t.trades.1", "a"]]));
    expect([...full.owners.values()].filter((n) => n === "a")).toHaveLength(1);
    expect(full.owners.get("t.trades.0")).toBe("a");
    expect(voidOverrides(new Map([["t.trades.0", "gone"], ["t.trades.1", "a"], ["t.other.0", "a"]]), s, nodes("a", "b"))).toEqual(["t.other.0", "t.trades.0"]);
  });
});

const NOW = 1_000_000;

function state(owners: Record<string, string>, live: Record<string, { state?: "running" | "draining"; ageMs?: number; capacity?: number; liveForMs?: number }>, shardsOfTrades = 4): ClusterState {
  const assignments = new Map<string, Assignment>(Object.entries(owners).map(([k, node], i) => [k, { node, leaseRevision: i + 1, term: 1, assignedAtMs: 0 }]));
  const info = (id: string, h: { state?: "running" | "draining"; capacity?: number; liveForMs?: number }) => ({ ...heartbeat(id, h.state ?? "running", h.capacity ?? 0), ...(h.liveForMs === undefined ? {} : { liveForMs: h.liveForMs }) });
  const heartbeats = new Map(Object.entries(live).map(([id, h], i) => [id, { info: info(id, h), revision: i + 1, createdMs: NOW - (h.ageMs ?? 100) }]));
  const spec = tenant("acme", { trades: shardsOfTrades, quotes: 1 });
  return { nowMs: NOW, lease: undefined, leaseCreatedMs: undefined, heartbeats, assignments, tenants: new Map([["acme", { spec, revision: 1 }]]) };
}

const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof ControlError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return "no error";
};

describe("move - decision", () => {
  const owners = { "acme.trades.0": "n1", "acme.trades.1": "n1", "acme.trades.2": "n2", "acme.trades.3": "n3", "acme.quotes.0": "n3" };
  const none = new Map<string, StoredOverride>();

  it("move - goes to the live node other than the owner with the fewest shards; or to the node asked", () => {
    const s = state(owners, { n1: {}, n2: {}, n3: {} });
    expect(decideMove(s, none, { table: "trades", bucket: 0 }, 2_000)).toMatchObject({ key: "acme.trades.0", from: "n1", to: "n2" });
    expect(decideMove(s, none, { table: "acme.trades", bucket: 0, to: "n3" }, 2_000)).toMatchObject({ from: "n1", to: "n3" });
    // A stale heartbeat or a draining node is not live: n2 is skipped.
    expect(decideMove(state(owners, { n1: {}, n2: { ageMs: 5_000 }, n3: {} }), none, { table: "trades", bucket: 0 }, 2_000).to).toBe("n3");
    expect(decideMove(state(owners, { n1: {}, n2: { state: "draining" }, n3: {} }), none, { table: "trades", bucket: 0 }, 2_000).to).toBe("n3");
  });

  it("move - refusals name the shard, the node and the fix", () => {
    const s = state(owners, { n1: {}, n2: {}, n3: {} });
    expect(code(() => decideMove(s, none, { table: "trades", bucket: 9 }, 2_000))).toMatch(/^NOT_FOUND: move: shard trades\/9 does not exist: table acme.trades has 4 shards \(0-3\)/);
    expect(code(() => decideMove(s, none, { table: "nope", bucket: 0 }, 2_000))).toMatch(/^NOT_FOUND: move: table nope does not exist \(known: acme.quotes, acme.trades\)/);
    expect(code(() => decideMove(s, none, { table: "trades", bucket: 0, to: "n9" }, 2_000))).toMatch(/^INVALID_ARGUMENT: move: target node n9 is not a live running node \(live: n2, n3\)/);
    expect(code(() => decideMove(state(owners, { n1: {}, n2: { ageMs: 9_000 } }), none, { table: "trades", bucket: 0, to: "n2" }, 2_000))).toMatch(/^INVALID_ARGUMENT: move: target node n2 is not a live running node/);
    expect(code(() => decideMove(s, none, { table: "trades", bucket: 0, to: "n1" }, 2_000))).toMatch(/^INVALID_ARGUMENT: .*name another node/);
    expect(code(() => decideMove(s, none, { table: "trades", bucket: 0, from: "n2" }, 2_000))).toMatch(/^CONFLICT: move: shard acme.trades.0 is not on node n2 \(its owner is n1\)/);
    expect(code(() => decideMove(state(owners, { n1: {} }), none, { table: "trades", bucket: 0 }, 2_000))).toMatch(/^UNAVAILABLE: move: no other live running node can take shard acme.trades.0 \(live: n1\)/);
    expect(code(() => decideMove(state(owners, { n1: {}, n2: { capacity: 1 } }), none, { table: "trades", bucket: 0, to: "n2" }, 2_000))).toMatch(/^CONFLICT: move: target node n2 is full/);
  });

  it("move - lag remediation moves only to a node with fewer shards, and a shard only once", () => {
    const even = state({ "acme.trades.0": "n1", "acme.trades.1": "n2" }, { n1: {}, n2: {} });
    expect(code(() => decideMove(even, none, { table: "trades", bucket: 0, from: "n1", by: "remediation" }, 2_000))).toMatch(/^CONFLICT: move: no node owns fewer shards than n1 \(1\); the least loaded other node, n2, owns 1/);
    const lopsided = state({ "acme.trades.0": "n1", "acme.trades.1": "n1" }, { n1: {}, n2: {} });
    expect(decideMove(lopsided, none, { table: "trades", bucket: 0, from: "n1", by: "remediation" }, 2_000).to).toBe("n2");
    const held = new Map<string, StoredOverride>([["acme.trades.0", { revision: 3, override: { node: "n1", from: "n2", by: "remediation", reason: "lag remediation on n2", requestedAtMs: 0 } }]]);
    expect(code(() => decideMove(lopsided, held, { table: "trades", bucket: 0, from: "n1", by: "remediation" }, 2_000))).toMatch(/^CONFLICT: move: shard acme.trades.0 was moved to n1 already \(remediation: lag remediation on n2\); .*--clear/);
    // The operator's move replaces it.
    expect(decideMove(lopsided, held, { table: "trades", bucket: 0 }, 2_000).to).toBe("n2");
  });

  it("move - a node still settling (live for less than the settle period by its heartbeat) is taken only when no settled node has room; never by lag remediation", () => {
    const settle = 15_000;
    // n2 owns fewest but came back 3 s ago; n3 has been live for a minute.
    const s = state(owners, { n1: { liveForMs: 60_000 }, n2: { liveForMs: 3_000 }, n3: { liveForMs: 60_000 } });
    expect(decideMove(s, none, { table: "trades", bucket: 0 }, 2_000, settle).to).toBe("n3");
    // Negative control: without a settle period n2 (fewest shards) is chosen, as before.
    expect(decideMove(s, none, { table: "trades", bucket: 0 }, 2_000).to).toBe("n2");
    // The heartbeat's age counts: 14.95 s reported + 100 ms old is settled.
    expect(decideMove(state(owners, { n1: {}, n2: { liveForMs: 14_950 }, n3: {} }), none, { table: "trades", bucket: 0 }, 2_000, settle).to).toBe("n2");
    // An agent that does not report it counts as settled.
    expect(decideMove(state(owners, { n1: {}, n2: {}, n3: { liveForMs: 60_000 } }), none, { table: "trades", bucket: 0 }, 2_000, settle).to).toBe("n2");
    // Only settling nodes: the operator's move takes one and says so; remediation's is refused naming them.
    const only = state({ "acme.trades.0": "n1", "acme.trades.1": "n1" }, { n1: { liveForMs: 60_000 }, n2: { liveForMs: 1_000 } });
    const d = decideMove(only, none, { table: "trades", bucket: 0 }, 2_000, settle);
    expect(d.to).toBe("n2");
    expect(d.why).toMatch(/still settling: no settled node has room/);
    expect(code(() => decideMove(only, none, { table: "trades", bucket: 0, from: "n1", by: "remediation" }, 2_000, settle))).toMatch(/^UNAVAILABLE: move: the nodes that could take shard acme.trades.0 \(n2\) joined or came back less than 15000 ms ago and are still settling; .*pxctl move shard trades\/0 --to NODE/);
  });

  it("move - the request records the override in px_placement; clear drops it", async () => {
    const store = new OverrideStore(new MemoryKv("px_placement"));
    const s = state(owners, { n1: {}, n2: {}, n3: {} });
    const reply = await moveShard(s, store, { table: "trades", bucket: 0 }, 2_000, NOW);
    expect(reply).toMatchObject({ shard: "acme.trades.0", from: "n1", to: "n2" });
    expect(reply.message).toMatch(/^shard acme.trades.0 moves from n1 to n2 \(the live node with the fewest shards: 1, n1 owns 2\); it stays there until the override is cleared \(pxctl move shard trades\/0 --clear\) or n2 dies$/);
    expect((await store.read()).get("acme.trades.0")).toEqual({ revision: reply.revision, override: { node: "n2", from: "n1", by: "operator", reason: "pxctl move shard", requestedAtMs: NOW } });
    await expect(moveShard(s, store, { table: "trades", bucket: "x" }, 2_000, NOW)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/bucket must be a shard number/) });
    expect((await moveShard(s, store, { table: "trades", bucket: 0, clear: true }, 2_000, NOW)).message).toMatch(/placement override of acme.trades.0 \(to n2\) cleared/);
    expect((await store.read()).size).toBe(0);
  });

  it("move - the control verb records each change for pxctl events (who asked, what moved); a refused move or a clear of nothing records nothing", async () => {
    const store = new OverrideStore(new MemoryKv("px_placement"));
    const s = state(owners, { n1: {}, n2: {}, n3: {} });
    const recorded: { kind: string; message: string }[] = [];
    const backend: ControlBackend = { readState: async () => s, tenants: async () => new Map(s.tenants), apply: async () => new Map(), overrides: store, liveWithinMs: 2_000, nowMs: () => NOW, record: (e) => recorded.push(e) };
    await handleControl(MOVE_VERB, { table: "trades", bucket: 0 }, backend);
    await expect(handleControl(MOVE_VERB, { table: "trades", bucket: 0, to: "n9" }, backend)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await handleControl(MOVE_VERB, { table: "trades", bucket: 1, from: "n1", by: "remediation" }, backend);
    await handleControl(MOVE_VERB, { table: "trades", bucket: 0, clear: true }, backend);
    await handleControl(MOVE_VERB, { table: "trades", bucket: 0, clear: true }, backend);
    expect(recorded.map((e) => `${e.kind} ${e.message}`)).toEqual([
      expect.stringMatching(/^shard\.move pxctl move shard: shard acme\.trades\.0 moves from n1 to n2 /),
      expect.stringMatching(/^shard\.move lag remediation on n1: shard acme\.trades\.1 moves from n1 to n2 /),
      expect.stringMatching(/^shard\.move_cleared pxctl move shard: placement override of acme\.trades\.0 \(to n2\) cleared/),
    ]);
  });
});

const LEASE = 1_000;
const running: Actor<typeof controllerMachine>[] = [];
afterEach(() => {
  for (const a of running.splice(0)) a.stop();
});

function controller(cluster: Cluster, id: string, clock: SimulatedClock, catalog = staticCatalog([tenant("acme", { trades: 8 })]), settleMs?: number) {
  const client = cluster.client();
  const events: ControllerEmitted[] = [];
  const actor = createActor(controllerMachine.provide({ actors: controllerActors({ ...client.stores, catalog }) }), {
    input: { id, leaseMs: LEASE, nodeTimeoutMs: 600, reconcileMs: 200, retryMs: 100, now: () => clock.now(), ...(settleMs === undefined ? {} : { settleMs }) },
    clock,
  });
  actor.on("overridesCleared", (e) => events.push(e));
  running.push(actor);
  actor.start();
  return { actor, events };
}

async function beat(cluster: Cluster, clock: SimulatedClock, ms: number, alive: readonly string[]): Promise<void> {
  const hb = cluster.client().stores.heartbeats;
  for (let t = 0; t < ms; t += 100) {
    for (const id of alive) await hb.put(heartbeat(id));
    await advance(clock, 100);
  }
}

const ownerOf = async (cluster: Cluster, key: string): Promise<Assignment | undefined> => (await new AssignmentStore(cluster.buckets.assign).read()).get(key);

describe("controller - overrides", () => {
  it("controller - the leader moves the shard to the override's node, keeps it there over reconciles, and a new leader keeps it too", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const c1 = controller(cluster, "c1", clock);
    await beat(cluster, clock, 500, ["n1", "n2"]);
    const key = "acme.trades.0";
    const home = (await ownerOf(cluster, key))!;
    const target = home.node === "n1" ? "n2" : "n1";
    await cluster.client().stores.overrides.set(key, { node: target, from: home.node, by: "operator", reason: "test", requestedAtMs: 0 });
    await beat(cluster, clock, 300, ["n1", "n2"]);
    const moved = (await ownerOf(cluster, key))!;
    expect(moved.node).toBe(target);
    expect(moved.leaseRevision).toBeGreaterThan(home.leaseRevision);
    // Many reconciles later it is still there, with the same lease revision (not re-written).
    await beat(cluster, clock, 2_000, ["n1", "n2"]);
    expect(await ownerOf(cluster, key)).toEqual(moved);
    // The leader stops; another takes over from the KV state and keeps the shard where the override says.
    c1.actor.send({ type: "stop" });
    controller(cluster, "c2", clock);
    await beat(cluster, clock, 2 * LEASE, ["n1", "n2"]);
    // Not even re-written: same owner, same lease revision (the sink's fencing token), term 1.
    expect(await ownerOf(cluster, key)).toEqual(moved);
    expect((await cluster.client().stores.overrides.read()).get(key)?.override.node).toBe(target);
  });

  it("controller - the override's node dies: the override is cleared and the shard goes to a live node; the node back does not pull it over", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    // Settled nodes (2 s), so that the node back settles after the end of the test.
    const c1 = controller(cluster, "c1", clock, undefined, 2_000);
    await beat(cluster, clock, 2_500, ["n1", "n2", "n3"]);
    const key = "acme.trades.0";
    const home = (await ownerOf(cluster, key))!.node;
    const target = ["n1", "n2", "n3"].find((n) => n !== home)!;
    await cluster.client().stores.overrides.set(key, { node: target, from: home, by: "operator", reason: "test", requestedAtMs: 0 });
    await beat(cluster, clock, 300, ["n1", "n2", "n3"]);
    expect((await ownerOf(cluster, key))?.node).toBe(target);
    const others = ["n1", "n2", "n3"].filter((n) => n !== target);
    await beat(cluster, clock, 1_500, others);
    expect((await cluster.client().stores.overrides.read()).has(key)).toBe(false);
    expect(c1.events).toContainEqual({ type: "overridesCleared", cleared: [expect.objectContaining({ key, node: target })] });
    expect(others).toContain((await ownerOf(cluster, key))?.node);
    const after = (await ownerOf(cluster, key))!;
    await beat(cluster, clock, 1_000, ["n1", "n2", "n3"]);
    // The node back is settling (placement.ts): the void override does not pull the shard over, nor does placement.
    expect(await ownerOf(cluster, key)).toEqual(after);
  });
});
