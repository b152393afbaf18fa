// The fenced publish of a materialized feed (src/node/feed/fence.ts) against a
// fake subject that keeps JetStream's rules: one sequence for the whole stream
// (other feeds interleave), an expected last subject sequence refused with
// WrongLastSequenceError, msgID dedup. Checks: a publisher follows its own
// PubAcks; a stale owner is refused before anything is stored and the error
// names the head's publisher; a lost ack is resolved from the head (own
// message: stored once, go on); a duplicate of another owner's message fences
// too; negative control: unfenced, the stale owner's message is stored.
import { describe, expect, it } from "vitest";
import { FeedFencedError, WrongLastSequenceError } from "../../src/feed/index.js";
import { publishFenced } from "../../src/node/feed/fence.js";
import type { FeedSubjectPort, FencedMessage } from "../../src/node/feed/fence.js";

interface Msg {
  readonly subject: string;
  readonly publisher: string;
  readonly offset: string;
  readonly msgID: string;
}

class LostAck extends Error {}

/** A stream of several subjects; `loseAckOf` stores the message with that offset and throws LostAck instead of acking. */
class FakeStream {
  readonly stored: (Msg & { seq: number })[] = [];
  loseAckOf: string | undefined;
  add(m: Msg): number {
    this.stored.push({ ...m, seq: this.stored.length + 1 });
    return this.stored.length;
  }
  port(subject: string): FeedSubjectPort<Msg> {
    return {
      send: async (m, expectSeq) => {
        const dup = this.stored.find((x) => x.msgID === m.msgID);
        if (dup !== undefined) return { seq: dup.seq, duplicate: true };
        const last = this.stored.filter((x) => x.subject === subject).at(-1)?.seq ?? 0;
        if (expectSeq !== undefined && expectSeq !== last) throw new WrongLastSequenceError(`wrong last sequence: ${last}`);
        const seq = this.add(m);
        if (this.loseAckOf === m.offset) {
          this.loseAckOf = undefined;
          throw new LostAck("timeout");
        }
        return { seq, duplicate: false };
      },
      head: async () => {
        const h = this.stored.filter((x) => x.subject === subject).at(-1);
        return h === undefined ? undefined : { seq: h.seq, publisher: h.publisher, offset: h.offset };
      },
    };
  }
}

const SUBJ = "px.t.feed.f";
const msgs = (publisher: string, from: number, to: number): FencedMessage<Msg>[] =>
  Array.from({ length: to - from }, (_, i) => {
    const offset = `o${from + i}`;
    return { offset, message: { subject: SUBJ, publisher, offset, msgID: `f:u:${from + i}` } };
  });
const opts = (publisher: string, lastSeq: number, fenced = true) => ({ publisher, lastSeq, fenced, ackUnknown: (e: unknown) => e instanceof LostAck });
const offsetsOf = (s: FakeStream) => s.stored.filter((x) => x.subject === SUBJ).map((x) => x.offset);

describe("feed fence - publishFenced", () => {
  it("feed fence - each publish expects the previous PubAck's sequence, with other subjects interleaved", async () => {
    const s = new FakeStream();
    let seq = await publishFenced(s.port(SUBJ), msgs("A", 0, 3), opts("A", 0));
    s.add({ subject: "px.t.feed.other", publisher: "X", offset: "x", msgID: "x" });
    seq = await publishFenced(s.port(SUBJ), msgs("A", 3, 5), opts("A", seq));
    expect(seq).toBe(6);
    expect(offsetsOf(s)).toEqual(["o0", "o1", "o2", "o3", "o4"]);
  });

  it("feed fence - a stale owner is refused by the subject: nothing stored, FeedFencedError names the new owner", async () => {
    const s = new FakeStream();
    const aSeq = await publishFenced(s.port(SUBJ), msgs("A", 0, 3), opts("A", 0));
    // B took over from A's head and published o3, o4; A resumes with its held o3..o5 under other msgIDs (past the window).
    await publishFenced(s.port(SUBJ), msgs("B", 3, 5), opts("B", aSeq));
    const stale = msgs("A", 3, 6).map((m) => ({ ...m, message: { ...m.message, msgID: `${m.message.msgID}:again` } }));
    const err = await publishFenced(s.port(SUBJ), stale, opts("A", aSeq)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedFencedError);
    expect((err as FeedFencedError).fence).toEqual({ publisher: "B", seq: 5, offset: "o4" });
    expect(offsetsOf(s)).toEqual(["o0", "o1", "o2", "o3", "o4"]);
  });

  it("feed fence - a duplicate of another owner's message (inside the window) fences too", async () => {
    const s = new FakeStream();
    const aSeq = await publishFenced(s.port(SUBJ), msgs("A", 0, 2), opts("A", 0));
    await publishFenced(s.port(SUBJ), msgs("B", 2, 4), opts("B", aSeq));
    const err = await publishFenced(s.port(SUBJ), msgs("A", 2, 5), opts("A", aSeq)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedFencedError);
    expect(offsetsOf(s)).toEqual(["o0", "o1", "o2", "o3"]);
  });

  it("feed fence - a lost ack is resolved from the subject's head: own message, stored once, the publish goes on", async () => {
    const s = new FakeStream();
    s.loseAckOf = "o1";
    const seq = await publishFenced(s.port(SUBJ), msgs("A", 0, 4), opts("A", 0));
    expect(offsetsOf(s)).toEqual(["o0", "o1", "o2", "o3"]);
    expect(seq).toBe(4);
    // A stale known sequence whose head is this publisher's own earlier message (an ack lost before): resync, store once.
    const next = await publishFenced(s.port(SUBJ), msgs("A", 4, 6), opts("A", 3));
    expect(offsetsOf(s)).toEqual(["o0", "o1", "o2", "o3", "o4", "o5"]);
    expect(next).toBe(6);
  });

  it("feed fence - errors that are neither a refusal nor an unknown outcome pass through", async () => {
    const port: FeedSubjectPort<Msg> = { send: async () => Promise.reject(new Error("stream not found")), head: async () => undefined };
    await expect(publishFenced(port, msgs("A", 0, 1), opts("A", 0))).rejects.toThrow("stream not found");
  });

  it("feed fence - a stopped publisher (aborted signal) sends nothing more of its batches", async () => {
    const s = new FakeStream();
    const stop = new AbortController();
    const port = s.port(SUBJ);
    const stopping: FeedSubjectPort<Msg> = { send: async (m, e) => port.send(m, e).finally(() => m.offset === "o1" && stop.abort()), head: port.head };
    await expect(publishFenced(stopping, msgs("A", 0, 4), { ...opts("A", 0), signal: stop.signal })).rejects.toThrow(/stopped after stream sequence 2/);
    expect(offsetsOf(s)).toEqual(["o0", "o1"]);
  });

  it("negative control - unfenced, the stale owner's messages are stored after the new owner's", async () => {
    const s = new FakeStream();
    const aSeq = await publishFenced(s.port(SUBJ), msgs("A", 0, 3), opts("A", 0, false));
    await publishFenced(s.port(SUBJ), msgs("B", 3, 5), opts("B", aSeq, false));
    const stale = msgs("A", 3, 6).map((m) => ({ ...m, message: { ...m.message, msgID: `${m.message.msgID}:again` } }));
    await publishFenced(s.port(SUBJ), stale, opts("A", aSeq, false));
    expect(offsetsOf(s)).toEqual(["o0", "o1", "o2", "o3", "o4", "o3", "o4", "o5"]);
  });
});
