// Assignments their node does not host. The leader wrote px_assign and, until
// now, trusted the node to follow it; each heartbeat lists the shards the
// node's agent runs (with their lease revisions), and nothing compared the two.
// So a node that kept heartbeating but did not run a shard given to it (its
// px_assign watch deaf, a start that never succeeds) left that shard hosted by
// no node, for good and silently (the fault suite, issue 19). The leader now
// notes, per heartbeat, each assignment the node does not report at its
// revision, and one left unreported for `repairMs` while the node stays live
// is written again: to another live node (a shard its owner cannot run), or,
// with none, to the same node under a new revision (a change its agent sees
// afresh). Pure: the controller keeps the table and calls these.
import type { Assignment, AssignmentWrite } from "./assignments.js";
import { rankNodes } from "./placement.js";
import type { PlacementNode } from "./placement.js";

/**
 * How long a live node may leave an assignment unreported before the leader
 * moves it (ControllerInput.repairMs; 0 turns the repair off): a start waits up to 5 s for the table in
 * the node's catalog and is retried every 0.5 s, a heartbeat follows it at
 * once, and heartbeats come every 0.5 s; 10 s is twice that with room for a
 * loaded node, and short beside the minutes a shard stayed unhosted.
 */
export const UNHOSTED_REPAIR_MS = 10_000;

export interface Unreported {
  readonly node: string;
  /** The assignment's lease revision the node does not report. */
  readonly revision: number;
  /** Observer clock at the first heartbeat of the node that left it out. */
  readonly since: number;
}

/** shard key -> the assignment its node does not report, and since when. */
export type UnreportedTable = ReadonlyMap<string, Unreported>;

/** A repair the leader makes: the shard moves (or is written again) because its owner does not host it. */
export interface UnhostedRepair {
  readonly key: string;
  readonly from: string;
  readonly revision: number;
  readonly to: string;
  readonly forMs: number;
}

/**
 * After a heartbeat of `nodeId` saying it hosts `reported` (key -> lease
 * revision; undefined: the heartbeat did not say, nothing changes): its
 * assignments it reports at their revision (or newer) are cleared, the others
 * are kept with the time they were first left out.
 */
export function noteReport(table: UnreportedTable, assignments: ReadonlyMap<string, Assignment>, nodeId: string, reported: ReadonlyMap<string, number> | undefined, now: number): UnreportedTable {
  if (reported === undefined) return table;
  const next = new Map([...table].filter(([, u]) => u.node !== nodeId));
  for (const [key, a] of assignments) {
    if (a.node !== nodeId || (reported.get(key) ?? 0) >= a.leaseRevision) continue;
    const prev = table.get(key);
    next.set(key, prev !== undefined && prev.node === nodeId && prev.revision === a.leaseRevision ? prev : { node: nodeId, revision: a.leaseRevision, since: now });
  }
  return next;
}

/** Entries whose assignment still stands (the others were rewritten since). */
export function pruneUnreported(table: UnreportedTable, assignments: ReadonlyMap<string, Assignment>): UnreportedTable {
  const next = new Map([...table].filter(([key, u]) => assignments.get(key)?.node === u.node && assignments.get(key)?.leaseRevision === u.revision));
  return next.size === table.size ? table : next;
}

/**
 * Assignments left unreported for `repairMs` by a node that is placeable now
 * (a node that is not is failed over by placement anyway), each with where it
 * goes: the best-ranked other placeable node, settled ones first; with no other
 * node, the same node again (a new revision).
 */
export function dueRepairs(table: UnreportedTable, assignments: ReadonlyMap<string, Assignment>, nodes: readonly PlacementNode[], now: number, repairMs: number): UnhostedRepair[] {
  if (repairMs <= 0) return [];
  const placeable = new Set(nodes.map((n) => n.id));
  const out: UnhostedRepair[] = [];
  for (const [key, u] of [...table].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const a = assignments.get(key);
    if (a === undefined || a.node !== u.node || a.leaseRevision !== u.revision || now - u.since < repairMs || !placeable.has(u.node)) continue;
    const others = nodes.filter((n) => n.id !== u.node);
    const to = rankNodes(key, others.filter((n) => n.settling !== true))[0] ?? rankNodes(key, others)[0];
    out.push({ key, from: u.node, revision: u.revision, to: to?.id ?? u.node, forMs: now - u.since });
  }
  return out;
}

export const repairWrite = (r: UnhostedRepair): AssignmentWrite => ({ key: r.key, node: r.to });
