// The fenced publish of feed output (src/feed/fence.ts) against a fake feed
// subject that does what JetStream does with it: a shared stream sequence,
// message-id deduplication (which the test can make forget, as the window
// passing would), and the expected-last-subject-sequence check. A stale
// writer stores nothing twice even once deduplication forgot (negative
// control: the same writer with the check ignored stores duplicates); two
// writers at once, each with snapshots of its own, leave places that only
// grow and every update once (with snapshots pipelined like updates, tried
// once by hand, 1 of the 50 interleavings stored one out of order).
// A message too large to send stops the call before anything is sent
// (negative control: without the check, the later updates of its round are
// stored and the subject has a hole, which the writer then names).
import { describe, expect, it } from "vitest";
import { EMPTY_TAIL, FeedFenceError, FeedMessageTooLargeError, ROUND_LIMIT_MS, outputPlace, placeAtOrBefore, publishFenced } from "../../src/feed/index.js";
import type { FeedBatch, FeedSubjectIO, FeedTail, Place } from "../../src/feed/index.js";

class Refused extends Error {}

const batch = (kind: FeedBatch["kind"], lsn: number): FeedBatch => ({ kind, offset: { feed: "f", lsn: { "trades/0": lsn } }, table: undefined as never });
const updates = (from: number, to: number): FeedBatch[] => Array.from({ length: to - from + 1 }, (_, k) => batch("update", from + k));
const turn = () => new Promise((r) => setImmediate(r));

type Pending = { b: FeedBatch; expectSeq: number | undefined; ignoreExpected: boolean; done: (v: { seq: number; duplicate: boolean } | Refused) => void };

/**
 * One feed subject in a stream other subjects also write (every message skips
 * a few sequences). Each io() is a connection: its messages reach the server
 * in order, but between two of them another connection's may come (when the
 * server gets to a message and from which connection are drawn from `seed`).
 */
class FakeSubject {
  readonly stored: { seq: number; place: Place; id: string }[] = [];
  private seq = 0;
  private ids = new Map<string, number>();
  private readonly conns: Pending[][] = [];
  private rnd: number;
  /** The writers' clock (ms); a connection's `slowMs` advances it by that much per message served. */
  clock = 0;

  constructor(seed = 1) {
    this.rnd = seed;
  }

  /** The deduplication window passed: every id is forgotten. */
  forget(): void {
    this.ids.clear();
  }

  /** `tooLarge`: the update at that LSN cannot be sent (the client refuses it at once, as NATS does over max_payload); `checked`: the writer is told so up front. */
  io(o: { ignoreExpected?: boolean; slowMs?: number; tooLarge?: number; checked?: boolean } = {}): FeedSubjectIO {
    const queue: Pending[] = [];
    this.conns.push(queue);
    const big = (b: FeedBatch): boolean => Object.values(b.offset.lsn)[0] === o.tooLarge;
    return {
      now: () => this.clock,
      ...(o.checked === true
        ? {
            check: (b: FeedBatch) => {
              if (big(b)) throw new FeedMessageTooLargeError(`the update at LSN ${o.tooLarge} is over max_payload`);
            },
          }
        : {}),
      send: (b, expectSeq) =>
        new Promise((resolve, reject) => {
          if (big(b)) return reject(new Error("MAX_PAYLOAD_EXCEEDED"));
          queue.push({
            b,
            expectSeq,
            ignoreExpected: o.ignoreExpected === true,
            done: (v) => {
              this.clock += o.slowMs ?? 0;
              if (v instanceof Refused) reject(v);
              else resolve(v);
            },
          });
          // The server gets to it 0-3 turns later: meanwhile other messages queue up, on this connection and others.
          void this.later(this.draw() % 4).then(() => this.serveOne());
        }),
      readTail: async () => {
        await turn();
        const last = this.stored.at(-1);
        return last === undefined ? EMPTY_TAIL : { seq: last.seq, place: last.place };
      },
      refused: (e) => e instanceof Refused,
    };
  }

  private draw(): number {
    this.rnd = (this.rnd * 1103515245 + 12345) % 2 ** 31;
    return this.rnd >>> 8;
  }

  private async later(turns: number): Promise<void> {
    for (let k = 0; k < turns; k++) await turn();
  }

