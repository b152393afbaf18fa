import { describe, expect, it } from "vitest";
import { placeShards, planAssignments, rankNodes } from "../../src/control/index.js";
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
