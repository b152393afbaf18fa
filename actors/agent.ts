// Node agent actor: one per process. Joins the cluster with heartbeats in
// px_nodes, follows this node's assignments in px_assign and starts or stops
// shards on the injected ShardHost to match (stop before start; a shard held
// under an older lease revision than its assignment is restarted: fencing).
// Draining hands shards back before leaving; a node that cannot heartbeat for
// `isolationMs` stops its shards itself, since the leader has moved them.
// IO is injected (agentActors in src/node/control/agentio.ts).
import { assign, emit, enqueueActions, fromCallback, fromPromise, raise, setup } from "xstate";
import { ioErrorNote, notProvided as notProvidedBy } from "./common.js";
import type { IoErrorEmitted, IoErrorParams } from "./common.js";
import { shardKey } from "../src/control/index.js";
import type { Assignment, NodePhase, ShardRef } from "../src/control/index.js";

export interface AgentInput {
  readonly nodeId: string;
  readonly heartbeatMs?: number;
  /** No successful heartbeat for this long: stop every shard (the leader has moved them). */
  readonly isolationMs?: number;
  /** Longest wait for the leader to move shards away when draining. */
  readonly drainTimeoutMs?: number;
  readonly retryMs?: number;
}

/** A shard this node runs, with the lease revision it was started under. */
export interface HostedShard {
  readonly shard: ShardRef;
  readonly leaseRevision: number;
}

export interface ShardWork {
  readonly stop: readonly HostedShard[];
  readonly start: readonly HostedShard[];
}

export interface ApplyResult {
  readonly stopped: readonly string[];
  readonly started: readonly HostedShard[];
  readonly failed: readonly { readonly key: string; readonly op: "start" | "stop"; readonly message: string }[];
}

export interface HeartbeatInput {
  readonly phase: NodePhase;
  readonly hosted: readonly HostedShard[];
}

export interface HeartbeatResult {
  /** Shards the agent started that the host no longer runs: started again (see shardStatuses in agentio.ts). */
  readonly lost: readonly HostedShard[];
}

export interface AgentContext {
  readonly nodeId: string;
  readonly heartbeatMs: number;
  readonly isolationMs: number;
  readonly drainTimeoutMs: number;
  readonly retryMs: number;
  phase: NodePhase;
  /** Every assignment seen in px_assign, by shard key. */
  assignments: Map<string, { shard: ShardRef; assignment: Assignment }>;
  assignmentsSynced: boolean;
  heartbeatOk: boolean;
  isolated: boolean;
  hosted: Map<string, HostedShard>;
  lastError: string | undefined;
}

export type AgentEvent =
  | { type: "assignment"; key: string; shard: ShardRef; assignment: Assignment | undefined }
  /** The watch delivered every current assignment; `keys`: those it delivered since it was (re)opened, the others are gone. */
  | { type: "assignments.synced"; keys?: readonly string[] }
  | { type: "drain" }
  | { type: "stop" }
  | { type: "heartbeat.ok" }
  | { type: "heartbeat.now" };

export type AgentEmitted =
  | { type: "shards"; started: readonly HostedShard[]; stopped: readonly string[]; failed: ApplyResult["failed"] }
  | { type: "isolated" }
  | { type: "lost"; shards: readonly HostedShard[] }
  | { type: "reconnected" }
  | IoErrorEmitted;

/** The shards this node should run now. */
export function desiredShards(c: Pick<AgentContext, "nodeId" | "assignments" | "isolated">): Map<string, HostedShard> {
  const out = new Map<string, HostedShard>();
  if (c.isolated) return out;
  for (const [key, { shard, assignment }] of c.assignments) {
    if (assignment.node === c.nodeId) out.set(key, { shard, leaseRevision: assignment.leaseRevision });
  }
  return out;
}

/** Stops and starts that turn `hosted` into `desired` (pure). */
export function shardWork(desired: ReadonlyMap<string, HostedShard>, hosted: ReadonlyMap<string, HostedShard>): ShardWork {
  const stop: HostedShard[] = [];
  const start: HostedShard[] = [];
  for (const [key, h] of hosted) {
    const d = desired.get(key);
    if (!d) stop.push(h);
    // Fencing: the shard was reassigned (maybe away and back) since we started it; its writes carry a dead token.
    else if (d.leaseRevision > h.leaseRevision) {
      stop.push(h);
      start.push(d);
    }
  }
  for (const [key, d] of desired) if (!hosted.has(key)) start.push(d);
  const byKey = (a: HostedShard, b: HostedShard): number => (shardKey(a.shard) < shardKey(b.shard) ? -1 : 1);
  return { stop: stop.sort(byKey), start: start.sort(byKey) };
}