  /** The server takes the next message of a connection drawn at random. */
  private serveOne(): void {
    const ready = this.conns.filter((q) => q.length > 0);
    if (ready.length === 0) return;
    const m = ready[this.draw() % ready.length]!.shift()!;
    const part = m.b.offset.part;
    const id = part === undefined ? `${m.b.kind}:${Object.values(m.b.offset.lsn)[0]}` : `${m.b.kind}:${part.lsn}.${part.rows}`;
    const dup = this.ids.get(id);
    if (dup !== undefined) return m.done({ seq: dup, duplicate: true });
    if (!m.ignoreExpected && m.expectSeq !== undefined && m.expectSeq !== (this.stored.at(-1)?.seq ?? 0)) return m.done(new Refused("wrong last sequence"));
    this.seq += 3;
    this.stored.push({ seq: this.seq, place: outputPlace(m.b.kind, m.b.offset), id });
    this.ids.set(id, this.seq);
    m.done({ seq: this.seq, duplicate: false });
  }

  /** The stored messages' places (whole records: the first number). */
  places(): number[] {
    return this.stored.map((m) => m.place[0]);
  }
}

const growing = (xs: readonly number[]): boolean => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

describe("feed fence", () => {
  it("feed fence - one writer stores every batch once, in order, round after round", async () => {
    const s = new FakeSubject();
    const w = { tail: EMPTY_TAIL as FeedTail };
    expect(await publishFenced(updates(1, 5), w, s.io())).toBe(5);
    expect(await publishFenced([...updates(6, 7), batch("snapshot", 7), ...updates(8, 9)], w, s.io())).toBe(5);
    expect(s.places()).toEqual([2, 4, 6, 8, 10, 12, 14, 15, 16, 18]);
    expect(w.tail).toEqual({ seq: s.stored.at(-1)!.seq, place: [18, 0] });
  });

  /** Writer `stale` stored 1-3; another writer, from the tail then, stored 4-8; deduplication forgot; `stale` comes back with 4-8, then 9-10. */
  async function staleWriter(ignoreExpected: boolean): Promise<{ subject: FakeSubject; stored: number }> {
    const s = new FakeSubject();
    const stale = { tail: EMPTY_TAIL as FeedTail };
    await publishFenced(updates(1, 3), stale, s.io());
    const other = { tail: await s.io().readTail() };
    await publishFenced(updates(4, 8), other, s.io());
    s.forget();
    const stored = (await publishFenced(updates(4, 8), stale, s.io({ ignoreExpected }))) + (await publishFenced(updates(9, 10), stale, s.io({ ignoreExpected })));
    return { subject: s, stored };
  }

  it("feed fence - a stale writer stores none of what another stored meanwhile, even after deduplication forgot it, and goes on after it", async () => {
    const { subject, stored } = await staleWriter(false);
    expect(stored).toBe(2);
    expect(subject.places()).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
  });

  it("feed fence, negative control - the same writer with the expected sequence ignored stores the other's messages again", async () => {
    const { subject } = await staleWriter(true);
    expect(growing(subject.places())).toBe(false);
    expect(new Set(subject.stored.map((m) => m.id)).size).toBeLessThan(subject.stored.length);
  });

  it("feed fence - a round acknowledged later than ROUND_LIMIT_MS stops the writer (its updates may have landed after the deduplication window); a single fenced message may take as long as it takes", async () => {
    const s = new FakeSubject();
    const w = { tail: EMPTY_TAIL as FeedTail };
    expect(await publishFenced(updates(1, 1), w, s.io({ slowMs: 2 * ROUND_LIMIT_MS }))).toBe(1);
    await expect(publishFenced(updates(2, 4), w, s.io({ slowMs: ROUND_LIMIT_MS / 2 }))).rejects.toThrow(FeedFenceError);
    await expect(publishFenced(updates(5, 7), w, s.io({ slowMs: ROUND_LIMIT_MS / 2 }))).rejects.toThrow(/took \d+ ms to be acknowledged, more than 60000 ms: .*restart the feed/);
  });

  it("feed fence - a duplicate that the subject's last message does not cover stops the writer instead of sending it again and again", async () => {
    let sends = 0;
    const io: FeedSubjectIO = {
      now: () => 0,
      send: async () => (sends++, { seq: 1, duplicate: true }),
      readTail: async () => EMPTY_TAIL,
      refused: () => false,
    };
    await expect(publishFenced(updates(1, 3), { tail: EMPTY_TAIL }, io)).rejects.toThrow(/took the feed message at place 2 for a duplicate, but the subject's last message is at place -1/);
    expect(sends).toBe(1);
  });

  it("feed fence - two writers at once, each with snapshots of its own: places only grow, every update is stored once", async () => {
    for (let seed = 0; seed < 50; seed++) {
      const s = new FakeSubject(seed + 1);
      // Each writer's rounds as its own timer would cut them (sizes vary with the seed), snapshots at different records.
      const rounds = (snapAt: number, size: number): FeedBatch[][] => {
        const all = updates(1, 30).flatMap((b) => (Object.values(b.offset.lsn)[0] === snapAt ? [b, batch("snapshot", snapAt)] : [b]));
        const out: FeedBatch[][] = [];
        for (let i = 0; i < all.length; i += size) out.push(all.slice(i, i + size));
        return out;
      };
      const run = async (rs: FeedBatch[][], delay: number) => {
        const w = { tail: EMPTY_TAIL as FeedTail };
        for (const r of rs) {
          for (let k = 0; k < delay; k++) await turn();
          await publishFenced(r, w, s.io());
        }
      };
      await Promise.all([run(rounds(7 + (seed % 5), 1 + (seed % 4)), seed % 3), run(rounds(12 + (seed % 7), 2 + (seed % 3)), (seed + 1) % 2)]);
      expect(growing(s.places())).toBe(true);
      const ups = s.stored.filter((m) => m.id.startsWith("update:")).map((m) => m.id);
      expect(ups).toEqual(updates(1, 30).map((b) => `update:${Object.values(b.offset.lsn)[0]}`));
    }
  });

  it("feed fence - two writers at once, each record's update in parts: every part is stored once, in order", async () => {
    // Record L's update as three messages: two parts (the position before L, rows 10 and 20 sent) and its last part.
    const parted = (from: number, to: number): FeedBatch[] =>
      updates(from, to).flatMap((b) => {
        const lsn = Object.values(b.offset.lsn)[0]!;
        const part = (rows: number): FeedBatch => ({ ...b, offset: { feed: "f", lsn: { "trades/0": lsn - 1 }, part: { lsn, rows } } });
        return [part(10), part(20), b];
      });
    for (let seed = 0; seed < 50; seed++) {
      const s = new FakeSubject(seed + 1);
      const all = parted(1, 12);
      const run = async (size: number, delay: number) => {
        const w = { tail: EMPTY_TAIL as FeedTail };
        for (let i = 0; i < all.length; i += size) {
          for (let k = 0; k < delay; k++) await turn();
          await publishFenced(all.slice(i, i + size), w, s.io());
        }
      };
      await Promise.all([run(1 + (seed % 4), seed % 3), run(2 + (seed % 5), (seed + 1) % 2)]);
      const places = s.stored.map((m) => m.place);
      for (let i = 1; i < places.length; i++) expect(placeAtOrBefore(places[i]!, places[i - 1]!), `seed ${seed}: message ${i} after ${i - 1}`).toBe(false);
      expect(s.stored.map((m) => m.id)).toEqual(all.map((b) => (b.offset.part === undefined ? `update:${Object.values(b.offset.lsn)[0]}` : `update:${b.offset.part.lsn}.${b.offset.part.rows}`)));
    }
  });

  it("feed fence - a message too large to send stops the call before anything of it is sent: no later update is stored past it", async () => {
    const s = new FakeSubject();
    const w = { tail: EMPTY_TAIL as FeedTail };
    expect(await publishFenced(updates(1, 2), w, s.io())).toBe(2);
    await expect(publishFenced(updates(3, 8), w, s.io({ tooLarge: 5, checked: true }))).rejects.toThrow(FeedMessageTooLargeError);
    expect(s.places()).toEqual([2, 4]);
    expect(w.tail.place).toEqual([4, 0]);
  });

  it("feed fence, negative control - without the check the updates after it are stored, the subject has a hole, and the writer names it", async () => {
    const s = new FakeSubject();
    const w = { tail: EMPTY_TAIL as FeedTail };
    expect(await publishFenced(updates(1, 2), w, s.io())).toBe(2);
    await expect(publishFenced(updates(3, 8), w, s.io({ tooLarge: 5 }))).rejects.toThrow(/refused the feed update at place 10 \(MAX_PAYLOAD_EXCEEDED\) but stored the one at place 12 after it: the subject has a hole there/);
    expect(s.places()).toEqual([2, 4, 6, 8, 12, 14, 16]);
  });
});
