import { describe, expect, it } from "vitest";
import { nextSettle, placeShards, placeableNodes, planAssignments, rankNodes, sightNode } from "../../src/control/index.js";
import type { Assignment, PlacementNode } from "../../src/control/index.js";

const shards = (n: number, table = "trades"): string[] => Array.from({ length: n }, (_, i) => `t.${table}.${i}`);
const nodes = (...ids: string[]): PlacementNode[] => ids.map((id) => ({ id }));
const counts = (owners: ReadonlyMap<string, string>): Map<string, number> => {
  const c = new Map<string, number>();
  for (const n of owners.values()) c.set(n, (c.get(n) ?? 0) + 1);
  return c;
};

describe("placement", () => {
  it("placement - the same inputs in any order give the same owners", () => {
    const s = shards(64);
    const a = placeShards(s, nodes("a", "b", "c"));
    const b = placeShards([...s].reverse(), nodes("c", "a", "b"));
    expect([...b.owners].sort()).toEqual([...a.owners].sort());
    expect(rankNodes("t.x.1", nodes("a", "b", "c")).map((n) => n.id)).toEqual(rankNodes("t.x.1", nodes("c", "b", "a")).map((n) => n.id));
  });

  it("placement - shards spread over the nodes", () => {
    const p = placeShards(shards(256), nodes("a", "b", "c", "d"));
    expect(p.unassigned).toEqual([]);
    for (const n of counts(p.owners).values()) expect(n).toBeGreaterThan(40);
  });

  it("placement - a joining node takes only shards it wins, about 1/N of them", () => {
    const s = shards(400);
    const before = placeShards(s, nodes("a", "b", "c", "d"));
    const after = placeShards(s, nodes("a", "b", "c", "d", "e"), before.owners);
    expect(after.moved.length).toBeGreaterThan(40);
    expect(after.moved.length).toBeLessThan(130); // expected 80
    for (const k of after.moved) expect(after.owners.get(k)).toBe("e");
  });

  it("placement - a leaving node's shards move and no other shard does", () => {
    const s = shards(400);
    const before = placeShards(s, nodes("a", "b", "c", "d"));
    const after = placeShards(s, nodes("a", "b", "d"), before.owners);
    const lost = [...before.owners].filter(([, n]) => n === "c").map(([k]) => k);
    expect([...after.moved].sort()).toEqual(lost.sort());
    for (const k of lost) expect(after.owners.get(k)).not.toBe("c");
  });

  it("placement - capacity is a hard limit and residents keep their place", () => {
    const s = shards(30);
    const before = placeShards(s, [{ id: "a", capacity: 10 }, { id: "b", capacity: 10 }, { id: "c", capacity: 10 }]);
    for (const n of counts(before.owners).values()) expect(n).toBeLessThanOrEqual(10);
    expect(before.unassigned).toEqual([]);
    const again = placeShards(s, [{ id: "a", capacity: 10 }, { id: "b", capacity: 10 }, { id: "c", capacity: 10 }], before.owners);
    expect(again.moved).toEqual([]);
    const tight = placeShards(shards(5), [{ id: "a", capacity: 2 }, { id: "b", capacity: 2 }]);
    expect(tight.unassigned).toHaveLength(1);
  });

  it("placement - bounded loads: no node takes more than 1.25x an even share; plain rendezvous hashing (the negative control) does", () => {
    // Shard counts of real tables (a few per table) over 2-3 nodes, many seeds of node ids.
    let unbalanced = 0;
    for (let seed = 0; seed < 40; seed++) {
      const ids = [`n${seed}a`, `n${seed}b`, `n${seed}c`].slice(0, 2 + (seed % 2));
      const s = [...shards(6), ...shards(12, "quotes")];
      const bound = Math.ceil((1.25 * s.length) / ids.length);
      const p = placeShards(s, nodes(...ids));
      expect(p.unassigned).toEqual([]);
      for (const n of counts(p.owners).values()) expect(n).toBeLessThanOrEqual(bound);
      // Still placed afresh from any order, and stable when placed again.
      expect(placeShards(s, nodes(...ids), p.owners).moved).toEqual([]);
      if (Math.max(...counts(placeShards(s, nodes(...ids), new Map(), new Map(), Number.POSITIVE_INFINITY).owners).values()) > bound) unbalanced++;
    }
    expect(unbalanced).toBeGreaterThan(0);
  });

  it("placement - bounded loads: a node dying moves only its shards, a node joining takes shards it wins up to the bound", () => {
    for (let seed = 0; seed < 20; seed++) {
      const s = shards(16);
      const all = nodes(`a${seed}`, `b${seed}`, `c${seed}`);
      const before = placeShards(s, all.slice(0, 2));
      const joined = placeShards(s, all, before.owners);
      const bound = Math.ceil((1.25 * 16) / 3);
      // A shard moves to the joiner, or off a node that is over the new (lower) bound.
      for (const k of joined.moved) expect(joined.owners.get(k) === `c${seed}` || counts(before.owners).get(before.owners.get(k)!)! > bound, k).toBe(true);
      expect(Math.max(...counts(joined.owners).values())).toBeLessThanOrEqual(bound);
      const died = placeShards(s, [all[0]!, all[2]!], joined.owners);
      const lost = [...joined.owners].filter(([, n]) => n === `b${seed}`).map(([k]) => k);
      expect([...died.moved].sort()).toEqual(lost.sort());
    }
  });

  it("placement - no nodes: every shard is unassigned", () => {
    expect(placeShards(shards(3), []).unassigned).toHaveLength(3);
  });
});

