// Which nodes are alive, judged on the observer's own clock: a node is alive
// while its heartbeat revision changed less than `timeoutMs` ago (when we saw
// the change, not when the node says it sent it, so clock skew cannot matter).
import type { NodePhase } from "./heartbeat.js";
import type { PlacementNode } from "./placement.js";

export interface NodeSighting {
  readonly revision: number;
  /** Observer clock when this revision was first seen. */
  readonly seenAt: number;
  readonly state: NodePhase;
  readonly capacityShards: number;
}

export type NodeTable = ReadonlyMap<string, NodeSighting>;

export function sightNode(table: NodeTable, nodeId: string, revision: number, info: { state: NodePhase; capacityShards: number }, now: number): NodeTable {
  const prev = table.get(nodeId);
  // A watcher restart re-delivers the same revision: that is not a sign of life.
  if (prev && prev.revision >= revision) return table;
  const next = new Map(table);
  next.set(nodeId, { revision, seenAt: now, state: info.state, capacityShards: info.capacityShards });
  return next;
}

export function forgetNode(table: NodeTable, nodeId: string): NodeTable {
  if (!table.has(nodeId)) return table;
  const next = new Map(table);
  next.delete(nodeId);
  return next;
}

export const isFresh = (s: NodeSighting, now: number, timeoutMs: number): boolean => now - s.seenAt < timeoutMs;

/** Nodes that may own shards: fresh heartbeat and phase `running`. */
export function placeableNodes(table: NodeTable, now: number, timeoutMs: number): PlacementNode[] {
  const out: PlacementNode[] = [];
  for (const [id, s] of table) if (s.state === "running" && isFresh(s, now, timeoutMs)) out.push({ id, capacity: s.capacityShards });
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
