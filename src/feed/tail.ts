// Where a materialized feed's output stands on its subject, for fencing its
// writers: every message has a place in the output order (the highest LSN its
// offset covers: one update per WAL record, so two writers of the same feed
// make the same update at the same place; a snapshot comes after the update of
// the record it was taken at, and writers take snapshots on timers of their
// own). A writer knows the subject's last message (its stream sequence and
// place) and publishes the first message of a round, and every snapshot, with
// that sequence expected; when the stream says another writer wrote since, it
// reads the tail again and publishes only what lies beyond it.
import type { FeedOffset } from "./offset.js";
import type { FeedBatch } from "./runner.js";

/** The last message on a feed's subject as a writer knows it. */
export interface FeedTail {
  /** Its stream sequence (0: the subject is empty). */
  readonly seq: number;
  /** Its place in the output order (-1: none). */
  readonly place: number;
}

export const EMPTY_TAIL: FeedTail = { seq: 0, place: -1 };

/** The highest LSN `offset` covers. */
export const offsetLsn = (offset: FeedOffset): number => Math.max(0, ...Object.values(offset.lsn));

/** A message's place in the feed's output order. */
export function outputPlace(kind: FeedBatch["kind"], offset: FeedOffset): number {
  return 2 * offsetLsn(offset) + (kind === "snapshot" ? 1 : 0);
}

/** Whether the subject already holds `b` or something after it (another writer published it). */
export const coveredBy = (tail: FeedTail, b: Pick<FeedBatch, "kind" | "offset">): boolean => outputPlace(b.kind, b.offset) <= tail.place;