describe("plan", () => {
  const a = (node: string, rev = 1): Assignment => ({ node, leaseRevision: rev, term: 1, assignedAtMs: 0 });

  it("plan - only changed shards are written and undesired ones deleted", () => {
    const placed = placeShards(["t.x.0", "t.x.1"], nodes("a", "b")).owners;
    const current = new Map([...placed].map(([k, n]) => [k, a(n)]));
    current.set("t.old.0", a("a"));
    expect(planAssignments(["t.x.0", "t.x.1"], nodes("a", "b"), current)).toEqual([{ key: "t.old.0", node: undefined }]);
  });

  it("plan - with no placeable node shards keep their old owner", () => {
    const current = new Map([["t.x.0", a("gone")]]);
    expect(planAssignments(["t.x.0", "t.x.1"], [], current)).toEqual([]);
  });
});

// Hysteresis: every move is a hot-set replay on the new owner and a sink restart, so a node that (re)joins takes shards
// from live owners only once it has settled, and then only its share.
describe("placement - hysteresis", () => {
  const settling = (id: string): PlacementNode => ({ id, settling: true });
  const ownedBy = (owners: ReadonlyMap<string, string>, id: string): string[] => [...owners].filter(([, n]) => n === id).map(([k]) => k);

  it("hysteresis - a node back after a failover gets nothing while settling; settled, it gets its share in one step and nothing moves after", () => {
    for (let seed = 0; seed < 20; seed++) {
      const s = [...shards(9), ...shards(7, "quotes")];
      const [a, b, c] = [`a${seed}`, `b${seed}`, `c${seed}`];
      const p0 = placeShards(s, nodes(a, b, c));
      // c dies: exactly its shards move, at once.
      const p1 = placeShards(s, nodes(a, b), p0.owners);
      expect([...p1.moved].sort()).toEqual(ownedBy(p0.owners, c).sort());
      // c back, settling: nothing moves to it.
      const p2 = placeShards(s, [...nodes(a, b), settling(c)], p1.owners);
      expect(p2.moved).toEqual([]);
      expect(ownedBy(p2.owners, c)).toEqual([]);
      // c settled: it takes its share (at least floor(16 / 3) = 5), every move goes to it, no node is over the bound.
      const p3 = placeShards(s, nodes(a, b, c), p2.owners);
      expect(ownedBy(p3.owners, c).length).toBeGreaterThanOrEqual(5);
      for (const k of p3.moved) expect(p3.owners.get(k)).toBe(c);
      expect(p3.moved.length).toBe(ownedBy(p3.owners, c).length);
      expect(Math.max(...counts(p3.owners).values())).toBeLessThanOrEqual(Math.ceil((1.25 * 16) / 3));
      // Placed again and again: nothing moves.
      expect(placeShards(s, nodes(a, b, c), p3.owners).moved).toEqual([]);
    }
  });

  it("hysteresis - negative control: a node back that is not marked settling (settle 0) takes shards at once", () => {
    let churned = 0;
    for (let seed = 0; seed < 20; seed++) {
      const s = [...shards(9), ...shards(7, "quotes")];
      const all = nodes(`a${seed}`, `b${seed}`, `c${seed}`);
      const p1 = placeShards(s, all.slice(0, 2), placeShards(s, all).owners);
      churned += placeShards(s, all, p1.owners).moved.length;
    }
    expect(churned).toBeGreaterThan(20 * 4);
  });

  it("hysteresis - a flapping node never gets a shard, and its flaps move nothing but its own shards once", () => {
    const s = shards(24);
    const p0 = placeShards(s, nodes("a", "b", "c"));
    let owners = placeShards(s, nodes("a", "b"), p0.owners).owners;
    let moves = 0;
    for (let flap = 0; flap < 10; flap++) {
      const up = placeShards(s, [...nodes("a", "b"), settling("c")], owners);
      const down = placeShards(s, nodes("a", "b"), up.owners);
      moves += up.moved.length + down.moved.length;
      expect(ownedBy(up.owners, "c")).toEqual([]);
      owners = down.owners;
    }
    expect(moves).toBe(0);
    // Negative control: unsettled flaps (settle 0) move shards to c and back every time.
    let churn = 0;
    for (let flap = 0; flap < 10; flap++) {
      const up = placeShards(s, nodes("a", "b", "c"), owners);
      const down = placeShards(s, nodes("a", "b"), up.owners);
      churn += up.moved.length + down.moved.length;
      owners = down.owners;
    }
    expect(churn).toBeGreaterThanOrEqual(10 * 2 * 8);
  });

  it("hysteresis - failover stays immediate while a node settles: the dead node's shards go to settled nodes, to the settling one only when they are full", () => {
    const s = shards(12);
    const p0 = placeShards(s, nodes("a", "b"));
    const failed = placeShards(s, [{ id: "b" }, settling("c")], p0.owners);
    expect(failed.unassigned).toEqual([]);
    expect([...failed.owners.values()].every((n) => n === "b")).toBe(true);
    expect([...failed.moved].sort()).toEqual(ownedBy(p0.owners, "a").sort());
    // b can hold 8: the rest go to c rather than nowhere.
    const full = placeShards(s, [{ id: "b", capacity: 8 }, settling("c")], p0.owners);
    expect(counts(full.owners)).toEqual(new Map([["b", 8], ["c", 4]]));
  });

  it("hysteresis - no node settled (a cluster starting): every live node places, as without a settle period", () => {
    const s = shards(16);
    const all = nodes("a", "b", "c");
    const fresh = placeShards(s, all.map((n) => settling(n.id)));
    expect([...fresh.owners]).toEqual([...placeShards(s, all).owners]);
    // A node that joins a starting cluster takes its share at once; once the first node has settled, the others keep what they hold.
    const first = placeShards(s, [settling("a")]);
    const joined = placeShards(s, all.map((n) => settling(n.id)), first.owners);
    expect(Math.min(...counts(joined.owners).values())).toBeGreaterThanOrEqual(5);
    expect(placeShards(s, [{ id: "a" }, settling("b"), settling("c")], joined.owners).moved).toEqual([]);
  });

  it("hysteresis - an override to a settling node applies at once", () => {
    const s = shards(8);
    const p0 = placeShards(s, nodes("a", "b"));
    const p = placeShards(s, [...nodes("a", "b"), settling("c")], p0.owners, new Map([["t.trades.2", "c"]]));
    expect(p.moved).toEqual(["t.trades.2"]);
    expect(p.owners.get("t.trades.2")).toBe("c");
  });
});

