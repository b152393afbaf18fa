// The fence of a materialized feed's output (issue 14): a feed publishes each
// message only if its subject's last sequence is the one it last saw, so a
// former owner that resumes after the feed moved is refused by JetStream
// itself. These are the typed outcomes the publisher and the feed machine share.
import { TaggedError } from "../../protocols/tagged.js";

/** JetStream refused a publish: the subject's last sequence was not the one expected (code 10071). */
export class WrongLastSequenceError extends TaggedError("WrongLastSequenceError") {}

/** Who holds the head of a fenced feed's subject when it was fenced. */
export interface FeedFence {
  /** Publisher id of the subject's last message ("" when it has none). */
  readonly publisher: string;
  /** Its stream sequence (0: the subject is empty). */
  readonly seq: number;
  /** Its offset token (undefined when it has none). */
  readonly offset: string | undefined;
}

/** Another publisher stored a message on the feed's subject since this one's last: this one must not publish again. */
export class FeedFencedError extends TaggedError("FeedFencedError") {
  constructor(
    message: string,
    readonly fence: FeedFence,
  ) {
    super(message);
  }
}

/** A FeedFencedError by instance or by tag (an error crossing an actor boundary keeps its tag). */
export const isFeedFenced = (e: unknown): e is FeedFencedError => e instanceof FeedFencedError || (e as { _tag?: unknown } | null)?._tag === "FeedFencedError";
