// Lag remediation workflow: every `intervalMs` reads the sink lag of each
// shard the node hosts (observing), plans the next step per shard against its
// table's lag SLO (planLagSteps: escalate after the dwell time above the SLO,
// step back after the dwell time at or below half of it), and makes the step
// changes (acting): 1 bigger sink batches, 2 hold eviction by age, 3 move the
// sink to a less loaded node (skipped, with the reason, where it cannot help),
// 4 alert. Each change is emitted as a `recorded` event, which the runtime
// writes to PX_EVENTS for `pxctl events`. IO is injected (`observe`, `apply`);
// no clock of its own: the interval runs on the actor's clock (a
// SimulatedClock in tests) and `observe` reports the time of its readings.
import { assign, emit, enqueueActions, fromPromise, setup } from "xstate";
import { planLagSteps } from "../src/sink/index.js";
import type { LagReading, LagStep, ShardLagState, StepChange } from "../src/sink/index.js";
import { errorMessage, notProvided } from "./common.js";

export interface LagObservation {
  /** When the readings were taken (ms, the runtime's clock). */
  readonly atMs: number;
  readonly readings: readonly LagReading[];
}

/** What making one step change did. */
export interface StepResult {
  readonly change: StepChange;
  /** False when the step could not be taken here (the move on a single node): it counts as taken, the next one follows after the dwell. */
  readonly applied: boolean;
  readonly message: string;
}

export interface RemediationContext {
  readonly intervalMs: number;
  shards: Record<string, ShardLagState>;
  pending: readonly StepChange[];
  lastError: string | undefined;
  stats: { readonly observations: number; readonly changes: number; readonly failures: number };
}

export interface RemediationInput {
  /** Between lag readings. */
  readonly intervalMs: number;
}

export type RemediationEvent = { type: "stop" };

/** What the workflow did, for the event log (`pxctl events`). */
export interface RemediationRecorded {
  readonly type: "recorded";
  readonly kind: "lag.step_up" | "lag.step_down" | "lag.step_skipped" | "lag.failed";
  readonly message: string;
}

/** A shard's current step in a snapshot's context (0 when the workflow has not seen it). */
export function lagStepOf(context: RemediationContext, key: string): LagStep {
  return context.shards[key]?.step ?? 0;
}

export const remediationMachine = setup({
  types: {
    context: {} as RemediationContext,
    events: {} as RemediationEvent,
    input: {} as RemediationInput,
    emitted: {} as RemediationRecorded,
  },
  actors: {
    observe: fromPromise<LagObservation>(notProvided("remediation", "observe", "src/node/remediation.ts")),
    apply: fromPromise<readonly StepResult[], { changes: readonly StepChange[] }>(notProvided("remediation", "apply", "src/node/remediation.ts")),
  },
  delays: {
    interval: ({ context }) => context.intervalMs,
  },
  actions: {
    failed: enqueueActions(({ context, enqueue }, params: { step: string; error: unknown }) => {
      const lastError = `${params.step}: ${errorMessage(params.error)}`;
      enqueue.assign({ lastError, stats: { ...context.stats, failures: context.stats.failures + 1 } });
      enqueue.emit({ type: "recorded", kind: "lag.failed", message: `lag remediation ${lastError}; trying again in ${context.intervalMs} ms` });
    }),
  },
}).createMachine({
  id: "remediation",
  context: ({ input }) => ({
    intervalMs: input.intervalMs,
    shards: {},
    pending: [],
    lastError: undefined,
    stats: { observations: 0, changes: 0, failures: 0 },
  }),
  initial: "idle",
  on: { stop: ".stopped" },
  states: {
    idle: {
      after: { interval: "observing" },
    },
    observing: {
      invoke: {
        src: "observe",
        onDone: [
          {
            actions: assign(({ context, event }) => {
              const { next, changes } = planLagSteps(context.shards, event.output.readings, event.output.atMs);
              return { shards: next, pending: changes, stats: { ...context.stats, observations: context.stats.observations + 1 } };
            }),
            target: "deciding",
          },
        ],
        onError: { target: "idle", actions: { type: "failed", params: ({ event }) => ({ step: "observing", error: event.error }) } },
      },
    },
    deciding: {
      always: [{ guard: ({ context }) => context.pending.length > 0, target: "acting" }, { target: "idle" }],
    },
    acting: {
      invoke: {
        src: "apply",
        input: ({ context }) => ({ changes: context.pending }),
        onDone: {
          target: "idle",
          actions: [
            assign(({ context, event }) => ({ pending: [], lastError: undefined, stats: { ...context.stats, changes: context.stats.changes + event.output.length } })),
            enqueueActions(({ enqueue, event }) => {
              for (const r of event.output) {
                const kind = !r.applied ? "lag.step_skipped" : r.change.to > r.change.from ? "lag.step_up" : "lag.step_down";
                enqueue(emit({ type: "recorded", kind, message: r.message }));
              }
            }),
          ],
        },
        // The plan already moved the steps: the runtime sets the knobs from the step again on its next reading.
        onError: { target: "idle", actions: [assign({ pending: [] }), { type: "failed", params: ({ event }) => ({ step: "acting", error: event.error }) }] },
      },
    },
    stopped: { type: "final" },
  },
});
