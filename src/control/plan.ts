// Reconciliation as a pure function: desired shards (from the catalog) and the
// placeable nodes against the current assignments give the writes the leader
// must make. Shards nobody can take keep their old owner (better a stale owner
// than none: it resumes when the node comes back). Overrides (shard -> node)
// go first where their node can take them (placement.ts).
import type { Assignment, AssignmentWrite } from "./assignments.js";
import { placeShards } from "./placement.js";
import type { PlacementNode } from "./placement.js";

export function planAssignments(
  desired: readonly string[],
  nodes: readonly PlacementNode[],
  current: ReadonlyMap<string, Assignment>,
  overrides: ReadonlyMap<string, string> = new Map(),
): AssignmentWrite[] {
  // A shard an override put where it is, whose override is gone, is placed afresh: it goes home, not stays.
  const previous = new Map([...current].filter(([k, a]) => !(a.pinned === true && !overrides.has(k))).map(([k, a]) => [k, a.node]));
  const placement = placeShards(desired, nodes, previous, overrides);
  const writes: AssignmentWrite[] = [];
  for (const [key, node] of placement.owners) if (current.get(key)?.node !== node) writes.push({ key, node, ...(overrides.get(key) === node ? { pinned: true } : {}) });
  const wanted = new Set(desired);
  for (const key of [...current.keys()].sort()) if (!wanted.has(key)) writes.push({ key, node: undefined });
  return writes;
}
