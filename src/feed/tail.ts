// Where a materialized feed's output stands on its subject, for fencing its
// writers: every message has a place in the output order (the highest LSN its
// offset covers: one update per WAL record, so two writers of the same feed
// make the same update at the same place; a snapshot comes after the update of
// the record it was taken at, and writers take snapshots on timers of their
// own). A writer knows the subject's last message (its stream sequence and
// place) and publishes the first message of a round, and every snapshot, with
// that sequence expected; when the stream says another writer wrote since, it
// reads the tail again and publishes only what lies beyond it. The parts of a
// record's output cut over several messages (./parts.ts) come after whatever
// came before the record and before its last part, in the order of the rows
// they end at.
import type { FeedOffset } from "./offset.js";
import type { FeedBatch } from "./runner.js";

/** The last message on a feed's subject as a writer knows it. */
export interface FeedTail {
  /** Its stream sequence (0: the subject is empty). */
  readonly seq: number;
  /** Its place in the output order ([-1, 0]: none). */
  readonly place: Place;
}

/** A place in the output order: compared by the first number, then the second. */
export type Place = readonly [major: number, minor: number];

export const EMPTY_TAIL: FeedTail = { seq: 0, place: [-1, 0] };

/** The highest LSN `offset` covers. */
export const offsetLsn = (offset: FeedOffset): number => Math.max(0, ...Object.values(offset.lsn));

/**
 * A message's place in the feed's output order: 2L for the update of record
 * L, 2L + 1 for a snapshot taken at L, and for a part of record L's update
 * 2L - 0.5 (after a snapshot at L - 1), for a part of the snapshot at L
 * 2L + 0.5, with the rows it ends at.
 */
export function outputPlace(kind: FeedBatch["kind"], offset: FeedOffset): Place {
  if (offset.part !== undefined) return [2 * offset.part.lsn + (offset.part.snapshot === true ? 0.5 : -0.5), offset.part.rows];
  return [2 * offsetLsn(offset) + (kind === "snapshot" ? 1 : 0), 0];
}

/** Whether place `a` is at or before `b`. */
export const placeAtOrBefore = (a: Place, b: Place): boolean => a[0] < b[0] || (a[0] === b[0] && a[1] <= b[1]);

/** A place as text (for errors). */
export const placeText = (p: Place): string => (p[1] === 0 ? String(p[0]) : `${p[0]}+${p[1]} rows`);

/** Whether the subject already holds `b` or something after it (another writer published it). */
export const coveredBy = (tail: FeedTail, b: Pick<FeedBatch, "kind" | "offset">): boolean => placeAtOrBefore(outputPlace(b.kind, b.offset), tail.place);
