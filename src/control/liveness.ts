// Which nodes are alive, judged on the observer's own clock: a node is alive
// while its heartbeat revision changed less than `timeoutMs` ago (when we saw
// the change, not when the node says it sent it, so clock skew cannot matter).
// Each sighting also keeps when the node's current run began (`liveSince`):
// placement lets a node take shards from live owners only once it has been
// live, without a gap, for the settle period (placement.ts).
import type { NodePhase } from "./heartbeat.js";
import type { PlacementNode } from "./placement.js";

export interface NodeSighting {
  readonly revision: number;
  /** Observer clock when this revision was first seen. */
  readonly seenAt: number;
  readonly state: NodePhase;
  readonly capacityShards: number;
  /** Observer clock when the node was first seen running in its current run: first sighting, back after a gap of the timeout or more, or back to `running`. */
  readonly liveSince: number;
  /** What its newest heartbeat says it hosts: shard key -> lease revision (undefined: the heartbeat did not say). */
  readonly shards?: ReadonlyMap<string, number>;
}

/** What a heartbeat tells the controller about its node. */
export interface NodeReport {
  readonly state: NodePhase;
  readonly capacityShards: number;
  /** shard key -> the lease revision the node runs it under. */
  readonly shards?: ReadonlyMap<string, number>;
}

export type NodeTable = ReadonlyMap<string, NodeSighting>;

export function sightNode(table: NodeTable, nodeId: string, revision: number, info: NodeReport, now: number, timeoutMs: number): NodeTable {
  const prev = table.get(nodeId);
  // A watcher restart re-delivers the same revision: that is not a sign of life.
  if (prev && prev.revision >= revision) return table;
  // The run goes on while the node was fresh and running all along; a gap (it was dead for placement) starts a new one.
  const goesOn = prev !== undefined && prev.state === "running" && info.state === "running" && isFresh(prev, now, timeoutMs);
  const next = new Map(table);
  next.set(nodeId, { revision, seenAt: now, state: info.state, capacityShards: info.capacityShards, liveSince: goesOn ? prev.liveSince : now, ...(info.shards === undefined ? {} : { shards: info.shards }) });
  return next;
}

export function forgetNode(table: NodeTable, nodeId: string): NodeTable {
  if (!table.has(nodeId)) return table;
  const next = new Map(table);
  next.delete(nodeId);
  return next;
}

export const isFresh = (s: NodeSighting, now: number, timeoutMs: number): boolean => now - s.seenAt < timeoutMs;

/** Nodes that may own shards: fresh heartbeat and phase `running`; those live for less than `settleMs` are marked settling. */
export function placeableNodes(table: NodeTable, now: number, timeoutMs: number, settleMs = 0): PlacementNode[] {
  const out: PlacementNode[] = [];
  for (const [id, s] of table) {
    if (s.state !== "running" || !isFresh(s, now, timeoutMs)) continue;
    out.push({ id, capacity: s.capacityShards, ...(now - s.liveSince < settleMs ? { settling: true } : {}) });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Earliest time at which a fresh node goes stale (so a reconcile can be scheduled then). */
export function nextExpiry(table: NodeTable, now: number, timeoutMs: number): number | undefined {
  let t: number | undefined;
  for (const s of table.values()) {
    const at = s.seenAt + timeoutMs;
    if (at > now && (t === undefined || at < t)) t = at;
  }
  return t;
}

/** Earliest time at which a placeable node settles (so a reconcile can be scheduled then). */
export function nextSettle(table: NodeTable, now: number, timeoutMs: number, settleMs: number): number | undefined {
  let t: number | undefined;
  for (const s of table.values()) {
    const at = s.liveSince + settleMs;
    if (s.state === "running" && isFresh(s, now, timeoutMs) && at > now && (t === undefined || at < t)) t = at;
  }
  return t;
}
