// Controller actor: leader election over the px_leader lease and, while
// leader, reconciliation of the desired specs, live nodes and per-shard
// placement overrides (px_placement) into shard assignments in px_assign
// (overrides whose node died or whose shard is gone are cleared). Runs in every node; exactly one is leader at a
// time, and a leader that lost its lease is fenced by NATS (see assignments.ts).
// IO is injected (controllerActors in src/node/control/controllerio.ts); the clock
// is xstate's (delays) plus `now` for timestamps, so tests use SimulatedClock.
import { assign, emit, enqueueActions, fromCallback, fromPromise, setup } from "xstate";
import { errorMessage, ioErrorNote, notProvided as notProvidedBy } from "./common.js";
import type { IoErrorEmitted, IoErrorParams } from "./common.js";
import type { Catalog } from "../src/catalog.js";
import { EMPTY_CATALOG } from "../src/catalog.js";
import { PLACEMENT_SETTLE_MS, UNHOSTED_REPAIR_MS, dueRepairs, forgetNode, noteReport, pruneUnreported, repairWrite, isConflict, leaseVerdict, nextExpiry, nextSettle, observeLease, placeableNodes, planAssignments, shardKey, shardsOfCatalog, sightNode, voidOverrides } from "../src/control/index.js";
import type { AssignmentTable, AssignmentWrite, LeaseObservation, LeaseRecord, NodeReport, NodeTable, StoredLease, UnhostedRepair, UnreportedTable } from "../src/control/index.js";

export interface ControllerInput {
  /** This controller's id (the node id). */
  readonly id: string;
  /** Contenders take over after seeing no renewal for this long. */
  readonly leaseMs?: number;
  /** The holder renews this often (default leaseMs / 3). */
  readonly renewMs?: number;
  /** Followers read the lease this often (default the shorter of renewMs and 500 ms: how late a contender sees the renewals stop adds to every failover). */
  readonly pollMs?: number;
  /** The holder stops acting this long before its lease could expire for others (default leaseMs / 5). */
  readonly guardMs?: number;
  /** A node whose heartbeat did not change for this long loses its shards. */
  readonly nodeTimeoutMs?: number;
  /**
   * A node takes shards from live owners only after being live this long without a
   * heartbeat gap (default PLACEMENT_SETTLE_MS; 0: at once). Failover away from a
   * dead node and overrides do not wait.
   */
  readonly settleMs?: number;
  /**
   * An assignment its live node leaves out of its heartbeats this long is
   * written again, to another node (default UNHOSTED_REPAIR_MS; 0: never).
   */
  readonly repairMs?: number;
  /** Longest time between reconciles (liveness changes without events). */
  readonly reconcileMs?: number;
  /** Pause after a failed KV operation. */
  readonly retryMs?: number;
  /** Timestamps (defaults to Date.now); tests pass the SimulatedClock's now. */
  readonly now?: () => number;
  /**
   * The clock node liveness is judged on (defaults to `now`): the wiring passes
   * wall time minus this process's own event-loop blocks (src/control/attention.ts),
   * so a leader that could not watch does not count that time against the nodes.
   * Leases stay on `now`: their safety needs real time.
   */
  readonly attention?: () => number;
}

export interface HeldLease {
  readonly record: LeaseRecord;
  readonly revision: number;
  /** Own-clock instant after which this controller must not act as leader. */
  readonly validUntil: number;
}

export interface ControllerContext {
  readonly id: string;
  readonly leaseMs: number;
  readonly renewMs: number;
  readonly pollMs: number;
  readonly guardMs: number;
  readonly nodeTimeoutMs: number;
  readonly settleMs: number;
  readonly repairMs: number;
  readonly reconcileMs: number;
  readonly retryMs: number;
  readonly now: () => number;
  readonly attention: () => number;
  observation: LeaseObservation | undefined;
  lease: HeldLease | undefined;
  /** Own-clock start of the lease write in flight: a granted lease counts from here. */
  attemptStartedAt: number;
  catalog: Catalog;
  catalogLoaded: boolean;
  nodes: NodeTable;
  nodesSynced: boolean;
  table: AssignmentTable | undefined;
  /** While leader: assignments their node's heartbeats leave out, since when (src/control/unhosted.ts). */
  unreported: UnreportedTable;
  /** Placement overrides by shard key (px_placement, watched by every contender). */
  overrides: ReadonlyMap<string, HeldOverride>;
  overridesSynced: boolean;
  lastError: string | undefined;
}

