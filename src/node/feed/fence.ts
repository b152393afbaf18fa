// The fenced publish of a materialized feed's messages (issue 14). Each message
// carries its publisher's id and is stored only if the subject's last sequence
// is the one this publisher last saw (JetStream optimistic concurrency), so
// whichever owner published last owns the subject: the other's next publish is
// refused by the server, not filtered by the duplicate window. One message at
// a time: the next expectation is the previous message's PubAck sequence (the
// stream is shared with the tenant's other feeds, so it cannot be predicted).
import { FeedFencedError, WrongLastSequenceError } from "../../feed/index.js";

/** The last message of the feed's subject as the stream holds it. */
export interface SubjectHead {
  readonly seq: number;
  readonly publisher: string | undefined;
  readonly offset: string | undefined;
}

/** The feed's subject (the runtime gives JetStream, unit tests a fake). */
export interface FeedSubjectPort<M> {
  /**
   * Publishes `m`; with `expectSeq` JetStream stores it only if the subject's
   * last sequence is `expectSeq` and otherwise rejects with
   * WrongLastSequenceError. Resolves to the PubAck: the stored sequence (of
   * the earlier copy when `duplicate`, the message id seen in the window).
   */
  send(m: M, expectSeq: number | undefined): Promise<{ seq: number; duplicate: boolean }>;
  /** The subject's last message (undefined: the subject is empty). */
  head(): Promise<SubjectHead | undefined>;
}

export interface FencedMessage<M> {
  readonly message: M;
  /** Its offset token (how a lost ack's message is recognized at the head). */
  readonly offset: string;
}

/** Whether a publish error may be a message stored whose ack never came (then the head says). */
export type AckUnknown = (e: unknown) => boolean;

/** Lost acks of one message resolved at most this many times before its error ends the publish. */
const MAX_RESYNCS = 3;

/**
 * Publishes `messages` in order, fenced, from `lastSeq` (the subject's last
 * sequence this publisher knows); resolves to the subject's sequence after
 * the last one. A refusal (or a duplicate, or an unknown outcome) is resolved
 * by reading the subject's head: this publisher's own message there was a
 * lost ack (resync and go on, the message stored once); anyone else's means
 * the feed was published elsewhere since, and FeedFencedError ends the publish
 * before anything more is sent. `fenced: false` (tests only, the negative
 * control) publishes with no expectation, as before the fence. `signal`:
 * aborted when the feed stops, which ends the publish before the next message.
 */
export async function publishFenced<M>(port: FeedSubjectPort<M>, messages: readonly FencedMessage<M>[], o: { readonly lastSeq: number; readonly publisher: string; readonly fenced: boolean; readonly ackUnknown: AckUnknown; readonly signal?: AbortSignal }): Promise<number> {
  let seq = o.lastSeq;
  for (const m of messages) {
    // A feed stopped (moved, removed) sends nothing more of the batches it had in hand.
    if (o.signal?.aborted === true) throw new Error(`publisher ${o.publisher} stopped after stream sequence ${seq}`);
    for (let resyncs = 0; ; resyncs++) {
      let refusal: unknown;
      try {
        const ack = await port.send(m.message, o.fenced ? seq : undefined);
        if (!o.fenced) {
          seq = Math.max(seq, ack.seq);
          break;
        }
        // Deduplicated: an identical message is stored, maybe by another owner and maybe not last; the head says whose.
        if (!ack.duplicate) {
          seq = ack.seq;
          break;
        }
        refusal = new Error(`duplicate of stream sequence ${ack.seq}`);
      } catch (e) {
        if (!o.fenced || !(e instanceof WrongLastSequenceError || o.ackUnknown(e)) || resyncs >= MAX_RESYNCS) throw e;
        refusal = e;
      }
      const head = await port.head();
      const own = head !== undefined && head.publisher === o.publisher;
      // Our own message is last: a lost ack. Stored already if it is this one; else this one goes again after it.
      if (own && head.offset === m.offset) {
        seq = head.seq;
        break;
      }
      // An empty subject we never published to: a timed-out first message was not stored, send it again.
      const notStored = own || (head === undefined && seq === 0 && !(refusal instanceof WrongLastSequenceError));
      if (notStored && resyncs < MAX_RESYNCS) {
        seq = head?.seq ?? 0;
        continue;
      }
      if (notStored) throw refusal;
      const fence = { publisher: head?.publisher ?? "", seq: head?.seq ?? 0, offset: head?.offset };
      throw new FeedFencedError(`the subject's last message (sequence ${fence.seq}, publisher ${fence.publisher || "unknown"}) is not this publisher's (${o.publisher}, which expected sequence ${seq}): the feed was published elsewhere since; this publisher stops (${(refusal as Error).message})`, fence);
    }
  }
  return seq;
}
