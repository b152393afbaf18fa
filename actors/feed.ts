// Feed actor: one materialized feed, computed once and published to its
// JetStream stream for any number of consumers. recovering (read the offset
// of the last message the feed published) -> running: replaying (fold the
// feed's WAL in LSN order from its start, publishing nothing the stream
// already has) -> live, with snapshotting (publish the whole state as one
// "snapshot" message, where a new consumer can start) on a schedule or on
// demand; failed when the output cannot be written or the WAL lost records
// the feed needs. A WAL consumer that breaks for another reason (a timeout, a
// NATS server going away) is opened again after a backoff (walRetry, as the
// shard does: 0.5 s doubling to 10 s) from the record after the last folded,
// while the output keeps publishing what was folded.
// IO is injected: `lastPublished`, `wal` and `publish` come from the runtime
// (src/node/feed/) or from fakes. The operator state is the FeedRunner
// (src/feed), mutated in place like the shard's hot set.
import { assign, fromCallback, fromPromise, setup } from "xstate";
import { FeedRunner } from "../src/feed/index.js";
import type { FeedBatch, FeedOffset, FeedPlan, FeedRecord } from "../src/feed/index.js";
import { errorMessage } from "./common.js";

export interface FeedAddress {
  readonly tenant: string;
  readonly name: string;
}

export interface FeedStats {
  records: number;
  published: number;
  snapshots: number;
  /** LSN the feed has folded up to (every shard). */
  foldedLsn: number;
  /** Offset of the last message the stream holds (resume point after a restart). */
  publishedOffset: FeedOffset | undefined;
}

export interface FeedContext {
  readonly feed: FeedAddress;
  readonly plan: FeedPlan;
  readonly snapshotIntervalMs: number;
  runner: FeedRunner;
  /** Batches folded and not yet acknowledged by the stream, in order. */
  outbox: FeedBatch[];
  /** How many of `outbox` the running publish took. */
  inFlight: number;
  stats: FeedStats;
  error: string | undefined;
  /** WAL consumer failures in a row (reset once the reader caught up again). */
  walRetries: number;
  /** Why the WAL consumer last broke (shown while the feed waits to reopen it). */
  walRetryError: string | undefined;
}

export interface FeedInput {
  readonly feed: FeedAddress;
  readonly plan: FeedPlan;
  /** 0 disables scheduled snapshots (on demand still works). */
  readonly snapshotIntervalMs?: number;
}

export type FeedEvent =
  | { type: "records"; records: readonly FeedRecord[] }
  | { type: "caughtUp" }
  /** The WAL consumer failed; `fatal` when retrying cannot help (records the feed needs are gone). */
  | { type: "walError"; message: string; fatal: boolean }
  | { type: "snapshot" }
  | { type: "stop" };

export interface FeedWalInput {
  readonly plan: FeedPlan;
  /** First WAL sequence to deliver. */
  readonly fromSeq: number;
}

export interface LastPublishedInput {
  readonly feed: FeedAddress;
  readonly plan: FeedPlan;
}

export interface PublishInput {
  readonly feed: FeedAddress;
  readonly plan: FeedPlan;
  readonly batches: readonly FeedBatch[];
}

export interface PublishOutput {
  /** How many of the batches this feed stored; the rest the stream held already (another writer of the feed stored them). */
  readonly stored: number;
}

const MAX_PUBLISH = 256;

