// Running the controller and agent machines for real: open the stores, provide
// the NATS-backed IO, log notifications, stop cleanly. `src/node/node.ts` calls
// startController and startAgent; tests and run-controller.ts do the same.
import type { NatsConnection } from "@nats-io/transport-node";
import { createActor, waitFor } from "xstate";
import type { Actor, AnyActorRef } from "xstate";
import { agentMachine, agentPhase } from "../../../actors/agent.js";
import type { AgentInput } from "../../../actors/agent.js";
import { controllerMachine, controllerRole } from "../../../actors/controller.js";
import type { ControllerInput } from "../../../actors/controller.js";
import { agentActors } from "./agentio.js";
import type { AgentIO } from "./agentio.js";
import { controllerActors } from "./controllerio.js";
import { openCatalogSource, openControlStores } from "../../control/index.js";
import type { CatalogSource, ControlStores } from "../../control/index.js";
import { startAttentionClock } from "./attentionclock.js";
import { startHeartbeatCover } from "./heartbeatcover.js";
import pkg from "../../../package.json" with { type: "json" };

export const SOFTWARE_VERSION: string = pkg.version;

export interface ControllerHandle {
  readonly actor: Actor<typeof controllerMachine>;
  readonly stores: ControlStores;
  /** follower | candidate | leader | steppingDown | releasing | stopped */
  role(): string;
  isLeader(): boolean;
  /** The leader term this controller holds, when leader. */
  term(): number | undefined;
  /** Releases the lease if held (so another node takes over at once) and stops. */
  stop(): Promise<void>;
}

export interface ControllerOptions extends Omit<ControllerInput, "now"> {
  /** The desired specs; default: px_config watched with resync (openCatalogSource). */
  readonly catalog?: CatalogSource;
  readonly stores?: ControlStores;
  readonly replicas?: number;
  readonly log?: (line: string) => void;
}

/** Resolves when the actor reached its final state; force-stops it after `timeoutMs`. */
async function waitStopped(actor: AnyActorRef, timeoutMs: number): Promise<void> {
  await waitFor(actor, (s: { status: string }) => s.status === "done", { timeout: timeoutMs }).catch(() => actor.stop());
}

export async function startController(nc: NatsConnection, o: ControllerOptions): Promise<ControllerHandle> {
  const log = o.log ?? (() => {});
  const leaseMs = o.leaseMs ?? 5_000;
  const stores = o.stores ?? (await openControlStores(nc, { replicas: o.replicas ?? 1, writeTimeoutMs: Math.max(250, Math.floor(leaseMs / 3)) }));
  const catalog = o.catalog ?? (await openCatalogSource(nc, o.replicas ?? 1));
  // Node liveness is judged on attention time: this process's own loop blocks do not count against the nodes.
  const attention = o.attention === undefined ? startAttentionClock() : undefined;
  const actor = createActor(controllerMachine.provide({ actors: controllerActors({ ...stores, catalog, log }) }), { input: { ...o, attention: o.attention ?? attention!.now } });
  actor.on("elected", (e) => log(`controller ${o.id}: leader (term ${e.term}, lease revision ${e.revision})`));
  actor.on("steppedDown", (e) => log(`controller ${o.id}: stepped down: ${e.reason}`));
  actor.on("assigned", (e) => {
    for (const w of e.writes) log(`controller ${o.id}: ${w.key} -> ${w.node ?? "(removed)"} (term ${e.term})`);
  });
  actor.on("unhosted", (e) => log(`controller ${o.id}: ${e.key} assigned to ${e.from} (lease revision ${e.revision}) is missing from its heartbeats for ${e.forMs} ms: the node does not host it; ${e.to === e.from ? "writing it again under a new revision" : `moving it to ${e.to}`}`));
  actor.on("overridesCleared", (e) => {
    for (const c of e.cleared) log(`controller ${o.id}: placement override of ${c.key} (to ${c.node}) cleared: ${c.node} is not a live running node any more, or the shard is gone, or that node does not host it`);
  });
  actor.on("ioError", (e) => log(`controller ${o.id}: ${e.operation} failed: ${e.message}`));
  actor.start();
  return {
    actor,
    stores,
    role: () => controllerRole(actor.getSnapshot().value),
    isLeader: () => controllerRole(actor.getSnapshot().value) === "leader",
    term: () => {
      const s = actor.getSnapshot();
      return controllerRole(s.value) === "leader" ? s.context.lease?.record.term : undefined;
    },
    stop: async () => {
      actor.send({ type: "stop" });
      await waitStopped(actor, 2_000);
      attention?.stop();
    },
  };
}

