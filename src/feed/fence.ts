// The fenced publish of a materialized feed's output (see ./tail.ts), with
// the stream behind an interface so the rounds can be tested without NATS:
// the first message of a round and every snapshot expect the subject's last
// sequence to be the writer's tail; when another writer wrote since, the tail
// is read again and only batches beyond it are sent; the updates after a
// fenced message follow pipelined (two writers' updates are the same messages
// in the same order, and the stream's message-id deduplication stores each
// once while both run; fencing each one, a round trip apiece, a feed fell
// behind its WAL at 100 k ticks/s). A snapshot, taken on each writer's own
// timer, is never sent unfenced: it could land among the other's updates.
// Not fenced: the pipelined updates of a round, if they reach the server more
// than the deduplication window after the other writer stored them (the
// writer stopped, or its connection stalled, in between). A round whose acks
// took longer than ROUND_LIMIT_MS, a sign of that, stops the writer with
// FeedFenceError instead of letting it take such a stray update for the
// subject's tail and go on from there; so does a duplicate the subject's tail
// does not cover (it would otherwise be sent again and again).
// Holes: every message of a call is checked before any is sent (`check`: one
// too large for a NATS message would be refused while the updates after it,
// pipelined, were stored; a restarted feed goes on after the subject's last
// message and would never send it). A pipelined update the stream refuses for
// another reason while a later one was stored stops the writer with
// FeedFenceError naming the hole (not closed: see the README).
import { TaggedError } from "../../protocols/tagged.js";
import type { FeedBatch } from "./runner.js";
import { coveredBy, outputPlace, placeText } from "./tail.js";
import type { FeedTail } from "./tail.js";

/** The writer cannot tell where the subject stands any more: it stops (the feed fails, naming this) instead of publishing on. */
export class FeedFenceError extends TaggedError("FeedFenceError") {}

/** A feed message that cannot be sent at all (over the server's max_payload): the feed stops before its round, so no later message is stored past it. */
export class FeedMessageTooLargeError extends TaggedError("FeedMessageTooLargeError") {}

/** The feed stream's deduplication window (Nats-Msg-Id): what stores two writers' identical updates once. */
export const FEED_DEDUP_WINDOW_MS = 120_000;

/** Half the deduplication window: a round acknowledged later may have had updates land after it. */
export const ROUND_LIMIT_MS = FEED_DEDUP_WINDOW_MS / 2;

/** The feed subject as a writer sees it. */
export interface FeedSubjectIO {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Appends `b`; with `expectSeq`, only if the subject's last message has that sequence (else rejects so that `refused` is true). */
  send(b: FeedBatch, expectSeq?: number): Promise<{ readonly seq: number; readonly duplicate: boolean }>;
  /** The subject's last message now. */
  readTail(): Promise<FeedTail>;
  /** Whether `e` is the stream's refusal of an expected sequence (another writer wrote since). */
  refused(e: unknown): boolean;
  /** Throws (FeedMessageTooLargeError) when `b` could never be sent; called for every batch before any is sent. */
  check?(b: FeedBatch): void;
}

/** Publishes `batches` in order past `w.tail` (kept up to date); returns how many this writer stored. */
export async function publishFenced(batches: readonly FeedBatch[], w: { tail: FeedTail }, io: FeedSubjectIO): Promise<number> {
  let stored = 0;
  const tailAfter = async (b: FeedBatch, ack: { seq: number; duplicate: boolean }): Promise<void> => {
    // A duplicate (the same message stored by another writer within the window) stores nothing: read where the subject stands.
    if (ack.duplicate) {
      w.tail = await io.readTail();
      if (!coveredBy(w.tail, b))
        throw new FeedFenceError(
          `the stream took the feed message at place ${placeText(outputPlace(b.kind, b.offset))} for a duplicate, but the subject's last message is at place ${placeText(w.tail.place)}: the subject is not in the order the feed writes it (a message stored out of place); the feed stops instead of sending it again: look at the subject's last messages, then restart the feed`,
        );
    } else {
      w.tail = { seq: ack.seq, place: outputPlace(b.kind, b.offset) };
      stored++;
    }
  };
  if (io.check !== undefined) for (const b of batches) if (!coveredBy(w.tail, b)) io.check(b);
  let i = 0;
  while (i < batches.length) {
    const first = batches[i]!;
    if (coveredBy(w.tail, first)) {
      i++;
      continue;
    }
    const sentAt = io.now();
    try {
      await tailAfter(first, await io.send(first, w.tail.seq));
    } catch (e) {
      if (!io.refused(e)) throw e;
      w.tail = await io.readTail();
      continue;
    }
    // The updates after it, up to the next snapshot (which is fenced on its own).
    let j = i + 1;
    while (j < batches.length && batches[j]!.kind === "update") j++;
    const rest = batches.slice(i + 1, j).filter((b) => !coveredBy(w.tail, b));
    i = j;
    if (rest.length === 0) continue;
    const settled = await Promise.allSettled(rest.map((b) => io.send(b)));
    const failed = settled.findIndex((s) => s.status === "rejected");
    if (failed >= 0) {
      const why = (settled[failed] as PromiseRejectedResult).reason as unknown;
      const later = settled.slice(failed + 1).findIndex((s) => s.status === "fulfilled" && !s.value.duplicate);
      if (later < 0) throw why;
      throw new FeedFenceError(
        `the stream refused the feed update at place ${placeText(outputPlace("update", rest[failed]!.offset))} (${why instanceof Error ? why.message : String(why)}) but stored the one at place ${placeText(outputPlace("update", rest[failed + 1 + later]!.offset))} after it: the subject has a hole there; the feed stops: a restarted feed goes on after the subject's last message and would not fill it, so redefine the feed under a new name to rebuild its stream`,
        { cause: why },
      );
    }
    const acks = settled.map((s) => (s as PromiseFulfilledResult<{ readonly seq: number; readonly duplicate: boolean }>).value);
    const took = io.now() - sentAt;
    if (took > ROUND_LIMIT_MS)
      throw new FeedFenceError(
        `a publish round of the feed took ${Math.round(took)} ms to be acknowledged, more than ${ROUND_LIMIT_MS} ms: some of its updates may have reached the stream after its deduplication window, out of place; the feed stops instead of going on from them: check the subject's last messages for a stray update, then restart the feed`,
      );
    stored += acks.slice(0, -1).filter((a) => !a.duplicate).length;
    await tailAfter(rest.at(-1)!, acks.at(-1)!);
  }
  return stored;
}
