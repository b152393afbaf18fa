// The control plane of one node in one call: the controller (every node is a
// contender), the agent driving this node's shards, and the px.ctl server.
// src/node/node.ts starts it after the NATS connection and the ShardHost exist,
// and stops (or drains) it before closing the connection.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { eventRecorder } from "../../wal/index.js";
import { controlBackend, openControlStores, startControlServer, validateNodeId } from "../../control/index.js";
import type { CatalogSource, ControlServer, ControlStores, MetadataStore, ShardHost } from "../../control/index.js";
import { retryOnTimeout } from "../startup.js";
import { startAgent, startController } from "./runtime.js";
import { placementSettleMs } from "./settle.js";
import type { AgentHandle, ControllerHandle, HeartbeatCoverDial } from "./runtime.js";

export interface ControlPlaneOptions {
  readonly nodeId: string;
  /** How clients reach this node (host:port), shown by pxctl. */
  readonly address: string;
  readonly host: ShardHost;
  /** The node's catalog; default: the controller opens its own px_config watcher. */
  readonly catalog?: CatalogSource;
  /** The node's metadata store (px_config), used by the px.ctl server for apply/get. */
  readonly metadata: MetadataStore;
  /** 1 on a single NATS server, 3 on a cluster. */
  readonly replicas?: number;
  /** Most shards this node takes; 0 = no limit. */
  readonly capacityShards?: number;
  readonly clickhouseHealth?: () => string;
  /** false: this node never leads (it still runs shards and answers pxctl). */
  readonly controller?: boolean;
  readonly heartbeatMs?: number;
  /** A node silent this long loses its shards; keep it a few heartbeats long. */
  readonly nodeTimeoutMs?: number;
  /** A node that joined or came back takes shards of live owners after being live this long (default: PX_PLACEMENT_SETTLE_MS, else 15 s). */
  readonly placementSettleMs?: number;
  readonly leaseMs?: number;
  readonly reconcileMs?: number;
  /**
   * No heartbeat stored for this long: the node stops its shards itself. Long by
   * default: a KV stream electing a new Raft leader after a NATS server died
   * refuses writes for several seconds, and shards that restart must replay.
   * Writes are fenced by lease revisions whatever this is.
   */
  readonly isolationMs?: number;
  readonly drainTimeoutMs?: number;
  /** A heartbeat thread that bridges main-thread blocks (long queries); without it heartbeats come from the main thread only. */
  readonly heartbeatCover?: HeartbeatCoverDial;
  readonly log?: (line: string) => void;
}

export interface ControlPlane {
  readonly stores: ControlStores;
  readonly controller: ControllerHandle | undefined;
  readonly agent: AgentHandle;
  readonly server: ControlServer;
  /** For /readyz and metrics: the agent phase and the controller role. */
  state(): { phase: string; role: string };
  /** Hands this node's shards to the others, then stops everything. */
  drain(): Promise<void>;
  /** Stops shards, removes the heartbeat, releases the lease. */
  stop(): Promise<void>;
}

export const CONTROL_DEFAULTS = {
  heartbeatMs: 500,
  nodeTimeoutMs: 2_000,
  // A leader's death costs a failover about the lease plus two follower polls; 3 s leaves the holder
  // two renewals (every lease/3) before its guard (lease/5) makes it stop acting.
  leaseMs: 3_000,
  reconcileMs: 1_000,
  isolationMs: 30_000,
  drainTimeoutMs: 30_000,
} as const;

export async function startControlPlane(nc: NatsConnection, o: ControlPlaneOptions): Promise<ControlPlane> {
  validateNodeId(o.nodeId);
  const log = o.log ?? (() => {});
  const t = { ...CONTROL_DEFAULTS, ...Object.fromEntries(Object.entries(o).filter(([k, v]) => k in CONTROL_DEFAULTS && v !== undefined)) } as typeof CONTROL_DEFAULTS;
  const settleMs = o.placementSettleMs ?? placementSettleMs();
  const stores = await retryOnTimeout("opening the control-plane stores", () => openControlStores(nc, { replicas: o.replicas ?? 1, writeTimeoutMs: Math.max(250, Math.floor(t.leaseMs / 3)) }), (line) => log(`node ${o.nodeId}: ${line}`));
  const controller =
    o.controller === false
      ? undefined
      : await startController(nc, { id: o.nodeId, stores, ...(o.catalog === undefined ? {} : { catalog: o.catalog }), replicas: o.replicas ?? 1, leaseMs: t.leaseMs, nodeTimeoutMs: t.nodeTimeoutMs, settleMs, reconcileMs: t.reconcileMs, log });
  const agent = await startAgent(nc, {
    nodeId: o.nodeId,
    address: o.address,
    host: o.host,
    stores,
    heartbeatMs: t.heartbeatMs,
    liveGapMs: t.nodeTimeoutMs,
    isolationMs: t.isolationMs,
    drainTimeoutMs: t.drainTimeoutMs,
    ...(o.heartbeatCover === undefined ? {} : { heartbeatCover: o.heartbeatCover }),
    ...(o.capacityShards === undefined ? {} : { capacityShards: o.capacityShards }),
    ...(o.clickhouseHealth === undefined ? {} : { clickhouseHealth: o.clickhouseHealth }),
    log,
  });
  // Placement changes (pxctl move, lag remediation's move, an override the leader drops) go to `pxctl events`.
  const record = eventRecorder({ js: jetstream(nc), nodeId: o.nodeId, log: () => {} });
  controller?.actor.on("overridesCleared", (e) => {
    for (const c of e.cleared) record({ kind: "shard.move_cleared", message: `placement override of ${c.key} (to ${c.node}) cleared by the leader: ${c.node} is not a live running node any more, or the shard is gone, or that node does not host it` });
  });
  const server = startControlServer(nc, controlBackend(o.metadata, stores, Date.now, t.nodeTimeoutMs, record, settleMs), { log });
  const stopRest = async (): Promise<void> => {
    await controller?.stop();
    await server.stop();
  };
  return {
    stores,
    controller,
    agent,
    server,
    state: () => ({ phase: agent.phase(), role: controller?.role() ?? "none" }),
    drain: async () => {
      await agent.drain();
      await stopRest();
    },
    stop: async () => {
      await agent.stop();
      await stopRest();
    },
  };
}
