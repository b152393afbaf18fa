// Shard placement by rendezvous (highest random weight) hashing: every shard
// ranks every node by hash(node, shard) and goes to the best-ranked node with
// room. Removing a node moves only its own shards. An override (`pxctl move
// shard`, lag remediation) puts its shard on the named node ahead of
// everything else while that node is placeable and has room. Loads are bounded
// (consistent hashing with bounded loads, Mirrokni et al. 2018): no node takes
// more than 1.25x its fair share of the shards, so a shard whose best node is
// full goes to its next best; plain rendezvous hashing put 6, 4 and 2 of 12
// shards on 3 nodes, and all 6 of a table on one of 2.
// Hysteresis (every move costs a hot-set replay on the new owner and a sink
// restart): a shard stays with a live owner that is within the bound; a node
// that (re)joined takes shards from live owners only once it has settled
// (been live for the settle period without a heartbeat gap, liveness.ts), and
// then its share (floor of an even share) in one step and no more, so a
// flapping node never gets any. Failover away from a dead node and overrides
// do not wait. Pure: the controller calls it on every reconcile.

export interface PlacementNode {
  readonly id: string;
  /** Most shards this node takes; 0 or undefined = no limit. */
  readonly capacity?: number;
  /**
   * Live for less than the settle period: keeps the shards it owns and takes
   * overrides and shards no settled node can take, but no shard of a live
   * owner. Ignored while no node has settled (a cluster starting up).
   */
  readonly settling?: boolean;
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
 * How long a node must have been live, without a heartbeat gap, before it takes
 * shards from live owners (PX_PLACEMENT_SETTLE_MS): 15 s is 7 node timeouts
 * (2 s) and the heartbeat thread's grace, longer than the hiccups that make a
 * node flap (GC and event-loop pauses, a KV stream electing a Raft leader for
 * several seconds), and short beside a restart or failover that took it away.
 */
export const PLACEMENT_SETTLE_MS = 15_000;

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
  const settled = nodes.filter((n) => n.settling !== true);
  // Nodes that place by hashing. With none settled (a cluster starting, a controller that just started) every live node does,
  // or the first node up would take every shard and hand most of them on a settle period later.
  const eligible = settled.length > 0 ? settled : nodes;
  const isEligible = new Set(eligible.map((n) => n.id));
  // The fair-share bound applies to hashing, not to an override: an operator's move goes where it was asked while there is capacity.
  const bound = eligible.length === 0 ? 0 : Math.ceil((balance * sorted.length) / eligible.length);
  const hasCapacity = (id: string): boolean => (load.get(id) ?? 0) < (cap.get(id) ?? 0);
  const hasRoom = (id: string): boolean => hasCapacity(id) && (load.get(id) ?? 0) < bound;
  const owners = new Map<string, string>();
  const take = (shard: string, id: string): void => {
    owners.set(shard, id);
    load.set(id, (load.get(id) ?? 0) + 1);
  };
  const ranks = new Map(sorted.map((s) => [s, rankNodes(s, eligible)]));
  const home = (s: string): string | undefined => ranks.get(s)?.[0]?.id;
  const pinned = (s: string): boolean => overrides.get(s) !== undefined && overrides.get(s) === owners.get(s);

  for (const s of sorted) {
    const o = overrides.get(s);
    if (o !== undefined && load.has(o) && hasCapacity(o)) take(s, o);
  }
  // Shards already at home keep their place first, so a full node evicts newcomers, not residents.
  for (const s of sorted) {
    const h = home(s);
    if (!owners.has(s) && h !== undefined && previous.get(s) === h && hasRoom(h)) take(s, h);
  }
  // Other residents stay while their node (settling or not) has room: a shard on a lower choice (its best node was full, or
  // was not there yet) does not move when an unrelated node dies or joins. A shard an override had put somewhere comes
  // here without a previous owner once the override is gone (plan.ts), so it is placed afresh.
  for (const s of sorted) {
    const prev = previous.get(s);
    if (!owners.has(s) && prev !== undefined && load.has(prev) && hasRoom(prev)) take(s, prev);
  }
  // Shards without a live owner (new, its node died or left, or it was over the bound): home, else the next best with room.
  for (const s of sorted) {
    if (owners.has(s)) continue;
    const next = ranks.get(s)?.find((n) => hasRoom(n.id));
    if (next) take(s, next.id);
  }
  // No settled node has room: a settling node rather than no owner at all.
  for (const s of sorted) {
    if (owners.has(s)) continue;
    const next = rankNodes(s, nodes).find((n) => !isEligible.has(n.id) && hasRoom(n.id));
    if (next) take(s, next.id);
  }
  if (Number.isFinite(bound)) fillToShare(sorted.filter((s) => !pinned(s)), eligible, owners, load, cap, previous);