export interface AgentHandle {
  readonly actor: Actor<typeof agentMachine>;
  readonly stores: ControlStores;
  /** starting | joining | running | draining | stopped */
  phase(): string;
  /** Asks the leader to move this node's shards away, then stops them and leaves. */
  drain(): Promise<void>;
  /** Stops every shard and leaves at once (shards move after the heartbeat is removed). */
  stop(): Promise<void>;
}

/** How the heartbeat thread reaches NATS (the node's own connection settings), and its grace. */
export interface HeartbeatCoverDial {
  readonly servers: string | string[];
  readonly credsPath: string | undefined;
  readonly caPath: string | undefined;
  /** Longest main-thread block it bridges; 0: no heartbeat thread. */
  readonly graceMs: number;
}

export interface AgentOptions extends AgentInput, Omit<AgentIO, "heartbeats" | "assignments" | "softwareVersion" | "nodeId" | "cover"> {
  readonly softwareVersion?: string;
  /** Start a heartbeat thread (./heartbeatcover.ts); without it heartbeats come from the main thread only. */
  readonly heartbeatCover?: HeartbeatCoverDial;
  readonly stores?: ControlStores;
  readonly replicas?: number;
}

export async function startAgent(nc: NatsConnection, o: AgentOptions): Promise<AgentHandle> {
  const log = o.log ?? (() => {});
  const stores = o.stores ?? (await openControlStores(nc, { replicas: o.replicas ?? 1 }));
  const dial = o.heartbeatCover;
  const cover = dial !== undefined && dial.graceMs > 0 ? startHeartbeatCover({ ...dial, nodeId: o.nodeId, periodMs: o.heartbeatMs ?? 1_000, log }) : undefined;
  const io: AgentIO = { ...o, softwareVersion: o.softwareVersion ?? SOFTWARE_VERSION, heartbeats: stores.heartbeats, assignments: stores.assignments, log, ...(cover === undefined ? {} : { cover }) };
  const actor = createActor(agentMachine.provide({ actors: agentActors(io) }), { input: o });
  actor.on("shards", (e) => {
    for (const k of e.stopped) log(`agent ${o.nodeId}: stopped ${k}`);
    for (const h of e.started) log(`agent ${o.nodeId}: started ${h.shard.tenant}.${h.shard.table}.${h.shard.bucket} (lease revision ${h.leaseRevision})`);
    for (const f of e.failed) log(`agent ${o.nodeId}: ${f.op} ${f.key} failed: ${f.message}`);
  });
  actor.on("lost", (e) => {
    for (const h of e.shards) log(`agent ${o.nodeId}: ${h.shard.tenant}.${h.shard.table}.${h.shard.bucket} (lease revision ${h.leaseRevision}) is not run by this node's host any more; starting it again`);
  });
  actor.on("isolated", () => log(`agent ${o.nodeId}: no heartbeat stored for a while; stopped every shard until NATS answers again`));
  actor.on("ioError", (e) => log(`agent ${o.nodeId}: ${e.operation} failed: ${e.message}`));
  actor.start();
  return {
    actor,
    stores,
    phase: () => agentPhase(actor.getSnapshot()),
    drain: async () => {
      actor.send({ type: "drain" });
      await waitStopped(actor, (o.drainTimeoutMs ?? 30_000) + 5_000);
      await cover?.stop();
    },
    stop: async () => {
      actor.send({ type: "stop" });
      await waitStopped(actor, 10_000);
      await cover?.stop();
    },
  };
}