export interface HeldOverride {
  readonly node: string;
  readonly revision: number;
}

export type ControllerEvent =
  | { type: "catalog"; catalog: Catalog }
  | { type: "node.seen"; nodeId: string; revision: number; info: NodeReport }
  | { type: "node.gone"; nodeId: string }
  | { type: "nodes.synced" }
  | { type: "override.set"; key: string; node: string; revision: number }
  | { type: "override.cleared"; key: string }
  /** `keys`: the overrides the watch delivered since it was (re)opened; the others are gone. */
  | { type: "overrides.synced"; keys?: readonly string[] }
  | { type: "stop" };

/** Notifications for logs and tests (actor.on(type, ...)). */
export type ControllerEmitted =
  | { type: "elected"; term: number; revision: number }
  | { type: "steppedDown"; reason: string }
  | { type: "assigned"; term: number; writes: readonly AssignmentWrite[]; lastRevision: number }
  | { type: "overridesCleared"; cleared: readonly OverrideClear[] }
  /** An assignment its node did not host (not in its heartbeats) was written again elsewhere. */
  | ({ type: "unhosted" } & UnhostedRepair)
  | IoErrorEmitted;

export interface OverrideClear {
  readonly key: string;
  /** The override's revision: a newer override of the same shard is not cleared. */
  readonly revision: number;
  readonly node: string;
}

export interface AcquireInput {
  readonly record: LeaseRecord;
  readonly observedRevision: number;
}
export interface RenewInput {
  readonly record: LeaseRecord;
  readonly revision: number;
}
export interface FenceInput {
  readonly holder: string;
  readonly term: number;
  readonly nowMs: number;
}
export interface WriteInput {
  readonly table: AssignmentTable;
  readonly writes: readonly AssignmentWrite[];
  readonly term: number;
  readonly nowMs: number;
}

const notProvided = (name: string): (() => never) => notProvidedBy("controller", name, "controllerActors(io)");

const isFenced = (e: unknown): boolean => e instanceof Error && e.name === "FencedError";

/** The writes the leader would make now (pure; used by the guard and the write input): placement, then repairs of unhosted shards. */
export function currentPlan(c: ControllerContext): AssignmentWrite[] {
  if (!c.table) return [];
  const desired = shardsOfCatalog(c.catalog).map(shardKey);
  const overrides = new Map([...c.overrides].map(([k, o]) => [k, o.node]));
  const planned = planAssignments(desired, placeableNodes(c.nodes, c.attention(), c.nodeTimeoutMs, c.settleMs), c.table.assignments, overrides);
  const touched = new Set(planned.map((w) => w.key));
  return [...planned, ...currentRepairs(c).filter((r) => !touched.has(r.key)).map(repairWrite)];
}

/** Assignments whose live node has not reported hosting them for repairMs, with where each goes (pure). */
function dueUnhosted(c: ControllerContext): UnhostedRepair[] {
  if (!c.table) return [];
  const wanted = new Set(shardsOfCatalog(c.catalog).map(shardKey));
  const now = c.attention();
  return dueRepairs(c.unreported, c.table.assignments, placeableNodes(c.nodes, now, c.nodeTimeoutMs, c.settleMs), now, c.repairMs).filter((r) => wanted.has(r.key));
}

/**
 * The repairs the leader writes now. A shard an override put on the node that
 * does not host it is not moved here: placement would put it back; the
 * override is cleared first (staleOverrides), then it is placed afresh.
 */
export function currentRepairs(c: ControllerContext): UnhostedRepair[] {
  return dueUnhosted(c).filter((r) => c.overrides.get(r.key)?.node !== r.from);
}

