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
// Checkpoints: every `checkpointIntervalMs` the operator state is copied out
// (src/feed/checkpoint.ts) with the LSN it covers, and saved once the stream
// holds every batch folded before the copy (so a restart never loads a state
// whose output the stream lacks). Recovery loads the checkpoint and folds the
// WAL from the record after it; a checkpoint that does not fit is passed over
// (the feed folds from the WAL's start, as without one), a store that cannot
// be read is asked again after a backoff.
// IO is injected: `lastPublished`, `loadCheckpoint`, `wal`, `publish` and
// `saveCheckpoint` come from the runtime (src/node/feed/) or from fakes. The
// operator state is the FeedRunner (src/feed), mutated in place like the
// shard's hot set.
import { assign, fromCallback, fromPromise, setup } from "xstate";
import { FeedRunner, decodeCheckpoint, encodeCheckpoint, restoreRunner } from "../src/feed/index.js";
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
  checkpoints: number;
  /** LSN the last saved (or the loaded) checkpoint covers: a restart folds the WAL from the next record (0: none). */
  checkpointLsn: number;
  checkpointBytes: number;
  /** Why the last checkpoint could not be saved or read (cleared by the next that was). */
  checkpointError: string | undefined;
  /** What recovery started from: the checkpoint it loaded, or why it folded from the WAL's start. */
  restoredFrom: string | undefined;
}

/** A copy of the state waiting until the stream holds the output folded before it. */
export interface PendingCheckpoint {
  readonly bytes: Uint8Array;
  readonly foldedLsn: number;
  /** Saved once this many batches left the outbox (every one queued before the copy). */
  readonly afterDequeued: number;
}

