// Shard placement by rendezvous (highest random weight) hashing: every shard
// ranks every node by hash(node, shard) and goes to the best-ranked node with
// room. Adding a node moves only the shards it now wins; removing one moves
// only its own shards. An override (`pxctl move shard`, lag remediation) puts
// its shard on the named node ahead of everything else while that node is
// placeable and has room. Loads are bounded (consistent hashing with bounded
// loads, Mirrokni et al. 2018): no node takes more than 1.25x its fair share of
// the shards placed by hashing, so a shard whose best node is full goes to its
// next best; plain rendezvous hashing put 6, 4 and 2 of 12 shards on 3 nodes,
// and all 6 of a table on one of 2. Pure: the controller calls it on every
// reconcile.

export interface PlacementNode {
  readonly id: string;
  /** Most shards this node takes; 0 or undefined = no limit. */
  readonly capacity?: number;
}

export interface Placement {
  /** shard key -> node id, for every shard that could be placed. */
  readonly owners: ReadonlyMap<string, string>;
  /** Shards whose owner changed from `previous` (an owner that was there before). */
  readonly moved: readonly string[];
  /** Shards no node can take (no nodes, or every node is full). */
  readonly unassigned: readonly string[];
}

/** 53-bit string hash (cyrb53): fast, well mixed, stable across processes and versions. */
export function hash53(s: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Nodes in the order a shard prefers them (best first); ties broken by id so every caller agrees. */
export function rankNodes(shard: string, nodes: readonly PlacementNode[]): PlacementNode[] {
  const scored = nodes.map((n) => ({ n, score: hash53(`${n.id}\u0000${shard}`) }));
  scored.sort((a, b) => b.score - a.score || (a.n.id < b.n.id ? -1 : a.n.id > b.n.id ? 1 : 0));
  return scored.map((s) => s.n);
}

/** Most shards a node takes by hashing, as a multiple of an even share (ceil(1.25 x shards / nodes)); Infinity: plain rendezvous hashing. */
export const LOAD_BOUND = 1.25;

/**
 * `overrides`: shard key -> node id. Honoured first (so the shard does not go
 * back home on the next reconcile) when the node is among `nodes` and has room;
 * otherwise the shard is placed as if there were none (see voidOverrides).
 */
export function placeShards(
  shards: readonly string[],
  nodes: readonly PlacementNode[],
  previous: ReadonlyMap<string, string> = new Map(),
  overrides: ReadonlyMap<string, string> = new Map(),
  balance = LOAD_BOUND,
): Placement {
  const sorted = [...new Set(shards)].sort();
  const load = new Map(nodes.map((n) => [n.id, 0]));
  const cap = new Map(nodes.map((n) => [n.id, n.capacity && n.capacity > 0 ? n.capacity : Number.POSITIVE_INFINITY]));
  // The fair-share bound applies to hashing, not to an override: an operator's move goes where it was asked while there is capacity.
  const bound = nodes.length === 0 ? 0 : Math.ceil((balance * sorted.length) / nodes.length);
  const hasCapacity = (id: string): boolean => (load.get(id) ?? 0) < (cap.get(id) ?? 0);
  const hasRoom = (id: string): boolean => hasCapacity(id) && (load.get(id) ?? 0) < bound;
  const owners = new Map<string, string>();
  const take = (shard: string, id: string): void => {
    owners.set(shard, id);
    load.set(id, (load.get(id) ?? 0) + 1);
  };
  const ranks = new Map(sorted.map((s) => [s, rankNodes(s, nodes)]));
  const home = (s: string): string | undefined => ranks.get(s)?.[0]?.id;

  for (const s of sorted) {
    const o = overrides.get(s);
    if (o !== undefined && load.has(o) && hasCapacity(o)) take(s, o);
  }
  // Shards already at home keep their place first, so a full node evicts newcomers, not residents.
  for (const s of sorted) {
    const h = home(s);
    if (!owners.has(s) && h !== undefined && previous.get(s) === h && hasRoom(h)) take(s, h);
  }
  // A node that owned nothing before (it joined) takes the shards it wins, as rendezvous hashing moves them.
  const before = new Set(previous.values());
  for (const s of sorted) {
    const h = home(s);
    if (!owners.has(s) && h !== undefined && !before.has(h) && hasRoom(h)) take(s, h);
  }
  // Other residents stay while their node has room: a shard on a lower choice (its best node was full, or was not
  // there yet) does not move when an unrelated node dies. A shard an override had put somewhere comes here without
  // a previous owner once the override is gone (plan.ts), so it goes home.
  for (const s of sorted) {
    const prev = previous.get(s);
    if (!owners.has(s) && prev !== undefined && load.has(prev) && hasRoom(prev)) take(s, prev);
  }
  for (const s of sorted) {
    const h = home(s);
    if (!owners.has(s) && h !== undefined && hasRoom(h)) take(s, h);
  }
  // Home is full: the next best with room.
  for (const s of sorted) {
    if (owners.has(s)) continue;
    const next = ranks.get(s)?.find((n) => hasRoom(n.id));
    if (next) take(s, next.id);
  }

  const moved = sorted.filter((s) => previous.has(s) && owners.has(s) && previous.get(s) !== owners.get(s));
  const unassigned = sorted.filter((s) => !owners.has(s));
  return { owners, moved, unassigned };
}

/**
 * Overrides that no longer hold: their shard is not wanted any more, or their
 * node is not placeable (dead, draining, gone). The leader clears them, so a
 * node that comes back does not pull the shard over again.
 */
export function voidOverrides(overrides: ReadonlyMap<string, string>, shards: readonly string[], nodes: readonly PlacementNode[]): string[] {
  const wanted = new Set(shards);
  const placeable = new Set(nodes.map((n) => n.id));
  return [...overrides].filter(([s, node]) => !wanted.has(s) || !placeable.has(node)).map(([s]) => s).sort();
}