/** Overrides the leader clears now: their node is not placeable any more, or their shard is gone, or their node does not host it (pure). */
export function staleOverrides(c: ControllerContext): OverrideClear[] {
  const desired = shardsOfCatalog(c.catalog).map(shardKey);
  const nodes = placeableNodes(c.nodes, c.attention(), c.nodeTimeoutMs);
  const stale = new Set(voidOverrides(new Map([...c.overrides].map(([k, o]) => [k, o.node])), desired, nodes));
  // An override to a node that does not host its shard (src/control/unhosted.ts) goes too.
  for (const r of dueUnhosted(c)) if (c.overrides.get(r.key)?.node === r.from) stale.add(r.key);
  return [...stale].sort().map((key) => ({ key, revision: c.overrides.get(key)!.revision, node: c.overrides.get(key)!.node }));
}

export const controllerMachine = setup({
  types: {
    context: {} as ControllerContext,
    events: {} as ControllerEvent,
    input: {} as ControllerInput,
    emitted: {} as ControllerEmitted,
  },
  actors: {
    readLease: fromPromise<StoredLease | undefined>(notProvided("readLease")),
    acquireLease: fromPromise<number, AcquireInput>(notProvided("acquireLease")),
    renewLease: fromPromise<number, RenewInput>(notProvided("renewLease")),
    releaseLease: fromPromise<void, RenewInput>(notProvided("releaseLease")),
    fenceAssignments: fromPromise<AssignmentTable, FenceInput>(notProvided("fenceAssignments")),
    writeAssignments: fromPromise<AssignmentTable, WriteInput>(notProvided("writeAssignments")),
    /** Clears each override at its revision; resolves with those it cleared (a replaced one is left). */
    clearOverrides: fromPromise<readonly OverrideClear[], { clears: readonly OverrideClear[] }>(notProvided("clearOverrides")),
    watchNodes: fromCallback<ControllerEvent>(() => () => {}),
    watchOverrides: fromCallback<ControllerEvent>(() => () => {}),
    watchCatalog: fromCallback<ControllerEvent>(() => () => {}),
  },
  delays: {
    pollMs: ({ context }) => context.pollMs,
    renewMs: ({ context }) => context.renewMs,
    retryMs: ({ context }) => context.retryMs,
    leaseLeft: ({ context }) => Math.max(0, (context.lease?.validUntil ?? 0) - context.now()),
    // Wake when the next node goes stale (so failover does not wait a full reconcile period) or settles.
    reconcileMs: ({ context }) => {
      const now = context.attention();
      const at = [nextExpiry(context.nodes, now, context.nodeTimeoutMs), nextSettle(context.nodes, now, context.nodeTimeoutMs, context.settleMs)].filter((t) => t !== undefined);
      return at.length === 0 ? context.reconcileMs : Math.max(1, Math.min(context.reconcileMs, Math.min(...at) - now + 1));
    },
  },
  guards: {
    canTakeOver: ({ context }, params: { read: StoredLease | undefined }) => {
      const now = context.now();
      return leaseVerdict(observeLease(context.observation, params.read, now), now, context.leaseMs) !== "held";
    },
    leaseExpired: ({ context }) => context.lease === undefined || context.now() >= context.lease.validUntil,
    shouldWrite: ({ context }) =>
      context.catalogLoaded &&
      context.nodesSynced &&
      context.overridesSynced &&
      context.lease !== undefined &&
      context.now() < context.lease.validUntil &&
      currentPlan(context).length > 0,
    // Checked after shouldWrite: a void override changes no placement, so clearing it can wait for the writes.
    shouldClear: ({ context }) =>
      context.catalogLoaded && context.nodesSynced && context.overridesSynced && context.lease !== undefined && context.now() < context.lease.validUntil && staleOverrides(context).length > 0,
    conflict: (_, params: { error: unknown }) => isConflict(params.error),
    fenced: (_, params: { error: unknown }) => isFenced(params.error),
  },
  actions: {
    observe: assign({
      observation: ({ context }, params: { read: StoredLease | undefined }) => observeLease(context.observation, params.read, context.now()),
    }),
    startAttempt: assign({ attemptStartedAt: ({ context }) => context.now() }),
    holdLease: assign({
      lease: ({ context }, params: { record: LeaseRecord; revision: number }) => ({
        record: params.record,
        revision: params.revision,
        validUntil: context.attemptStartedAt + context.leaseMs - context.guardMs,
      }),
    }),
    dropLeadership: assign({ lease: undefined, table: undefined, observation: undefined, unreported: new Map() }),
    noteError: enqueueActions(({ enqueue }, params: IoErrorParams) => {
      const note = ioErrorNote(params);
      enqueue.assign({ lastError: note.lastError });
      enqueue.emit(note.emitted);
    }),
  },
}).createMachine({
  id: "controller",
  context: ({ input }) => {
    const leaseMs = input.leaseMs ?? 5_000;
    const renewMs = input.renewMs ?? Math.floor(leaseMs / 3);
    return {
      id: input.id,
      leaseMs,
      renewMs,
      pollMs: input.pollMs ?? Math.min(renewMs, 500),
      guardMs: input.guardMs ?? Math.floor(leaseMs / 5),
      nodeTimeoutMs: input.nodeTimeoutMs ?? 5_000,
      settleMs: input.settleMs ?? PLACEMENT_SETTLE_MS,
      repairMs: input.repairMs ?? UNHOSTED_REPAIR_MS,
      reconcileMs: input.reconcileMs ?? 1_000,
      retryMs: input.retryMs ?? 500,
      now: input.now ?? Date.now,
      attention: input.attention ?? input.now ?? Date.now,
      observation: undefined,
      lease: undefined,
      attemptStartedAt: 0,
      catalog: EMPTY_CATALOG,
      catalogLoaded: false,
      nodes: new Map(),
      nodesSynced: false,
      table: undefined,
      unreported: new Map(),
      overrides: new Map(),
      overridesSynced: false,
      lastError: undefined,
    };
  },
  invoke: [
    { id: "watchNodes", src: "watchNodes" },
    { id: "watchCatalog", src: "watchCatalog" },
    { id: "watchOverrides", src: "watchOverrides" },
  ],
  on: {
    catalog: { actions: assign({ catalog: ({ event }) => event.catalog, catalogLoaded: true }) },
    "node.seen": {
      actions: assign({
        nodes: ({ context, event }) => sightNode(context.nodes, event.nodeId, event.revision, event.info, context.attention(), context.nodeTimeoutMs),
        // Leader only: what the node reports against what it was assigned (a re-delivered revision tells nothing new).
        unreported: ({ context, event }) =>
          context.table === undefined || (context.nodes.get(event.nodeId)?.revision ?? 0) >= event.revision
            ? context.unreported
            : noteReport(context.unreported, context.table.assignments, event.nodeId, event.info.shards, context.attention()),
      }),
    },
    "node.gone": { actions: assign({ nodes: ({ context, event }) => forgetNode(context.nodes, event.nodeId) }) },
    "nodes.synced": { actions: assign({ nodesSynced: true }) },
    "override.set": {
      actions: assign({ overrides: ({ context, event }) => new Map([...context.overrides, [event.key, { node: event.node, revision: event.revision }]]) }),
    },
    "override.cleared": {
      actions: assign({
        overrides: ({ context, event }) => {
          const next = new Map(context.overrides);
          next.delete(event.key);
          return next;
        },
      }),
    },
    "overrides.synced": {
      actions: assign({
        overridesSynced: true,
        // A watch re-opened after it broke delivers only what exists: an override deleted while it was blind is dropped here.
        overrides: ({ context, event }) => {
          if (event.keys === undefined) return context.overrides;
          const keep = new Set(event.keys);
          return new Map([...context.overrides].filter(([k]) => keep.has(k)));
        },
      }),
    },
  },
  initial: "follower",
  states: {
    follower: {
      on: { stop: "#controller.stopped" },
      initial: "reading",
      states: {
        reading: {
          invoke: {
            src: "readLease",
            onDone: [
              {
                guard: { type: "canTakeOver", params: ({ event }) => ({ read: event.output }) },
                target: "#controller.candidate",
                actions: { type: "observe", params: ({ event }) => ({ read: event.output }) },
              },
              { target: "waiting", actions: { type: "observe", params: ({ event }) => ({ read: event.output }) } },
            ],
            onError: { target: "waiting", actions: { type: "noteError", params: ({ event }) => ({ operation: "read lease", error: event.error }) } },
          },
        },
        waiting: { after: { pollMs: "reading" } },
      },
    },
    candidate: {
      entry: "startAttempt",
      on: { stop: "#controller.stopped" },
      invoke: {
        src: "acquireLease",
        input: ({ context }): AcquireInput => ({
          record: { holder: context.id, term: (context.observation?.lease?.record.term ?? 0) + 1, leaseMs: context.leaseMs, renewedAtMs: context.now() },
          observedRevision: context.observation?.lease?.revision ?? 0,
        }),
        onDone: {
          target: "leader",
          actions: [
            {
              type: "holdLease",
              params: ({ context, event }) => ({
                record: { holder: context.id, term: (context.observation?.lease?.record.term ?? 0) + 1, leaseMs: context.leaseMs, renewedAtMs: context.attemptStartedAt },
                revision: event.output,
              }),
            },
            emit(({ context }) => ({ type: "elected" as const, term: context.lease?.record.term ?? 0, revision: context.lease?.revision ?? 0 })),
          ],
        },
        // Lost the race (or NATS failed): wait a poll interval, then read again (the winner's lease, or NATS back).
        // Straight back to reading spun: a NATS answering "jetstream is not enabled" at once failed 28 tries in 17 ms.
        onError: { target: "#controller.follower.waiting", actions: { type: "noteError", params: ({ event }) => ({ operation: "acquire lease", error: event.error }) } },
      },
    },
    leader: {
      type: "parallel",
      on: { stop: "#controller.releasing" },
      states: {
        lease: {
          initial: "waiting",
          states: {
            waiting: {
              after: {
                renewMs: [
                  // Woken late (e.g. the process was paused): others may have taken over already.
                  { guard: "leaseExpired", target: "#controller.steppingDown", actions: emit({ type: "steppedDown" as const, reason: "lease expired before it could be renewed" }) },
                  { target: "renewing" },
                ],
              },
            },
            renewing: {
              entry: "startAttempt",
              after: {
                leaseLeft: { target: "#controller.steppingDown", actions: emit({ type: "steppedDown" as const, reason: "lease expired while renewing" }) },
              },
              invoke: {
                src: "renewLease",
                input: ({ context }): RenewInput => ({
                  record: { ...context.lease!.record, renewedAtMs: context.now() },
                  revision: context.lease!.revision,
                }),
                onDone: {
                  target: "waiting",
                  actions: {
                    type: "holdLease",
                    params: ({ context, event }) => ({ record: { ...context.lease!.record, renewedAtMs: context.attemptStartedAt }, revision: event.output }),
                  },
                },
                onError: [
                  {
                    guard: { type: "conflict", params: ({ event }) => ({ error: event.error }) },
                    target: "#controller.follower",
                    actions: ["dropLeadership", emit({ type: "steppedDown" as const, reason: "another controller holds the lease" })],
                  },
                  {
                    guard: "leaseExpired",
                    target: "#controller.steppingDown",
                    actions: emit({ type: "steppedDown" as const, reason: "lease expired: renewals failed" }),
                  },
                  { target: "waiting", actions: { type: "noteError", params: ({ event }) => ({ operation: "renew lease", error: event.error }) } },
                ],
              },
            },
          },
        },
        work: {
          initial: "fencing",
          states: {
            fencing: {
              invoke: {
                src: "fenceAssignments",
                input: ({ context }): FenceInput => ({ holder: context.id, term: context.lease!.record.term, nowMs: context.now() }),
                onDone: { target: "ready", actions: assign({ table: ({ event }) => event.output, unreported: new Map() }) },
                onError: [
                  {
                    guard: { type: "fenced", params: ({ event }) => ({ error: event.error }) },
                    target: "#controller.steppingDown",
                    actions: emit(({ event }) => ({ type: "steppedDown" as const, reason: errorMessage(event.error) })),
                  },
                  { target: "fenceBackoff", actions: { type: "noteError", params: ({ event }) => ({ operation: "fence px_assign", error: event.error }) } },
                ],
              },
            },
            fenceBackoff: { after: { retryMs: "fencing" } },
            ready: {
              always: [
                { guard: "shouldWrite", target: "writing" },
                { guard: "shouldClear", target: "clearing" },
              ],
              after: { reconcileMs: { target: "ready", reenter: true } },
            },
            // The overrides watcher then delivers the deletes (override.cleared).
            clearing: {
              invoke: {
                src: "clearOverrides",
                input: ({ context }) => ({ clears: staleOverrides(context) }),
                onDone: {
                  target: "ready",
                  actions: [
                    // Forgotten here at once, so the guard does not clear them again before the watcher reports the deletes.
                    assign({
                      overrides: ({ context, event }) => {
                        const next = new Map(context.overrides);
                        for (const c of event.output) if (next.get(c.key)?.revision === c.revision) next.delete(c.key);
                        return next;
                      },
                    }),
                    emit(({ event }) => ({ type: "overridesCleared" as const, cleared: event.output })),
                  ],
                },
                onError: { target: "backoff", actions: { type: "noteError", params: ({ event }) => ({ operation: "clear px_placement overrides", error: event.error }) } },
              },
            },
            writing: {
              // Not silent: each repair says which node left which shard unhosted, and for how long.
              entry: enqueueActions(({ context, enqueue }) => {
                const plan = currentPlan(context);
                for (const r of currentRepairs(context)) if (plan.some((w) => w.key === r.key && w.node === r.to)) enqueue.emit({ type: "unhosted" as const, ...r });
              }),
              invoke: {
                src: "writeAssignments",
                input: ({ context }): WriteInput => ({ table: context.table!, writes: currentPlan(context), term: context.lease!.record.term, nowMs: context.now() }),
                onDone: {
                  target: "ready",
                  actions: [
                    emit(({ context, event }) => ({
                      type: "assigned" as const,
                      term: context.lease?.record.term ?? 0,
                      writes: diffWrites(context.table, event.output),
                      lastRevision: event.output.lastRevision,
                    })),
                    assign({ table: ({ event }) => event.output, unreported: ({ context, event }) => pruneUnreported(context.unreported, event.output.assignments) }),
                  ],
                },
                onError: [
                  {
                    guard: { type: "fenced", params: ({ event }) => ({ error: event.error }) },
                    target: "#controller.steppingDown",
                    actions: emit(({ event }) => ({ type: "steppedDown" as const, reason: errorMessage(event.error) })),
                  },
                  { target: "backoff", actions: { type: "noteError", params: ({ event }) => ({ operation: "write px_assign", error: event.error }) } },
                ],
              },
            },
            backoff: { after: { retryMs: "ready" } },
          },
        },
      },
    },
    // Hand the lease back if it is still ours, so nobody waits for it to expire; a lost CAS is fine.
    steppingDown: {
      on: { stop: "#controller.stopped" },
      invoke: {
        src: "releaseLease",
        input: ({ context }): RenewInput => ({ record: context.lease!.record, revision: context.lease!.revision }),
        onDone: { target: "follower", actions: "dropLeadership" },
        onError: { target: "follower", actions: "dropLeadership" },
      },
    },
    releasing: {
      invoke: {
        src: "releaseLease",
        input: ({ context }): RenewInput => ({ record: context.lease!.record, revision: context.lease!.revision }),
        onDone: { target: "stopped", actions: "dropLeadership" },
        onError: { target: "stopped", actions: "dropLeadership" },
      },
    },
    stopped: { type: "final" },
  },
});

/** The assignment changes between two tables (for the `assigned` notification). */
function diffWrites(before: AssignmentTable | undefined, after: AssignmentTable): AssignmentWrite[] {
  const out: AssignmentWrite[] = [];
  const prev = before?.assignments ?? new Map();
  for (const [key, a] of after.assignments) if (prev.get(key)?.node !== a.node) out.push({ key, node: a.node });
  for (const key of prev.keys()) if (!after.assignments.has(key)) out.push({ key, node: undefined });
  return out;
}

/** "follower" | "candidate" | "leader" | "steppingDown" | "releasing" | "stopped". */
export function controllerRole(value: unknown): string {
  return typeof value === "string" ? value : Object.keys(value as object)[0] ?? "unknown";
}
