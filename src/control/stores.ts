// Opens the control-plane KV buckets (px_leader, px_nodes, px_assign, px_placement) and the
// stores over them. Replicas: 1 on a single server, 3 on a NATS cluster
// (Raft-replicated, survives the loss of one server).
import type { NatsConnection } from "@nats-io/transport-node";
import { KV_ASSIGN, KV_LEADER, KV_NODES, KV_PLACEMENT } from "../../protocols/subjects.js";
import { AssignmentStore } from "./assignments.js";
import { HeartbeatStore } from "./heartbeat.js";
import type { ControlKv } from "./kv.js";
import { LeaseStore } from "./lease.js";
import { OverrideStore } from "./overrides.js";
import { natsControlKv, openKv } from "./natskv.js";

export interface ControlStores {
  readonly lease: LeaseStore;
  readonly assignments: AssignmentStore;
  readonly heartbeats: HeartbeatStore;
  /** Per-shard placement overrides (px_placement). */
  readonly overrides: OverrideStore;
  readonly kv: { readonly leader: ControlKv; readonly nodes: ControlKv; readonly assign: ControlKv; readonly placement: ControlKv };
}

export interface ControlStoreOptions {
  readonly replicas?: number;
  /** Publish timeout of control writes; keep it well under the lease period. */
  readonly writeTimeoutMs?: number;
}

export function storesOver(kv: ControlStores["kv"]): ControlStores {
  return { lease: new LeaseStore(kv.leader), assignments: new AssignmentStore(kv.assign), heartbeats: new HeartbeatStore(kv.nodes), overrides: new OverrideStore(kv.placement), kv };
}

export async function openControlStores(nc: NatsConnection, o: ControlStoreOptions = {}): Promise<ControlStores> {
  const opts = { replicas: o.replicas ?? 1, history: 1, timeoutMs: o.writeTimeoutMs ?? 2_000 };
  const [leader, nodes, assign, placement] = await Promise.all([KV_LEADER, KV_NODES, KV_ASSIGN, KV_PLACEMENT].map(async (bucket) => natsControlKv(nc, await openKv(nc, bucket, opts), bucket, opts)));
  return storesOver({ leader: leader!, nodes: nodes!, assign: assign!, placement: placement! });
}