  const moved = sorted.filter((s) => previous.has(s) && owners.has(s) && previous.get(s) !== owners.get(s));
  const unassigned = sorted.filter((s) => !owners.has(s));
  return { owners, moved, unassigned };
}

/**
 * Below this fraction of its share a node takes residents of live owners (up to its share). Half: a band wide enough that
 * small counts do not flip (8 shards on 2 nodes: 5 and 3 stay), while a node back from a failover (0 or the few over the upper
 * bound) is well below it.
 */
export const SHORT_OF_SHARE = 0.5;

/**
 * The lower bound, with hysteresis. A placing node below its share (floor of
 * the shards placed by hashing on the placing nodes over their number, within
 * its capacity; shards an override put count for neither) takes shards from
 * the most loaded node, one at a time while that node holds 2 more than it.
 * Shards that move anyway (no live owner, or over the upper bound) go first:
 * that costs no extra move, so a node dying moves only its own shards. A live
 * owner's resident is taken only by a node that kept less than half its share
 * (SHORT_OF_SHARE) of its own shards, and then up to its share, preferring
 * the shards that rank it highest (the shards it wins): a node that joined or came back after a
 * failover gets its share in one step and no more, while a node one shard
 * short (after an override, say) pulls nothing. Without a lower bound such a
 * node would get only the excess over the upper bound (1 of 9 shards on 3
 * nodes) and stay nearly idle. Mutates `owners` and `load`.
 */
function fillToShare(
  hashed: readonly string[],
  eligible: readonly PlacementNode[],
  owners: Map<string, string>,
  load: Map<string, number>,
  cap: ReadonlyMap<string, number>,
  previous: ReadonlyMap<string, string>,
): void {
  if (eligible.length < 2) return;
  const ids = new Set(eligible.map((n) => n.id));
  const own = new Map(eligible.map((n) => [n.id, 0]));
  for (const s of hashed) {
    const o = owners.get(s);
    if (o !== undefined && ids.has(o)) own.set(o, (own.get(o) ?? 0) + 1);
  }
  const share = Math.floor([...own.values()].reduce((a, b) => a + b, 0) / eligible.length);
  // Counted on the shards it keeps: those that reach it in this pass (over the bound elsewhere) do not make a node back whole.
  const kept = new Map(eligible.map((n) => [n.id, hashed.filter((s) => owners.get(s) === n.id && previous.get(s) === n.id).length]));
  const short = new Set(eligible.filter((n) => (kept.get(n.id) ?? 0) < share * SHORT_OF_SHARE).map((n) => n.id));
  // Ranked only when some node is below its share (placement runs on every reconcile; mostly none is).
  const ranked = new Map<string, Map<string, number>>();
  const rankOf = (s: string, id: string): number => {
    let r = ranked.get(s);
    if (r === undefined) ranked.set(s, (r = new Map(rankNodes(s, eligible).map((n, i) => [n.id, i]))));
    return r.get(id) ?? 0;
  };
  for (;;) {
    const takers = eligible
      .filter((n) => (own.get(n.id) ?? 0) < share && (load.get(n.id) ?? 0) < (cap.get(n.id) ?? 0))
      .sort((a, b) => (own.get(a.id) ?? 0) - (own.get(b.id) ?? 0) || (a.id < b.id ? -1 : 1));
    let gave = false;
    for (const t of takers) {
      const tOwn = own.get(t.id) ?? 0;
      let best: { s: string; from: string; key: [number, number, number] } | undefined;
      for (const s of hashed) {
        const from = owners.get(s);
        if (from === undefined || from === t.id || !ids.has(from)) continue;
        const fromOwn = own.get(from) ?? 0;
        const resident = previous.get(s) === from;
        if (fromOwn < tOwn + 2 || (resident && !short.has(t.id))) continue;
        // Lower is better: a shard that moves anyway, then the most loaded giver, then the taker's rank for the shard.
        const key: [number, number, number] = [resident ? 1 : 0, -fromOwn, rankOf(s, t.id)];
        if (lessKey(key, best?.key)) best = { s, from, key }; // ties: the first key (sorted)
      }
      if (best === undefined) continue;
      owners.set(best.s, t.id);
      for (const [m, id, d] of [[own, best.from, -1], [own, t.id, 1], [load, best.from, -1], [load, t.id, 1]] as const) m.set(id, (m.get(id) ?? 0) + d);
      gave = true;
      break;
    }
    if (!gave) return;
  }
}

const lessKey = (a: readonly number[], b: readonly number[] | undefined): boolean => {
  if (b === undefined) return true;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
};

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