describe("liveness - runs", () => {
  const info = (state: "running" | "joining" = "running") => ({ state, capacityShards: 0 });
  it("liveness - a node's run goes on while its heartbeat stays fresh; a gap of the timeout or a phase change starts a new one", () => {
    let t = sightNode(new Map(), "n", 1, info(), 0, 600);
    t = sightNode(t, "n", 2, info(), 500, 600);
    t = sightNode(t, "n", 3, info(), 1_000, 600);
    expect(t.get("n")?.liveSince).toBe(0);
    expect(placeableNodes(t, 1_000, 600, 1_000)).toEqual([{ id: "n", capacity: 0 }]);
    expect(placeableNodes(t, 900, 600, 1_000)).toEqual([{ id: "n", capacity: 0, settling: true }]);
    // Silent for 700 ms (timeout 600): a new run.
    t = sightNode(t, "n", 4, info(), 1_700, 600);
    expect(t.get("n")?.liveSince).toBe(1_700);
    expect(nextSettle(t, 1_800, 600, 1_000)).toBe(2_700);
    t = sightNode(t, "n", 5, info("joining"), 1_800, 600);
    t = sightNode(t, "n", 6, info(), 1_900, 600);
    expect(t.get("n")?.liveSince).toBe(1_900);
    // A re-delivered revision is no sign of life and changes nothing.
    expect(sightNode(t, "n", 6, info(), 5_000, 600)).toBe(t);
  });
});
