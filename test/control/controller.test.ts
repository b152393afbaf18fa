import { afterEach, describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromPromise } from "xstate";
import type { Actor } from "xstate";
import { controllerMachine, controllerRole } from "../../actors/controller.js";
import type { AcquireInput, ControllerEmitted, ControllerInput } from "../../actors/controller.js";
import { controllerActors, placementSettleMs } from "../../src/node/control/index.js";
import { AssignmentStore, FencedError, jsonValue } from "../../src/control/index.js";
import type { Assignment, LeaseRecord } from "../../src/control/index.js";
import { Cluster, advance, flush, heartbeat, staticCatalog, tenant } from "./fakes.js";

const LEASE = 1_000;
const actors: Actor<typeof controllerMachine>[] = [];
afterEach(() => {
  for (const a of actors.splice(0)) a.stop();
});

function controller(cluster: Cluster, id: string, clock: SimulatedClock, catalog = staticCatalog([tenant("acme", { trades: 4, quotes: 2 })]), o: Partial<ControllerInput> = {}) {
  const client = cluster.client();
  const events: ControllerEmitted[] = [];
  const actor = createActor(controllerMachine.provide({ actors: controllerActors({ ...client.stores, catalog }) }), {
    // Heartbeats here come from no agent and list no shard: the unhosted repair (repairMs) is off unless a test turns it on.
    input: { id, leaseMs: LEASE, nodeTimeoutMs: 600, reconcileMs: 200, retryMs: 100, repairMs: 0, now: () => clock.now(), ...o },
    clock,
  });
  for (const t of ["elected", "steppedDown", "assigned"] as const) actor.on(t, (e) => events.push(e));
  actors.push(actor);
  actor.start();
  return { actor, client, events, role: () => controllerRole(actor.getSnapshot().value) };
}

async function assignments(cluster: Cluster): Promise<Map<string, Assignment>> {
  return new AssignmentStore(cluster.buckets.assign).read();
}

async function lease(cluster: Cluster): Promise<{ record: LeaseRecord; revision: number } | undefined> {
  const r = await cluster.buckets.leader.get("controller");
  return r && { record: jsonValue.decode<LeaseRecord>(r.value), revision: r.revision };
}

/** Puts a heartbeat for each node every `everyMs` while `alive(node)` says so. */
async function heartbeats(cluster: Cluster, clock: SimulatedClock | SimulatedClock[], ms: number, alive: Record<string, boolean | (() => boolean)>, everyMs = 100): Promise<void> {
  const hb = cluster.client().stores.heartbeats;
  for (let t = 0; t < ms; t += everyMs) {
    for (const [id, on] of Object.entries(alive)) if (typeof on === "function" ? on() : on) await hb.put(heartbeat(id));
    await advance(clock, everyMs);
  }
}

