// The `move` control verb: where a shard goes when asked to leave a node (pure
// decideMove over the cluster state), and the request as a handler that
// records the decision as a placement override (px_placement) for the leader.
// Answered by whichever node gets the request; the leader does the move.
import { parseMoveShardRequest } from "../../protocols/placement.js";
import type { MoveShardReply, MoveShardRequest, PlacementOverride } from "../../protocols/placement.js";
import { ControlError } from "./errors.js";
import type { OverrideStore, StoredOverride } from "./overrides.js";
import { shardKey } from "./shard.js";
import type { ClusterState } from "./views.js";

export interface MoveDecision {
  readonly key: string;
  readonly from: string;
  readonly to: string;
  /** Why that node (for the reply and the override's reason). */
  readonly why: string;
}

/** `<tenant>.<table>.<bucket>` of the request's shard; NOT_FOUND naming what exists. */
export function resolveShard(state: ClusterState, table: string, bucket: number): string {
  const tables = [...state.tenants.values()].flatMap(({ spec }) => spec.tables.map((t) => ({ tenant: spec.name, table: t.name, shards: t.shards })));
  const matches = tables.filter((t) => `${t.tenant}.${t.table}` === table || (!table.includes(".") && t.table === table));
  if (matches.length > 1) throw new ControlError("INVALID_ARGUMENT", `move: table ${table} exists in several tenants (${matches.map((t) => t.tenant).join(", ")}); name it as <tenant>.<table>`);
  const t = matches[0];
  if (t === undefined) throw new ControlError("NOT_FOUND", `move: table ${table} does not exist (known: ${tables.map((x) => `${x.tenant}.${x.table}`).sort().slice(0, 20).join(", ") || "none"}); pxctl get tables lists them`);
  if (bucket >= t.shards) throw new ControlError("NOT_FOUND", `move: shard ${table}/${bucket} does not exist: table ${t.tenant}.${t.table} has ${t.shards} shards (0-${t.shards - 1})`);
  return shardKey({ tenant: t.tenant, table: t.table, bucket });
}

export interface NodeLoad {
  readonly shards: number;
  readonly capacity: number;
  /** Live for less than the settle period by its own heartbeat's report (see HeartbeatInfo.liveForMs). */
  readonly settling: boolean;
}

/**
 * Nodes that may take a shard now, with the shards each owns: heartbeat
 * fresher than `liveWithinMs` and phase running. A node whose heartbeat says
 * it has been live for less than `settleMs` (counting the heartbeat's age) is
 * settling; one that does not say (an older agent) counts as settled.
 */
export function liveNodeLoads(state: ClusterState, liveWithinMs: number, settleMs = 0): Map<string, NodeLoad> {
  const owned = new Map<string, number>();
  for (const a of state.assignments.values()) owned.set(a.node, (owned.get(a.node) ?? 0) + 1);
  const out = new Map<string, NodeLoad>();
  for (const [id, h] of [...state.heartbeats].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const age = state.nowMs - h.createdMs;
    if (h.info.state !== "running" || age >= liveWithinMs) continue;
    const liveFor = h.info.liveForMs;
    out.set(id, { shards: owned.get(id) ?? 0, capacity: h.info.capacityShards, settling: liveFor !== undefined && liveFor + age < settleMs });
  }
  return out;
}

/**
 * Where the shard goes: `req.to` when it is a live running node with room,
 * else the live node other than its owner with the fewest shards (ties: by id),
 * settled nodes first: one that just joined or came back (live for less than
 * `settleMs`) may be gone again, so an operator's move takes it only when no
 * settled node has room, and lag remediation never does (its move is skipped).
 * Lag remediation (`by: remediation`) moves a shard only to a node owning
 * fewer shards than its owner, and only once: a shard it moved already stays
 * (moving it back and forth would replay it each time and not help).
 */