export interface FeedContext {
  readonly feed: FeedAddress;
  readonly plan: FeedPlan;
  readonly snapshotIntervalMs: number;
  readonly checkpointIntervalMs: number;
  runner: FeedRunner;
  /** Batches ever queued to / taken off the outbox (a checkpoint waits for the count at its copy). */
  queued: number;
  dequeued: number;
  /** Offset of the newest batch queued (or the stream's last at recovery): what a checkpoint's state has produced. */
  outputTo: FeedOffset | undefined;
  pendingCheckpoint: PendingCheckpoint | undefined;
  /** Failed reads of the checkpoint store in a row. */
  restoreRetries: number;
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
  /** How often the operator state is checkpointed (0: never; a restart then folds the whole WAL). */
  readonly checkpointIntervalMs?: number;
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

export interface CheckpointInput {
  readonly feed: FeedAddress;
  readonly plan: FeedPlan;
}

export interface SaveCheckpointInput extends CheckpointInput {
  readonly bytes: Uint8Array;
  readonly foldedLsn: number;
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
    /** The feed's saved checkpoint (undefined: none). */
    loadCheckpoint: fromPromise<Uint8Array | undefined, CheckpointInput>(async () => undefined),
    /** Replaces the feed's checkpoint; resolves once it is stored. */
    saveCheckpoint: fromPromise<void, SaveCheckpointInput>(async () => {}),
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
      return {
        error,
        outbox: [...context.outbox, ...out],
        queued: context.queued + out.length,
        outputTo: out.length > 0 ? out[out.length - 1]!.offset : context.outputTo,
        stats: { ...context.stats, records: context.stats.records + params.records.length, foldedLsn: last },
      };
    }),
    queueSnapshot: assign(({ context }) => {
      const s = context.runner.snapshot();
      return s === undefined ? {} : { outbox: [...context.outbox, s], queued: context.queued + 1, outputTo: s.offset };
    }),
    // A copy now (the runner folds on at once); saved when the stream holds what was queued before it.
    copyState: assign(({ context }) => {
      if (context.stats.foldedLsn === context.stats.checkpointLsn) return { pendingCheckpoint: undefined };
      try {
        return { pendingCheckpoint: { bytes: encodeCheckpoint(context.runner, context.stats.foldedLsn, context.outputTo), foldedLsn: context.stats.foldedLsn, afterDequeued: context.queued } };
      } catch (e) {
        // Not fatal, like a failed save: the feed goes on and holds the WAL from its last checkpoint.
        return { pendingCheckpoint: undefined, stats: { ...context.stats, checkpointError: `cannot copy the feed's state: ${errorMessage(e)}` } };
      }
    }),
    // The stream's last message, and the checkpoint if it fits: the runner to fold on with, from where.
    restore: assign(({ context }, params: { bytes: Uint8Array | undefined }) => {
      const published = context.stats.publishedOffset;
      const fresh = { runner: new FeedRunner(context.plan, published), outputTo: published, restoreRetries: 0 };
      if (params.bytes === undefined) return { ...fresh, stats: { ...context.stats, restoredFrom: "no checkpoint: folding the WAL from its first record" } };
      try {
        const c = decodeCheckpoint(context.plan, params.bytes);
        const runner = restoreRunner(context.plan, c, published);
        return { runner, outputTo: published, restoreRetries: 0, stats: { ...context.stats, foldedLsn: c.foldedLsn, checkpointLsn: c.foldedLsn, checkpointBytes: params.bytes.length, restoredFrom: `checkpoint at LSN ${c.foldedLsn} (${params.bytes.length} bytes)` } };
      } catch (e) {
        return { ...fresh, stats: { ...context.stats, restoredFrom: `checkpoint not used, folding the WAL from its first record: ${errorMessage(e)}` } };
      }
    }),
  },
  guards: {
    broken: ({ context }) => context.error !== undefined,
    fatal: ({ event }) => event.type === "walError" && event.fatal,
    scheduled: ({ context }) => context.snapshotIntervalMs > 0,
    hasOutput: ({ context }) => context.outbox.length > 0,
    checkpointing: ({ context }) => context.checkpointIntervalMs > 0,
    nothingCopied: ({ context }) => context.pendingCheckpoint === undefined,
    outputStored: ({ context }) => context.pendingCheckpoint !== undefined && context.dequeued >= context.pendingCheckpoint.afterDequeued,
  },
  delays: {
    snapshotInterval: ({ context }) => context.snapshotIntervalMs,
    checkpointInterval: ({ context }) => context.checkpointIntervalMs,
    restoreRetry: ({ context }) => Math.min(10_000, 500 * 2 ** Math.max(0, context.restoreRetries - 1)),
    walRetry: ({ context }) => Math.min(10_000, 500 * 2 ** Math.max(0, context.walRetries - 1)),
  },
}).createMachine({
  id: "feed",
  context: ({ input }) => ({
    feed: input.feed,
    plan: input.plan,
    snapshotIntervalMs: input.snapshotIntervalMs ?? 0,
    checkpointIntervalMs: input.checkpointIntervalMs ?? 0,
    runner: new FeedRunner(input.plan),
    queued: 0,
    dequeued: 0,
    outputTo: undefined,
    pendingCheckpoint: undefined,
    restoreRetries: 0,
    outbox: [],
    inFlight: 0,
    stats: { records: 0, published: 0, snapshots: 0, foldedLsn: 0, publishedOffset: undefined, checkpoints: 0, checkpointLsn: 0, checkpointBytes: 0, checkpointError: undefined, restoredFrom: undefined },
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
          target: "restoring",
          // Publish only what the stream does not have yet.
          actions: assign(({ context, event }) => ({ stats: { ...context.stats, publishedOffset: event.output } })),
        },
        onError: { target: "failed", actions: assign({ error: ({ event }) => `cannot read the feed's stream: ${errorMessage(event.error)}` }) },
      },
    },
    restoring: {
      on: { stop: { target: "stopped" } },
      invoke: {
        src: "loadCheckpoint",
        input: ({ context }) => ({ feed: context.feed, plan: context.plan }),
        onDone: { target: "running", actions: { type: "restore", params: ({ event }) => ({ bytes: event.output }) } },
        // Not read is not absent: folding from the WAL's start could fail for good on a compacted WAL.
        onError: { target: "restoreWaiting", actions: assign(({ context, event }) => ({ restoreRetries: context.restoreRetries + 1, stats: { ...context.stats, checkpointError: `cannot read the feed's checkpoint: ${errorMessage(event.error)}` } })) },
      },
    },
    restoreWaiting: {
      after: { restoreRetry: { target: "restoring" } },
      on: { stop: { target: "stopped" } },
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
                    dequeued: context.dequeued + context.inFlight,
                    stats: { ...context.stats, published: context.stats.published + event.output.stored, publishedOffset: context.outbox[context.inFlight - 1]!.offset },
                    inFlight: 0,
                  })),
                },
                onError: { actions: assign({ error: ({ context, event }) => `feed ${context.feed.name}: publishing failed: ${errorMessage(event.error)}` }) },
              },
            },
          },
        },
        checkpoint: {
          initial: "idle",
          states: {
            idle: { after: { checkpointInterval: { guard: "checkpointing", target: "copying" } } },
            copying: {
              entry: "copyState",
              always: [{ guard: "nothingCopied", target: "idle" }, { target: "covering" }],
            },
            covering: { always: { guard: "outputStored", target: "saving" } },
            saving: {
              invoke: {
                src: "saveCheckpoint",
                input: ({ context }) => ({ feed: context.feed, plan: context.plan, bytes: context.pendingCheckpoint!.bytes, foldedLsn: context.pendingCheckpoint!.foldedLsn }),
                onDone: {
                  target: "idle",
                  actions: assign(({ context }) => ({
                    pendingCheckpoint: undefined,
                    stats: { ...context.stats, checkpoints: context.stats.checkpoints + 1, checkpointLsn: context.pendingCheckpoint!.foldedLsn, checkpointBytes: context.pendingCheckpoint!.bytes.length, checkpointError: undefined },
                  })),
                },
                // Not fatal: the feed goes on, and holds the WAL from the last checkpoint saved.
                onError: { target: "idle", actions: assign(({ context, event }) => ({ pendingCheckpoint: undefined, stats: { ...context.stats, checkpointError: `cannot save the feed's checkpoint: ${errorMessage(event.error)}` } })) },
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