describe("controller", () => {
  it("controller - a lease acquire that fails at once (NATS without JetStream) is tried again after a poll interval, not in a tight loop", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const client = cluster.client();
    let attempts = 0;
    const actor = createActor(
      controllerMachine.provide({
        actors: {
          ...controllerActors({ ...client.stores, catalog: staticCatalog([]) }),
          acquireLease: fromPromise<number, AcquireInput>(async () => {
            attempts++;
            // Without the pause the machine comes straight back: stop it spinning so the test can report.
            if (attempts > 200) actor.stop();
            throw new Error("jetstream is not enabled");
          }),
        },
      }),
      { input: { id: "c1", leaseMs: LEASE, nodeTimeoutMs: 600, reconcileMs: 200, retryMs: 100, pollMs: 250, now: () => clock.now() }, clock },
    );
    actors.push(actor);
    actor.start();
    await advance(clock, 1_000);
    // One try, then one per 250 ms poll.
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(6);
  });

  it("controller - the only contender becomes leader and assigns every shard to a running node", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const c1 = controller(cluster, "c1", clock);
    await heartbeats(cluster, clock, 500, { n1: true, n2: true });
    expect(c1.role()).toBe("leader");
    const a = await assignments(cluster);
    expect([...a.keys()].sort()).toEqual(["acme.quotes.0", "acme.quotes.1", "acme.trades.0", "acme.trades.1", "acme.trades.2", "acme.trades.3"]);
    for (const v of a.values()) {
      expect(["n1", "n2"]).toContain(v.node);
      expect(v.term).toBe(1);
    }
    expect((await lease(cluster))?.record).toMatchObject({ holder: "c1", term: 1 });
  });

  it("controller - a second contender stays follower while the leader renews", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const c1 = controller(cluster, "c1", clock);
    await advance(clock, 100);
    const c2 = controller(cluster, "c2", clock);
    const before = (await lease(cluster))!.revision;
    await heartbeats(cluster, clock, 5 * LEASE, { n1: true });
    expect(c1.role()).toBe("leader");
    expect(c2.role()).toBe("follower");
    const after = await lease(cluster);
    expect(after?.record.holder).toBe("c1");
    expect(after!.revision).toBeGreaterThan(before + 5); // renewed every ~LEASE/3
  });

  it("controller - a paused leader is replaced after its lease and fenced when it wakes", async () => {
    const cluster = new Cluster();
    const clock1 = new SimulatedClock();
    const clock2 = new SimulatedClock();
    const c1 = controller(cluster, "c1", clock1);
    await heartbeats(cluster, [clock1, clock2], 300, { n1: true, n2: true });
    const c2 = controller(cluster, "c2", clock2);
    await heartbeats(cluster, [clock1, clock2], 500, { n1: true, n2: true });
    expect(c1.role()).toBe("leader");
    expect(c2.role()).toBe("follower");

    // "SIGSTOP" c1: its clock stands still, so none of its timers fire.
    await heartbeats(cluster, clock2, 2 * LEASE, { n1: true, n2: true });
    expect(c2.role()).toBe("leader");
    expect((await lease(cluster))?.record).toMatchObject({ holder: "c2", term: 2 });
    const marker = await new AssignmentStore(cluster.buckets.assign).marker();
    expect(marker).toMatchObject({ holder: "c2", term: 2 });

    // "SIGCONT": c1's clock jumps and its overdue timers fire; it must notice and step down without writing.
    const assignRevision = await cluster.buckets.assign.lastRevision();
    clock1.increment(2 * LEASE);
    await heartbeats(cluster, [clock1, clock2], 500, { n1: true, n2: true });
    expect(c1.role()).toBe("follower");
    expect(c1.events.find((e) => e.type === "steppedDown")).toMatchObject({ reason: expect.stringMatching(/expired/) });
    expect(c2.role()).toBe("leader");
    for (const a of (await assignments(cluster)).values()) expect(a.term).toBeLessThanOrEqual(2);
    expect(await cluster.buckets.assign.lastRevision()).toBe(assignRevision);
  });

  it("controller - a partitioned leader steps down and the other takes over", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const c1 = controller(cluster, "c1", clock);
    await advance(clock, 100);
    const c2 = controller(cluster, "c2", clock);
    await heartbeats(cluster, clock, 500, { n1: true });
    c1.client.setDown(true);
    await heartbeats(cluster, clock, 2 * LEASE, { n1: true });
    expect(c1.role()).toBe("follower");
    expect(c2.role()).toBe("leader");
    // c1 gave up before c2 could have taken over: the stepping down happened first.
    const down = c1.events.findIndex((e) => e.type === "steppedDown");
    expect(down).toBeGreaterThanOrEqual(0);
    c1.client.setDown(false);
    await heartbeats(cluster, clock, 2 * LEASE, { n1: true });
    expect(c1.role()).toBe("follower");
    expect(c2.role()).toBe("leader");
  });

  it("controller - a stale leader's assignment writes are rejected by the bucket", async () => {
    const cluster = new Cluster();
    const store = new AssignmentStore(cluster.buckets.assign);
    const old = await store.fence("c1", 1, 0);
    const fresh = await store.fence("c2", 2, 0);
    await expect(store.write(old, [{ key: "acme.trades.0", node: "n1" }], 1, 0)).rejects.toBeInstanceOf(FencedError);
    const ok = await store.write(fresh, [{ key: "acme.trades.0", node: "n2" }], 2, 0);
    expect(ok.assignments.get("acme.trades.0")).toMatchObject({ node: "n2", leaseRevision: ok.lastRevision, term: 2 });
  });

  it("controller - an expired heartbeat moves the node's shards; flapping inside the timeout moves none", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    controller(cluster, "c1", clock, staticCatalog([tenant("acme", { trades: 16 })]));
    await heartbeats(cluster, clock, 600, { n1: true, n2: true, n3: true });
    const first = await assignments(cluster);
    expect(new Set([...first.values()].map((a) => a.node))).toEqual(new Set(["n1", "n2", "n3"]));

    // n3 flaps: silent for 400 ms (timeout 600), back for 200 ms, several times.
    let t = 0;
    await heartbeats(cluster, clock, 1800, { n1: true, n2: true, n3: () => (t += 100) % 600 >= 400 });
    const flapped = await assignments(cluster);
    expect([...flapped].map(([k, a]) => [k, a.node, a.leaseRevision])).toEqual([...first].map(([k, a]) => [k, a.node, a.leaseRevision]));

    // n3 dies: only its shards move, to the survivors.
    await heartbeats(cluster, clock, 1200, { n1: true, n2: true });
    const after = await assignments(cluster);
    for (const [k, a] of first) {
      if (a.node === "n3") expect(["n1", "n2"]).toContain(after.get(k)!.node);
      else expect(after.get(k)).toEqual(a);
    }
  });

  // The leader's own event loop blocked (a long synchronous query) for longer than the node timeout: the
  // heartbeats put meanwhile are delivered after its timers fire. On wall time it judged every node dead.
  for (const judged of ["attention", "wall"] as const) {
    it(`controller - a leader whose loop was blocked past the node timeout moves no shard when liveness is judged on attention time${judged === "wall" ? " (negative control: on wall time it does)" : ""}`, async () => {
      const cluster = new Cluster();
      const clock = new SimulatedClock();
      let blockedMs = 0;
      const attention = judged === "attention" ? () => clock.now() - blockedMs : undefined;
      controller(cluster, "c1", clock, staticCatalog([tenant("acme", { trades: 8 })]), attention === undefined ? {} : { attention });
      await heartbeats(cluster, clock, 600, { n1: true, n2: true });
      const before = await assignments(cluster);
      expect(new Set([...before.values()].map((a) => a.node))).toEqual(new Set(["n1", "n2"]));
      // 1.5 s in one step (timeout 600 ms): nothing is observed meanwhile, every due timer fires at its end.
      blockedMs += 1_500;
      clock.increment(1_500);
      await flush(4);
      await heartbeats(cluster, clock, 600, { n1: true, n2: true });
      const after = await assignments(cluster);
      const same = [...after].every(([k, a]) => before.get(k)?.node === a.node && before.get(k)?.leaseRevision === a.leaseRevision) && after.size === before.size;
      expect(same).toBe(judged === "attention");
    });
  }

  // Hysteresis (src/control/placement.ts): a node that comes back takes shards of live owners only after the settle period.
  const ownedBy = (m: ReadonlyMap<string, Assignment>, node: string): string[] => [...m].filter(([, a]) => a.node === node).map(([k]) => k).sort();
  const same = (a: ReadonlyMap<string, Assignment>, b: ReadonlyMap<string, Assignment>): boolean =>
    a.size === b.size && [...a].every(([k, x]) => b.get(k)?.node === x.node && b.get(k)?.leaseRevision === x.leaseRevision);
  const SETTLE = 3_000;

  for (const settleMs of [SETTLE, 0]) {
    it(`controller - a node back after a failover ${settleMs > 0 ? "takes no shard before the settle period; after it, its share, and then nothing moves" : "(negative control: settle 0) takes shards at once"}`, async () => {
      const cluster = new Cluster();
      const clock = new SimulatedClock();
      controller(cluster, "c1", clock, staticCatalog([tenant("acme", { trades: 16 })]), { settleMs });
      await heartbeats(cluster, clock, SETTLE + 500, { n1: true, n2: true, n3: true });
      const first = await assignments(cluster);
      expect(ownedBy(first, "n3").length).toBeGreaterThanOrEqual(5);
      // n3 dies: its shards move at once (node timeout 600 ms, a reconcile 200 ms).
      await heartbeats(cluster, clock, 1_000, { n1: true, n2: true });
      const failedOver = await assignments(cluster);
      expect(ownedBy(failedOver, "n3")).toEqual([]);
      // n3 back for 2.5 s (settle 3 s).
      await heartbeats(cluster, clock, SETTLE - 500, { n1: true, n2: true, n3: true });
      const back = await assignments(cluster);
      if (settleMs === 0) {
        expect(ownedBy(back, "n3").length).toBeGreaterThanOrEqual(5);
        return;
      }
      expect(same(back, failedOver)).toBe(true);
      // Settled: its share (floor(16 / 3)), every move to n3, in one step.
      await heartbeats(cluster, clock, 1_000, { n1: true, n2: true, n3: true });
      const settled = await assignments(cluster);
      expect(ownedBy(settled, "n3").length).toBeGreaterThanOrEqual(5);
      for (const [k, a] of settled) if (a.node !== "n3") expect(a).toEqual(failedOver.get(k));
      // And then nothing moves.
      await heartbeats(cluster, clock, 3 * SETTLE, { n1: true, n2: true, n3: true });
      expect(same(await assignments(cluster), settled)).toBe(true);
    });
  }

  for (const settleMs of [SETTLE, 0]) {
    it(`controller - a flapping node (down 1 s, up 2 s, settle 3 s) ${settleMs > 0 ? "never receives a shard" : "(negative control: settle 0) gets shards on every flap"}`, async () => {
      const cluster = new Cluster();
      const clock = new SimulatedClock();
      controller(cluster, "c1", clock, staticCatalog([tenant("acme", { trades: 16 })]), { settleMs });
      await heartbeats(cluster, clock, SETTLE + 500, { n1: true, n2: true, n3: true });
      let writesToN3 = 0;
      for (let flap = 0; flap < 4; flap++) {
        await heartbeats(cluster, clock, 1_000, { n1: true, n2: true });
        expect(ownedBy(await assignments(cluster), "n3")).toEqual([]);
        const down = await assignments(cluster);
        await heartbeats(cluster, clock, 2_000, { n1: true, n2: true, n3: true });
        const up = await assignments(cluster);
        writesToN3 += ownedBy(up, "n3").length;
        if (settleMs > 0) expect(same(up, down)).toBe(true);
      }
      if (settleMs > 0) expect(writesToN3).toBe(0);
      else expect(writesToN3).toBeGreaterThanOrEqual(4 * 5);
    });
  }

  it("controller - PX_PLACEMENT_SETTLE_MS: unset is 15 s, 0 is allowed, anything else is refused naming the variable, the rule and the fix", () => {
    expect(placementSettleMs({})).toBe(15_000);
    expect(placementSettleMs({ PX_PLACEMENT_SETTLE_MS: "0" })).toBe(0);
    expect(placementSettleMs({ PX_PLACEMENT_SETTLE_MS: "2500" })).toBe(2_500);
    expect(() => placementSettleMs({ PX_PLACEMENT_SETTLE_MS: "10s" })).toThrow(/PX_PLACEMENT_SETTLE_MS=10s: must be a number of milliseconds >= 0 .*unset it for the default 15000/);
    expect(() => placementSettleMs({ PX_PLACEMENT_SETTLE_MS: "-1" })).toThrow(/PX_PLACEMENT_SETTLE_MS=-1/);
  });

  it("controller - draining and removed nodes lose their shards at once", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    controller(cluster, "c1", clock, staticCatalog([tenant("acme", { trades: 8 })]));
    await heartbeats(cluster, clock, 500, { n1: true, n2: true });
    await cluster.client().stores.heartbeats.put(heartbeat("n2", "draining"));
    await advance(clock, 100);
    expect(new Set([...(await assignments(cluster)).values()].map((a) => a.node))).toEqual(new Set(["n1"]));
  });

  it("controller - a table removed from the spec loses its assignments", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const catalog = staticCatalog([tenant("acme", { trades: 2, quotes: 2 })]);
    controller(cluster, "c1", clock, catalog);
    await heartbeats(cluster, clock, 500, { n1: true });
    catalog.set([tenant("acme", { trades: 2 })]);
    await heartbeats(cluster, clock, 300, { n1: true });
    expect([...(await assignments(cluster)).keys()].sort()).toEqual(["acme.trades.0", "acme.trades.1"]);
  });

  it("controller - a stopped leader releases its lease and another takes over before it would expire", async () => {
    const cluster = new Cluster();
    const clock = new SimulatedClock();
    const c1 = controller(cluster, "c1", clock);
    await advance(clock, 100);
    const c2 = controller(cluster, "c2", clock);
    await advance(clock, 300);
    c1.actor.send({ type: "stop" });
    await flush();
    expect(c1.actor.getSnapshot().status).toBe("done");
    await advance(clock, LEASE / 2);
    expect(c2.role()).toBe("leader");
    expect((await lease(cluster))?.record).toMatchObject({ holder: "c2", term: 2 });
  });
});