const notProvided = (name: string): (() => never) => notProvidedBy("agent", name, "agentActors(io)");

export const agentMachine = setup({
  types: {
    context: {} as AgentContext,
    events: {} as AgentEvent,
    input: {} as AgentInput,
    emitted: {} as AgentEmitted,
  },
  actors: {
    open: fromPromise<void>(async () => {}),
    sendHeartbeat: fromPromise<HeartbeatResult, HeartbeatInput>(notProvided("sendHeartbeat")),
    removeHeartbeat: fromPromise<void>(notProvided("removeHeartbeat")),
    applyShards: fromPromise<ApplyResult, ShardWork>(notProvided("applyShards")),
    watchAssignments: fromCallback<AgentEvent>(() => () => {}),
  },
  delays: {
    heartbeatMs: ({ context }) => context.heartbeatMs,
    isolationMs: ({ context }) => context.isolationMs,
    drainTimeoutMs: ({ context }) => context.drainTimeoutMs,
    retryMs: ({ context }) => context.retryMs,
  },
  guards: {
    joined: ({ context }) => context.heartbeatOk && context.assignmentsSynced,
    hasWork: ({ context }) => {
      const w = shardWork(desiredShards(context), context.hosted);
      return w.stop.length > 0 || w.start.length > 0;
    },
    drained: ({ context }) => context.hosted.size === 0 && desiredShards(context).size === 0,
    anyFailed: (_, params: { result: ApplyResult }) => params.result.failed.length > 0,
  },
  actions: {
    applied: enqueueActions(({ context, enqueue }, params: { result: ApplyResult }) => {
      const hosted = new Map(context.hosted);
      for (const key of params.result.stopped) hosted.delete(key);
      for (const h of params.result.started) hosted.set(shardKey(h.shard), h);
      enqueue.assign({ hosted });
      // Report the new shard set now rather than a heartbeat period later (pxctl status, failover timing).
      if (params.result.started.length > 0 || params.result.stopped.length > 0) enqueue.raise({ type: "heartbeat.now" });
      enqueue.emit({ type: "shards", started: params.result.started, stopped: params.result.stopped, failed: params.result.failed });
    }),
    noteError: enqueueActions(({ enqueue }, params: IoErrorParams) => {
      const note = ioErrorNote(params);
      enqueue.assign({ lastError: note.lastError });
      enqueue.emit(note.emitted);
    }),
  },
}).createMachine({
  id: "agent",
  context: ({ input }) => ({
    nodeId: input.nodeId,
    heartbeatMs: input.heartbeatMs ?? 1_000,
    isolationMs: input.isolationMs ?? 5_000,
    drainTimeoutMs: input.drainTimeoutMs ?? 30_000,
    retryMs: input.retryMs ?? 500,
    phase: "joining",
    assignments: new Map(),
    assignmentsSynced: false,
    heartbeatOk: false,
    isolated: false,
    hosted: new Map(),
    lastError: undefined,
  }),
  initial: "starting",
  states: {
    starting: {
      on: { stop: "stopped" },
      invoke: {
        src: "open",
        onDone: "active",
        onError: { target: "startBackoff", actions: { type: "noteError", params: ({ event }) => ({ operation: "open", error: event.error }) } },
      },
    },
    startBackoff: { on: { stop: "stopped" }, after: { retryMs: "starting" } },
    active: {
      type: "parallel",
      invoke: { id: "watchAssignments", src: "watchAssignments" },
      on: {
        stop: "leaving",
        assignment: {
          actions: assign({
            assignments: ({ context, event }) => {
              const next = new Map(context.assignments);
              if (event.assignment) next.set(event.key, { shard: event.shard, assignment: event.assignment });
              else next.delete(event.key);
              return next;
            },
          }),
        },
        "assignments.synced": {
          actions: assign({
            assignmentsSynced: true,
            // A watch re-opened after it broke delivers only what exists: an assignment deleted while it was blind is dropped here.
            assignments: ({ context, event }) => {
              if (event.keys === undefined) return context.assignments;
              const keep = new Set(event.keys);
              return new Map([...context.assignments].filter(([k]) => keep.has(k)));
            },
          }),
        },
      },
      states: {
        phase: {
          initial: "joining",
          states: {
            joining: {
              entry: assign({ phase: "joining" }),
              always: { guard: "joined", target: "running" },
              on: { drain: "draining" },
            },
            running: {
              entry: [assign({ phase: "running" }), raise({ type: "heartbeat.now" })],
              on: { drain: "draining" },
            },
            draining: {
              entry: [assign({ phase: "draining" }), raise({ type: "heartbeat.now" })],
              always: { guard: "drained", target: "#agent.leaving" },
              after: { drainTimeoutMs: "#agent.leaving" },
            },
          },
        },
        heartbeat: {
          initial: "sending",
          states: {
            sending: {
              invoke: {
                src: "sendHeartbeat",
                input: ({ context }): HeartbeatInput => ({ phase: context.phase, hosted: [...context.hosted.values()] }),
                onDone: {
                  target: "waiting",
                  actions: [
                    assign({ heartbeatOk: true }),
                    raise({ type: "heartbeat.ok" }),
                    // The host no longer runs them: forgotten (at the revision seen, not one restarted since), so they start again.
                    // Not while shards are being stopped or started (a stop takes the shard off the host before it resolves), and
                    // only those still wanted here at that revision.
                    enqueueActions(({ context, event, enqueue, self }) => {
                      if (self.getSnapshot().matches({ active: { shards: "applying" } })) return;
                      const desired = desiredShards(context);
                      const lost = (event.output?.lost ?? []).filter((h) => {
                        const key = shardKey(h.shard);
                        return context.hosted.get(key)?.leaseRevision === h.leaseRevision && desired.get(key)?.leaseRevision === h.leaseRevision;
                      });
                      if (lost.length === 0) return;
                      const hosted = new Map(context.hosted);
                      for (const h of lost) hosted.delete(shardKey(h.shard));
                      enqueue.assign({ hosted });
                      enqueue.emit({ type: "lost", shards: lost });
                    }),
                  ],
                },
                onError: { target: "waiting", actions: { type: "noteError", params: ({ event }) => ({ operation: "heartbeat", error: event.error }) } },
              },
            },
            waiting: {
              after: { heartbeatMs: "sending" },
              on: { "heartbeat.now": "sending" },
            },
          },
        },
        liveness: {
          initial: "connected",
          states: {
            connected: {
              after: { isolationMs: { target: "isolated", actions: [assign({ isolated: true }), emit({ type: "isolated" as const })] } },
              on: { "heartbeat.ok": { target: "connected", reenter: true } },
            },
            isolated: {
              on: { "heartbeat.ok": { target: "connected", actions: [assign({ isolated: false }), emit({ type: "reconnected" as const })] } },
            },
          },
        },
        shards: {
          initial: "idle",
          states: {
            idle: { always: { guard: "hasWork", target: "applying" } },
            applying: {
              invoke: {
                src: "applyShards",
                input: ({ context }) => shardWork(desiredShards(context), context.hosted),
                onDone: [
                  {
                    guard: { type: "anyFailed", params: ({ event }) => ({ result: event.output }) },
                    target: "backoff",
                    actions: { type: "applied", params: ({ event }) => ({ result: event.output }) },
                  },
                  { target: "idle", actions: { type: "applied", params: ({ event }) => ({ result: event.output }) } },
                ],
                onError: { target: "backoff", actions: { type: "noteError", params: ({ event }) => ({ operation: "apply shards", error: event.error }) } },
              },
            },
            backoff: { after: { retryMs: "idle" } },
          },
        },
      },
    },
    // Stop every shard, then delete the heartbeat so the leader reassigns at once.
    leaving: {
      initial: "stoppingShards",
      states: {
        stoppingShards: {
          invoke: {
            src: "applyShards",
            input: ({ context }): ShardWork => ({ stop: [...context.hosted.values()], start: [] }),
            onDone: { target: "removing", actions: { type: "applied", params: ({ event }) => ({ result: event.output }) } },
            onError: { target: "removing", actions: { type: "noteError", params: ({ event }) => ({ operation: "stop shards", error: event.error }) } },
          },
        },
        removing: {
          invoke: {
            src: "removeHeartbeat",
            onDone: "#agent.stopped",
            onError: { target: "#agent.stopped", actions: { type: "noteError", params: ({ event }) => ({ operation: "remove heartbeat", error: event.error }) } },
          },
        },
      },
    },
    stopped: { type: "final" },
  },
});

/** The phase names of the design: starting, joining, running, draining, stopped. */
export function agentPhase(snapshot: { value: unknown; context: AgentContext }): "starting" | NodePhase | "stopped" {
  const v = snapshot.value;
  if (v === "starting" || v === "startBackoff") return "starting";
  if (v === "stopped") return "stopped";
  if (typeof v === "object" && v !== null && "leaving" in v) return "draining";
  return snapshot.context.phase;
}