export function decideMove(state: ClusterState, overrides: ReadonlyMap<string, StoredOverride>, req: MoveShardRequest, liveWithinMs: number, settleMs = 0): MoveDecision {
  const key = resolveShard(state, req.table, req.bucket);
  const owner = state.assignments.get(key)?.node ?? "";
  const from = req.from ?? owner;
  if (req.from !== undefined && owner !== req.from) {
    throw new ControlError("CONFLICT", `move: shard ${key} is not on node ${req.from} (its owner is ${owner || "nobody yet"}); nothing was changed`);
  }
  const live = liveNodeLoads(state, liveWithinMs, settleMs);
  const room = (id: string): boolean => {
    const n = live.get(id);
    return n !== undefined && (n.capacity <= 0 || n.shards < n.capacity);
  };
  const held = overrides.get(key);
  if (req.by === "remediation" && held !== undefined) {
    throw new ControlError("CONFLICT", `move: shard ${key} was moved to ${held.override.node} already (${held.override.by}: ${held.override.reason}); it is not moved again until the override is cleared (pxctl move shard ${key.split(".")[1]}/${key.split(".")[2]} --clear)`);
  }
  if (req.to !== undefined) {
    if (req.to === from) throw new ControlError("INVALID_ARGUMENT", `move: shard ${key} is to leave node ${from}; name another node as the target`);
    if (!live.has(req.to)) {
      const known = [...live.keys()].filter((id) => id !== from);
      throw new ControlError("INVALID_ARGUMENT", `move: target node ${req.to} is not a live running node (live: ${known.join(", ") || "none besides " + from}); pxctl get nodes lists the nodes and their state`);
    }
    if (!room(req.to)) throw new ControlError("CONFLICT", `move: target node ${req.to} is full (${live.get(req.to)!.shards} of ${live.get(req.to)!.capacity} shards); pick another node`);
    return { key, from, to: req.to, why: `asked for ${req.to}` };
  }
  const all = [...live].filter(([id]) => id !== from && room(id)).sort(([a, x], [b, y]) => x.shards - y.shards || (a < b ? -1 : 1));
  const settled = all.filter(([, n]) => !n.settling);
  const candidates = settled.length > 0 || req.by === "remediation" ? settled : all;
  const best = candidates[0];
  if (best === undefined) {
    const settling = all.map(([id]) => id);
    if (settling.length > 0) throw new ControlError("UNAVAILABLE", `move: the nodes that could take shard ${key} (${settling.join(", ")}) joined or came back less than ${settleMs} ms ago and are still settling; lag remediation does not move a shard onto a node that may be gone again (pxctl move shard ${key.split(".")[1]}/${key.split(".")[2]} --to NODE moves it there)`);
    throw new ControlError("UNAVAILABLE", `move: no other live running node can take shard ${key} (live: ${[...live.keys()].join(", ") || "none"}); start another node, or wait for one to finish joining`);
  }
  const [to, load] = best;
  const fromShards = live.get(from)?.shards ?? [...state.assignments.values()].filter((a) => a.node === from).length;
  if (req.by === "remediation" && load.shards >= fromShards) {
    throw new ControlError("CONFLICT", `move: no node owns fewer shards than ${from} (${fromShards}); the least loaded other node, ${to}, owns ${load.shards}`);
  }
  const note = load.settling ? ` (it is still settling: no settled node has room)` : "";
  return { key, from, to, why: `the live node with the fewest shards: ${load.shards}${live.has(from) ? `, ${from} owns ${fromShards}` : ""}${note}` };
}

/** Runs a `move` request: records the override (or clears it) and says where the shard goes. */
export async function moveShard(state: ClusterState, overrides: OverrideStore, body: unknown, liveWithinMs: number, nowMs: number, settleMs = 0): Promise<MoveShardReply> {
  let req: MoveShardRequest;
  try {
    req = parseMoveShardRequest(body);
  } catch (e) {
    throw new ControlError("INVALID_ARGUMENT", (e as Error).message, { cause: e });
  }
  const held = await overrides.read();
  if (req.clear === true) {
    const key = resolveShard(state, req.table, req.bucket);
    const owner = state.assignments.get(key)?.node ?? "";
    const o = held.get(key);
    if (o === undefined) return { shard: key, from: owner, to: "", revision: 0, changed: false, message: `shard ${key} has no placement override; nothing to clear` };
    await overrides.clear(key);
    return { shard: key, from: owner, to: "", revision: 0, changed: true, message: `placement override of ${key} (to ${o.override.node}) cleared: the leader places it where placement puts it` };
  }
  const d = decideMove(state, held, req, liveWithinMs, settleMs);
  const by = req.by ?? "operator";
  const reason = by === "remediation" ? `lag remediation on ${d.from}` : "pxctl move shard";
  const override: PlacementOverride = { node: d.to, from: d.from, by, reason, requestedAtMs: nowMs };
  const revision = await overrides.set(d.key, override);
  const clear = `pxctl move shard ${d.key.split(".")[1]}/${d.key.split(".")[2]} --clear`;
  return { shard: d.key, from: d.from, to: d.to, revision, changed: true, message: `shard ${d.key} moves from ${d.from || "nobody"} to ${d.to} (${d.why}); it stays there until the override is cleared (${clear}) or ${d.to} dies` };
}