export const feedMachine = setup({
  types: {
    context: {} as FeedContext,
    events: {} as FeedEvent,
    input: {} as FeedInput,
  },
  actors: {
    /** The offset of the newest message of the feed's stream (undefined: it has none). */
    lastPublished: fromPromise<FeedOffset | undefined, LastPublishedInput>(async () => undefined),
    wal: fromCallback<FeedEvent, FeedWalInput>(() => () => {}),
    /** Publishes the batches in order; resolves once the stream holds every one. */
    publish: fromPromise<PublishOutput, PublishInput>(async ({ input }) => ({ stored: input.batches.length })),
  },
  actions: {
    // The runner is mutated in place (the feed's one big mutable structure); the machine records what came out.
    fold: assign(({ context }, params: { records: readonly FeedRecord[] }) => {
      const out: FeedBatch[] = [];
      let error: string | undefined;
      let last = context.stats.foldedLsn;
      try {
        for (const r of params.records) {
          const b = context.runner.push(r);
          if (b !== undefined) out.push(b);
          last = Math.max(last, r.lsn);
        }
      } catch (e) {
        error = `feed ${context.feed.name}: folding the WAL failed: ${errorMessage(e)}`;
      }
      return { error, outbox: [...context.outbox, ...out], stats: { ...context.stats, records: context.stats.records + params.records.length, foldedLsn: last } };
    }),
    queueSnapshot: assign(({ context }) => {
      const s = context.runner.snapshot();
      return s === undefined ? {} : { outbox: [...context.outbox, s] };
    }),
  },
  guards: {
    broken: ({ context }) => context.error !== undefined,
    fatal: ({ event }) => event.type === "walError" && event.fatal,
    scheduled: ({ context }) => context.snapshotIntervalMs > 0,
    hasOutput: ({ context }) => context.outbox.length > 0,
  },
  delays: {
    snapshotInterval: ({ context }) => context.snapshotIntervalMs,
    walRetry: ({ context }) => Math.min(10_000, 500 * 2 ** Math.max(0, context.walRetries - 1)),
  },
}).createMachine({
  id: "feed",
  context: ({ input }) => ({
    feed: input.feed,
    plan: input.plan,
    snapshotIntervalMs: input.snapshotIntervalMs ?? 0,
    runner: new FeedRunner(input.plan),
    outbox: [],
    inFlight: 0,
    stats: { records: 0, published: 0, snapshots: 0, foldedLsn: 0, publishedOffset: undefined },
    error: undefined,
    walRetries: 0,
    walRetryError: undefined,
  }),
  initial: "recovering",
  states: {
    recovering: {
      invoke: {
        src: "lastPublished",
        input: ({ context }) => ({ feed: context.feed, plan: context.plan }),
        onDone: {
          target: "running",
          // Fold from the WAL's start again, but publish only what the stream does not have yet.
          actions: assign(({ context, event }) => ({ runner: new FeedRunner(context.plan, event.output), stats: { ...context.stats, publishedOffset: event.output } })),
        },
        onError: { target: "failed", actions: assign({ error: ({ event }) => `cannot read the feed's stream: ${errorMessage(event.error)}` }) },
      },
    },
    running: {
      type: "parallel",
      always: { guard: "broken", target: "failed" },
      on: {
        records: { actions: { type: "fold", params: ({ event }) => ({ records: event.records }) } },
        stop: { target: "stopped" },
      },
      states: {
        wal: {
          initial: "reading",
          states: {
            reading: {
              // From the record after the last folded: the WAL's start at first, where the last consumer stopped after a retry.
              invoke: { id: "wal", src: "wal", input: ({ context }) => ({ plan: context.plan, fromSeq: context.stats.foldedLsn + 1 }) },
              on: {
                caughtUp: { actions: assign({ walRetries: 0, walRetryError: undefined }) },
                walError: [
                  { guard: "fatal", target: "#feed.failed", actions: assign({ error: ({ event }) => `WAL consumer failed: ${event.message}` }) },
                  { target: "waiting", actions: assign({ walRetries: ({ context }) => context.walRetries + 1, walRetryError: ({ event }) => event.message }) },
                ],
              },
            },
            waiting: {
              after: { walRetry: { target: "reading" } },
            },
          },
        },
        phase: {
          initial: "replaying",
          states: {
            replaying: { on: { caughtUp: { target: "live" } } },
            live: {
              after: { snapshotInterval: { guard: "scheduled", target: "snapshotting" } },
              on: { snapshot: { target: "snapshotting" } },
            },
            snapshotting: {
              // The state as one message, queued behind the updates it covers (the stream stays in LSN order).
              entry: ["queueSnapshot", assign({ stats: ({ context }) => ({ ...context.stats, snapshots: context.stats.snapshots + 1 }) })],
              always: { target: "live" },
            },
          },
        },
        output: {
          initial: "idle",
          states: {
            idle: { always: { guard: "hasOutput", target: "publishing" } },
            publishing: {
              entry: assign({ inFlight: ({ context }) => Math.min(context.outbox.length, MAX_PUBLISH) }),
              invoke: {
                src: "publish",
                input: ({ context }) => ({ feed: context.feed, plan: context.plan, batches: context.outbox.slice(0, context.inFlight) }),
                onDone: {
                  target: "idle",
                  actions: assign(({ context, event }) => ({
                    outbox: context.outbox.slice(context.inFlight),
                    stats: { ...context.stats, published: context.stats.published + event.output.stored, publishedOffset: context.outbox[context.inFlight - 1]!.offset },
                    inFlight: 0,
                  })),
                },
                onError: { actions: assign({ error: ({ context, event }) => `feed ${context.feed.name}: publishing failed: ${errorMessage(event.error)}` }) },
              },
            },
          },
        },
      },
    },
    stopped: { type: "final" },
    failed: {
      on: { stop: { target: "stopped" } },
    },
  },
});
