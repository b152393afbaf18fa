// Node heartbeats in KV px_nodes: key = node id, value = NodeHeartbeat
// (protobuf). Each agent puts its own every heartbeat period and deletes it when
// it leaves cleanly. Liveness is judged by the controller's own clock (liveness.ts).
import { decodeHeartbeat, encodeHeartbeat } from "../../protocols/codec.js";
import { shardStatusFromMessage, shardStatusToMessage } from "../../protocols/shardstatus.js";
import type { ShardStatus } from "../../protocols/shardstatus.js";
import type { ControlKv, KvWatchError } from "./kv.js";
import { STALLS } from "./kv.js";

/** The agent's phase as it reports it. The controller places shards on `running` nodes only. */
export type NodePhase = "joining" | "running" | "draining";

export interface HeartbeatInfo {
  readonly nodeId: string;
  readonly address: string;
  readonly softwareVersion: string;
  readonly sentAtMicros: number;
  /** Most shards this node takes; 0 = no limit. */
  readonly capacityShards: number;
  readonly state: NodePhase;
  /** "ok" or what failed; "" when the node does not know. */
  readonly clickhouse: string;
  readonly shards: readonly ShardStatus[];
  /**
   * How long the node's heartbeats have gone out without a gap longer than the
   * node timeout, by its own clock; 0 or absent: unknown (an older agent).
   * Lets any node (not only the leader, which keeps its own liveness table)
   * tell a node that just joined or came back from a settled one.
   */
  readonly liveForMs?: number;
}

export interface StoredHeartbeat {
  readonly info: HeartbeatInfo;
  readonly revision: number;
  readonly createdMs: number;
}

const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function validateNodeId(id: string): string {
  if (!NODE_ID.test(id)) throw new Error(`node id "${id}" is invalid: use 1-64 letters, digits, _ or - (it is a KV key in px_nodes)`);
  return id;
}

export function encodeHeartbeatInfo(h: HeartbeatInfo): Uint8Array {
  return encodeHeartbeat({
    nodeId: h.nodeId,
    address: h.address,
    softwareVersion: h.softwareVersion,
    sentAtMicros: BigInt(Math.trunc(h.sentAtMicros)),
    capacityShards: h.capacityShards,
    state: h.state,
    clickhouse: h.clickhouse,
    shards: h.shards.map(shardStatusToMessage),
    liveForMs: BigInt(Math.max(0, Math.trunc(h.liveForMs ?? 0))),
  });
}

const PHASES: readonly string[] = ["joining", "running", "draining"];

export function decodeHeartbeatInfo(bytes: Uint8Array): HeartbeatInfo {
  const m = decodeHeartbeat(bytes);
  return {
    nodeId: m.nodeId,
    address: m.address,
    softwareVersion: m.softwareVersion,
    sentAtMicros: Number(m.sentAtMicros),
    capacityShards: m.capacityShards,
    // A heartbeat from an older agent has no state: it predates draining, so it is running.
    state: (PHASES.includes(m.state) ? m.state : "running") as NodePhase,
    clickhouse: m.clickhouse,
    shards: m.shards.map(shardStatusFromMessage),
    ...(m.liveForMs > 0n ? { liveForMs: Number(m.liveForMs) } : {}),
  };
}

export type HeartbeatChange =
  | { readonly type: "seen"; readonly nodeId: string; readonly revision: number; readonly info: HeartbeatInfo }
  | { readonly type: "gone"; readonly nodeId: string };

export class HeartbeatStore {
  constructor(private readonly kv: ControlKv) {}

  put(h: HeartbeatInfo): Promise<number> {
    return this.kv.put(validateNodeId(h.nodeId), encodeHeartbeatInfo(h));
  }

  /** A clean leave: the controller moves the node's shards at once instead of after the timeout. */
  remove(nodeId: string): Promise<void> {
    return this.kv.delete(validateNodeId(nodeId));
  }

  async read(): Promise<Map<string, StoredHeartbeat>> {
    const out = new Map<string, StoredHeartbeat>();
    for (const r of await this.kv.list()) {
      try {
        out.set(r.key, { info: decodeHeartbeatInfo(r.value), revision: r.revision, createdMs: r.createdMs });
      } catch {
        continue; // a heartbeat this version cannot read: the node shows as absent rather than failing status
      }
    }
    return out;
  }

  watch(onChange: (c: HeartbeatChange) => void, onSynced?: () => void, onError?: (e: KvWatchError) => void): Promise<() => void> {
    return this.kv.watch((c) => {
      if (c.value === undefined) return onChange({ type: "gone", nodeId: c.key });
      let info: HeartbeatInfo;
      try {
        info = decodeHeartbeatInfo(c.value);
      } catch {
        return; // unreadable (newer version): not counted as a heartbeat
      }
      onChange({ type: "seen", nodeId: c.key, revision: c.revision, info });
    }, onSynced, onError, STALLS);
  }
}
