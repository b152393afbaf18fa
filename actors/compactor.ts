// Compaction workflow: keeps a node's WAL bounded by purging, per shard it
// owns, what no reader needs any more. idle -> planning (read P, the newest
// verified snapshot, holds; planCompaction) -> purging (record each cut in
// px_compaction, then purge the shard's subject below it) -> verifying (each
// subject starts at or above its cut, the stream's anchor is still first) ->
// idle; any failed step goes to backoff (exponential, capped) and plans again.
// Runs every `intervalMs` and on a `compact` event. IO is injected (`plan`,
// `purge`, `verify`); what it did is emitted as `recorded` events, which the
// runtime writes to PX_EVENTS for `pxctl events`. No clock of its own: delays
// run on the actor's clock (a SimulatedClock in tests).
import { assign, emit, fromPromise, setup } from "xstate";
import type { CompactionPlan } from "../src/wal/index.js";
import { describePlan } from "../src/wal/index.js";
import { errorMessage, notProvided } from "./common.js";

export interface PurgeResult {
  readonly plan: CompactionPlan;
  /** Records the purge removed. */
  readonly purged: number;
}

export interface CompactorStats {
  readonly runs: number;
  readonly purgedRecords: number;
  readonly failures: number;
  /** When the last run ended (the actor's clock, ms); 0 before the first. */
  readonly lastRunAtMs: number;
}

export interface CompactorContext {
  readonly intervalMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly plans: readonly CompactionPlan[];
  readonly results: readonly PurgeResult[];
  readonly attempt: number;
  readonly lastError: string | undefined;
  readonly stats: CompactorStats;
  /** Shards the current run is limited to (a `compact` event's `only`); undefined: all. */
  readonly only: readonly string[] | undefined;
}

export interface CompactorInput {
  /** Between scheduled runs (0: only on `compact`). */
  readonly intervalMs: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

/** `only`: shard keys (tenant.table.bucket) to compact; absent: every shard. */
export type CompactorEvent = { type: "compact"; only?: readonly string[] | undefined } | { type: "stop" };

/** What the workflow did, for the event log (`pxctl events`). */
export interface CompactorRecorded {
  readonly type: "recorded";
  readonly kind: "compaction.purged" | "compaction.skipped" | "compaction.failed";
  readonly message: string;
}

const backoffMs = (c: CompactorContext): number => Math.min(c.backoffMaxMs, c.backoffBaseMs * 2 ** Math.max(0, c.attempt - 1));

export const compactorMachine = setup({
  types: {
    context: {} as CompactorContext,
    events: {} as CompactorEvent,
    input: {} as CompactorInput,
    emitted: {} as CompactorRecorded,
  },
  actors: {
    plan: fromPromise<readonly CompactionPlan[], { only: readonly string[] | undefined }>(notProvided("compactor", "plan", "src/node/compaction.ts")),
    purge: fromPromise<readonly PurgeResult[], { plans: readonly CompactionPlan[] }>(notProvided("compactor", "purge", "src/node/compaction.ts")),
    verify: fromPromise<readonly string[], { results: readonly PurgeResult[] }>(notProvided("compactor", "verify", "src/node/compaction.ts")),
  },
  guards: {
    scheduled: ({ context }) => context.intervalMs > 0,
  },
  delays: {
    interval: ({ context }) => context.intervalMs,
    backoff: ({ context }) => backoffMs(context),
  },
  actions: {
    failed: assign(({ context }, params: { step: string; error: unknown }) => ({
      attempt: context.attempt + 1,
      lastError: `${params.step}: ${errorMessage(params.error)}`,
      stats: { ...context.stats, failures: context.stats.failures + 1 },
    })),
    recordFailure: emit(({ context }) => ({ type: "recorded" as const, kind: "compaction.failed" as const, message: `compaction ${context.lastError ?? "failed"}; retrying in ${backoffMs(context)} ms` })),
  },
}).createMachine({
  id: "compactor",
  context: ({ input }) => ({
    intervalMs: input.intervalMs,
    backoffBaseMs: input.backoffBaseMs ?? 1_000,
    backoffMaxMs: input.backoffMaxMs ?? 60_000,
    plans: [],
    results: [],
    attempt: 0,
    lastError: undefined,
    stats: { runs: 0, purgedRecords: 0, failures: 0, lastRunAtMs: 0 },
    only: undefined,
  }),
  initial: "idle",
  on: { stop: ".stopped" },
  states: {
    idle: {
      after: { interval: { guard: "scheduled", target: "planning", actions: assign({ only: undefined }) } },
      on: { compact: { target: "planning", actions: assign({ only: ({ event }) => event.only }) } },
    },
    planning: {
      invoke: {
        src: "plan",
        input: ({ context }) => ({ only: context.only }),
        onDone: [
          {
            guard: ({ event }) => event.output.every((p) => p.cut === 0),
            target: "idle",
            actions: [
              assign(({ context, event }) => ({ plans: event.output, attempt: 0, stats: { ...context.stats, runs: context.stats.runs + 1 } })),
              emit(({ event }) => ({ type: "recorded" as const, kind: "compaction.skipped" as const, message: `nothing to purge: ${event.output.map(describePlan).join("; ") || "no shard with a sink"}` })),
            ],
          },
          { target: "purging", actions: assign({ plans: ({ event }) => event.output }) },
        ],
        onError: { target: "backoff", actions: [{ type: "failed", params: ({ event }) => ({ step: "planning", error: event.error }) }, "recordFailure"] },
      },
    },
    purging: {
      invoke: {
        src: "purge",
        input: ({ context }) => ({ plans: context.plans.filter((p) => p.cut > 0) }),
        onDone: {
          target: "verifying",
          actions: assign({ results: ({ event }) => event.output }),
        },
        onError: { target: "backoff", actions: [{ type: "failed", params: ({ event }) => ({ step: "purging", error: event.error }) }, "recordFailure"] },
      },
    },
    verifying: {
      invoke: {
        src: "verify",
        input: ({ context }) => ({ results: context.results }),
        onDone: [
          {
            guard: ({ event }) => event.output.length > 0,
            target: "backoff",
            actions: [{ type: "failed", params: ({ event }) => ({ step: "verifying", error: new Error(event.output.join("; ")) }) }, "recordFailure"],
          },
          {
            target: "idle",
            actions: [
              assign(({ context }) => ({
                attempt: 0,
                lastError: undefined,
                stats: {
                  ...context.stats,
                  runs: context.stats.runs + 1,
                  purgedRecords: context.stats.purgedRecords + context.results.reduce((n, r) => n + r.purged, 0),
                },
              })),
              emit(({ context }) => ({
                type: "recorded" as const,
                kind: "compaction.purged" as const,
                message: context.results.map((r) => `${describePlan(r.plan)}: ${r.purged} records purged, verified`).join("; "),
              })),
            ],
          },
        ],
        onError: { target: "backoff", actions: [{ type: "failed", params: ({ event }) => ({ step: "verifying", error: event.error }) }, "recordFailure"] },
      },
    },
    backoff: {
      after: { backoff: "planning" },
      on: { compact: { target: "planning", actions: assign({ only: ({ event }) => event.only }) } },
    },
    stopped: { type: "final" },
  },
});
