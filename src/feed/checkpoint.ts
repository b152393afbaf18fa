// Feed checkpoints: a materialized feed's operator state with the offset it
// covers, saved so that a restart (here, or on the node the feed moved to)
// loads it and folds the WAL on from the next record. Without one a stateful
// feed folds its WAL from the first record, which WAL compaction purges once
// ClickHouse holds it: a restart after compaction could not rebuild the state.
// With checkpoints the feed holds the WAL only from its last checkpoint on.
// The state is v8.serialize's copy of plain data (Maps and typed arrays,
// saved by each operator), so loading it gives the same floats in the same
// order: a restored feed's output equals an uninterrupted one's, bit for bit.
// A checkpoint is used only when it is of this feed (fingerprint), of these
// tables (columns, types, shard counts), and the feed's stream still holds
// the output its state produced; otherwise the feed folds the WAL from its
// start as before, saying why.
import { deserialize, serialize } from "node:v8";
import { TaggedError } from "../../protocols/tagged.js";
import type { FeedPlan } from "./model.js";
import { feedTables } from "./model.js";
import { encodeOffset } from "./offset.js";
import type { FeedOffset } from "./offset.js";
import { FeedRunner } from "./runner.js";
import type { SavedRunner } from "./runner.js";

/** A checkpoint that cannot be used: the feed folds its WAL from the start instead. */
export class FeedCheckpointError extends TaggedError("FeedCheckpointError") {}

/** Bumped when what operators save changes shape: older checkpoints are then not loaded (the feed replays). */
export const CHECKPOINT_FORMAT = 1;

export interface FeedCheckpoint {
  readonly format: number;
  /** The feed's fingerprint. */
  readonly feed: string;
  /** The feed's tables as the state saw them (tableSignature). */
  readonly tables: string;
  /** Highest WAL LSN folded: the reader goes on from the next. */
  readonly foldedLsn: number;
  /** Offset of the newest output the folded records produced (undefined: none); the stream must hold it. */
  readonly outputTo: FeedOffset | undefined;
  readonly runner: SavedRunner;
}

/** Columns, types and shard counts of the feed's tables: a state saved under other ones does not fit. */
export const tableSignature = (plan: FeedPlan): string => JSON.stringify(feedTables(plan).map((t) => [t.name, t.shards, t.columns.map((c) => [c.name, c.type])]));

/** The runner's state now, as bytes (a copy: the runner may go on folding at once). */
export function encodeCheckpoint(runner: FeedRunner, foldedLsn: number, outputTo: FeedOffset | undefined): Uint8Array {
  const c: FeedCheckpoint = { format: CHECKPOINT_FORMAT, feed: runner.plan.fingerprint, tables: tableSignature(runner.plan), foldedLsn, outputTo, runner: runner.save() };
  return serialize(c);
}

/** Reads a checkpoint of `plan`; throws FeedCheckpointError naming what does not match. */
export function decodeCheckpoint(plan: FeedPlan, bytes: Uint8Array): FeedCheckpoint {
  let c: FeedCheckpoint;
  try {
    c = deserialize(bytes) as FeedCheckpoint;
  } catch (e) {
    throw new FeedCheckpointError(`the checkpoint (${bytes.length} bytes) does not decode: ${(e as Error).message}`);
  }
  if (typeof c !== "object" || c === null || c.format !== CHECKPOINT_FORMAT) throw new FeedCheckpointError(`the checkpoint is of format ${String((c as { format?: unknown } | null)?.format)}, this node reads format ${CHECKPOINT_FORMAT}`);
  if (c.feed !== plan.fingerprint) throw new FeedCheckpointError(`the checkpoint is of feed ${c.feed}, not of this feed (${plan.fingerprint})`);
  if (c.tables !== tableSignature(plan)) throw new FeedCheckpointError(`the checkpoint was taken with the tables ${c.tables}; they are now ${tableSignature(plan)}`);
  if (!Number.isSafeInteger(c.foldedLsn) || c.foldedLsn < 0) throw new FeedCheckpointError(`the checkpoint's folded LSN ${String(c.foldedLsn)} is not an LSN`);
  return c;
}

/**
 * The runner a restarted feed goes on with: `c`'s state, sending only what
 * `published` (the stream's last message) does not cover. Throws
 * FeedCheckpointError when the stream lacks output the state already produced
 * (purged by hand, or the stream was made anew): going on would leave it out.
 */
export function restoreRunner(plan: FeedPlan, c: FeedCheckpoint, published: FeedOffset | undefined): FeedRunner {
  if (c.outputTo !== undefined) {
    const short = Object.entries(c.outputTo.lsn).find(([k, v]) => (published?.lsn[k] ?? 0) < v);
    if (short !== undefined) {
      throw new FeedCheckpointError(`the checkpoint's output reaches ${encodeOffset(c.outputTo)} (shard ${short[0]} at LSN ${short[1]}) but the feed's stream ends ${published === undefined ? "empty" : `at LSN ${published.lsn[short[0]] ?? 0} of that shard`}`);
    }
  }
  const runner = new FeedRunner(plan, published);
  try {
    runner.load(c.runner);
  } catch (e) {
    throw new FeedCheckpointError((e as Error).message);
  }
  return runner;
}
