// Feed actor with fake IO: a fake WAL (the query fixture's records) and a
// fake stream (an array standing for PX_FEED_<tenant>). Checks: the published
// stream equals the feed's uninterrupted output; a restart recovers from the
// stream's last offset and continues with no gap and no duplicate (negative
// control: recovery that ignores the stream republishes and is caught);
// snapshots; a WAL consumer that breaks is reopened after a backoff (simulated
// clock) from the record after the last folded, and the stream still equals
// the uninterrupted output; lost WAL records and publish failures end in failed.
// Fence: publishes carry the subject's sequence (recovery, then each PubAck);
// an old owner refused because a new one published (FeedFencedError) goes to
// fenced, stops its WAL consumer and publishes nothing more, and the subject
// equals the uninterrupted output (negative control: the same race with an
// unfenced publish stores the old owner's stale updates after the new one's).
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromCallback, fromPromise, waitFor } from "xstate";
import { feedMachine } from "../../actors/feed.js";
import type { FeedEvent, FeedWalInput, LastPublished, LastPublishedInput, PublishInput } from "../../actors/feed.js";
import { FeedFencedError, FeedRunner, planFeed } from "../../src/feed/index.js";
import type { FeedBatch, FeedPlan } from "../../src/feed/index.js";
import { TENANT, workload } from "../query/fixture.js";

const w = workload(21, { records: 16, symbols: 5, rowsPerRecord: 12 });
const plan: FeedPlan = planFeed(TENANT, { query: { op: "rolling", table: "trades", window: "2s", aggregates: [{ fn: "vwap", column: "price" }, { fn: "ema", column: "price", alpha: 0.3 }] } }, (t) => w.specs.find((s) => s.name === t), () => ["trades", "quotes"]);
const text = (b: FeedBatch): string => JSON.stringify({ k: b.kind, o: b.offset.lsn, c: b.table.columns.map((c) => Array.from(c.data as ArrayLike<number>)) });

/** The WAL from `fromSeq`: the first `upTo` records, then caughtUp. */
const fakeWal = (upTo = w.records.length) =>
  fromCallback<FeedEvent, FeedWalInput>(({ input, sendBack }) => {
    const t = setTimeout(() => {
      const recs = w.records.slice(0, upTo).filter((r) => r.lsn >= input.fromSeq);
      for (let i = 0; i < recs.length; i += 5) sendBack({ type: "records", records: recs.slice(i, i + 5) });
      sendBack({ type: "caughtUp" });
    }, 0);
    return () => clearTimeout(t);
  });

function run(stream: FeedBatch[], o: { upTo?: number; recover?: boolean; publishFails?: boolean } = {}) {
  const machine = feedMachine.provide({
    actors: {
      lastPublished: fromPromise<LastPublished, LastPublishedInput>(async () => ({ offset: o.recover === false ? undefined : stream.at(-1)?.offset, seq: stream.length })),
      wal: fakeWal(o.upTo),
      publish: fromPromise<number, PublishInput>(async ({ input }) => {
        if (o.publishFails) throw new Error("stream PX_FEED_qt: no responders");
        stream.push(...input.batches);
        return stream.length;
      }),
    },
  });
  return createActor(machine, { input: { feed: { tenant: TENANT, name: "vwap" }, plan } }).start();
}

const uninterrupted = (): string[] => {
  const r = new FeedRunner(plan);
  return w.records.flatMap((rec) => {
    const b = r.push(rec);
    return b === undefined ? [] : [text(b)];
  });
};
const settled = (a: ReturnType<typeof run>) => waitFor(a, (s) => s.matches({ running: { phase: "live", output: "idle" } }) || s.matches("failed"), { timeout: 10_000 });

describe("feed actor", () => {
  it("feed actor - publishes the feed's output once, in order, and goes live when caught up", async () => {
    const stream: FeedBatch[] = [];
    const a = run(stream);
    const s = await settled(a);
    expect(s.matches({ running: { phase: "live" } })).toBe(true);
    expect(stream.map(text)).toEqual(uninterrupted());
    expect(s.context.stats.publishedOffset).toEqual(stream.at(-1)!.offset);
    a.stop();
  });

  it("feed actor - a restart recovers from the stream's last offset: no gap, no duplicate", async () => {
    const stream: FeedBatch[] = [];
    const first = run(stream, { upTo: 7 });
    await settled(first);
    first.stop(); // the process dies here
    const before = stream.length;
    expect(before).toBeGreaterThan(0);
    const second = run(stream);
    await settled(second);
    second.stop();
    expect(stream.map(text)).toEqual(uninterrupted());
  });

  it("negative control - recovery that ignores the stream republishes what it holds, and the check sees it", async () => {
    const stream: FeedBatch[] = [];
    const first = run(stream, { upTo: 7 });
    await settled(first);
    first.stop();
    const second = run(stream, { recover: false });
    await settled(second);
    second.stop();
    expect(stream.map(text)).not.toEqual(uninterrupted());
    expect(new Set(stream.map(text)).size).toBeLessThan(stream.length);
  });

  it("feed actor - snapshot on demand publishes the state after the updates it covers", async () => {
    const p = planFeed(TENANT, { query: { op: "lastBy", table: "quotes" } }, (t) => w.specs.find((s) => s.name === t), () => ["trades", "quotes"]);
    const stream: FeedBatch[] = [];
    const machine = feedMachine.provide({
      actors: { lastPublished: fromPromise<LastPublished, LastPublishedInput>(async () => ({ offset: undefined, seq: 0 })), wal: fakeWal(), publish: fromPromise<number, PublishInput>(async ({ input }) => stream.push(...input.batches)) },
    });
    const a = createActor(machine, { input: { feed: { tenant: TENANT, name: "quotes_last" }, plan: p } }).start();
    await settled(a);
    a.send({ type: "snapshot" });
    await waitFor(a, (s) => s.context.stats.snapshots === 1 && s.matches({ running: { output: "idle" } }));
    const snap = stream.at(-1)!;
    expect(snap.kind).toBe("snapshot");
    expect(snap.offset).toEqual(stream.at(-2)!.offset);
    expect(snap.table.symbols.length).toBe(new Set(w.ticks.filter((t) => t.table === "quotes").map((t) => t.sym)).size);
    a.stop();
  });

  it("feed actor - a failing WAL or stream ends in failed with the reason", async () => {
    const stream: FeedBatch[] = [];
    const s = await settled(run(stream, { publishFails: true }));
    expect(s.matches("failed")).toBe(true);
    expect(s.context.error).toMatch(/feed vwap: publishing failed: stream PX_FEED_qt: no responders/);
    const m = feedMachine.provide({
      actors: {
        lastPublished: fromPromise<LastPublished, LastPublishedInput>(async () => ({ offset: undefined, seq: 0 })),
        wal: fromCallback<FeedEvent, FeedWalInput>(({ sendBack }) => {
          const t = setTimeout(() => sendBack({ type: "walError", message: "records 1-4 of trades/0 are gone", fatal: true }), 0);
          return () => clearTimeout(t);
        }),
      },
    });
    const b = createActor(m, { input: { feed: { tenant: TENANT, name: "vwap" }, plan } }).start();
    const f = await waitFor(b, (x) => x.matches("failed"));
    expect(f.context.error).toBe("WAL consumer failed: records 1-4 of trades/0 are gone");
    b.stop();
  });

  /**
   * A feed whose WAL reader breaks after 5 records and is retried 7 times;
   * each reader delivers the fixture's records from its start + `skew` (0: a
   * real consumer; 1: one opened past the right place, the negative control).
   */
  async function retried(skew: number) {
    const clock = new SimulatedClock();
    const stream: FeedBatch[] = [];
    const starts: number[] = [];
    let wal: ((e: FeedEvent) => void) | undefined;
    const machine = feedMachine.provide({
      actors: {
        lastPublished: fromPromise<LastPublished, LastPublishedInput>(async () => ({ offset: undefined, seq: 0 })),
        wal: fromCallback<FeedEvent, FeedWalInput>(({ input, sendBack }) => {
          starts.push(input.fromSeq);
          wal = sendBack;
        }),
        publish: fromPromise<number, PublishInput>(async ({ input }) => stream.push(...input.batches)),
      },
    });
    const a = createActor(machine, { input: { feed: { tenant: TENANT, name: "vwap" }, plan }, clock }).start();
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    };
    const deliver = (from: number, to: number): void => wal!({ type: "records", records: w.records.slice(from, to).filter((r) => r.lsn >= starts.at(-1)! + skew) });
    const waits: boolean[] = [];
    /** Breaks the reader; true when it was reopened exactly `ms` later (not 1 ms before). */
    const breakFor = async (ms: number): Promise<void> => {
      wal!({ type: "walError", message: "timeout", fatal: false });
      await settle();
      const n = starts.length;
      clock.increment(ms - 1);
      await settle();
      const early = starts.length !== n;
      clock.increment(1);
      await settle();
      waits.push(!early && starts.length === n + 1);
    };
    await settle();
    deliver(0, 5);
    wal!({ type: "caughtUp" });
    await settle();
    const folded = a.getSnapshot().context.stats.foldedLsn;
    wal!({ type: "walError", message: "timeout", fatal: false });
    await settle();
    const waiting = a.getSnapshot();
    clock.increment(500);
    await settle();
    // Before catching up again the waits double, up to 10 s.
    for (const ms of [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]) await breakFor(ms);
    deliver(0, w.records.length);
    wal!({ type: "caughtUp" });
    await settle();
    const end = a.getSnapshot();
    a.stop();
    return { stream, starts, folded, waiting, waits, end };
  }

  it("feed actor - a WAL consumer that breaks is reopened after 0.5 s, doubling to 10 s, from the record after the last folded: no gap, no duplicate", async () => {
    const r = await retried(0);
    expect(r.folded).toBe(w.records[4]!.lsn);
    expect(r.waiting.matches({ running: { wal: "waiting" } })).toBe(true);
    expect(r.waiting.context.walRetryError).toBe("timeout");
    expect(r.waiting.context.error).toBeUndefined();
    expect(r.starts).toEqual([1, ...Array.from({ length: 7 }, () => r.folded + 1)]);
    expect(r.waits).toEqual([true, true, true, true, true, true]);
    expect(r.end.context.walRetries).toBe(0);
    expect(r.end.matches({ running: { phase: "live", output: "idle", wal: "reading" } })).toBe(true);
    expect(r.stream.map(text)).toEqual(uninterrupted());
  });

  it("negative control - a reader reopened one record past the right place leaves a gap, and the comparison sees it", async () => {
    const r = await retried(1);
    expect(r.stream.map(text)).not.toEqual(uninterrupted());
  });

  /** One feed subject shared by two owners: each stored batch with its publisher; seq = position + 1. */
  type Stored = { batch: FeedBatch; by: string };
  /** A publish as the runtime's: refused (FeedFencedError) unless `lastSeq` is still the subject's last; `fenced: false` stores anyway. */
  const ownerPublish = (subject: Stored[], by: string, calls: number[], fenced = true) =>
    fromPromise<number, PublishInput>(async ({ input }) => {
      calls.push(input.lastSeq);
      if (fenced && input.lastSeq !== subject.length) {
        const head = subject.at(-1);
        throw new FeedFencedError(`subject moved past ${input.lastSeq}`, { publisher: head?.by ?? "", seq: subject.length, offset: undefined });
      }
      subject.push(...input.batches.map((batch) => ({ batch, by })));
      return subject.length;
    });

  /**
   * Owner A folds 7 records and publishes them; the feed moves: B recovers
   * from the subject's head and publishes the rest; then A, which never
   * learnt, gets the remaining records and tries to publish them.
   */
  async function race(fenced: boolean) {
    const subject: Stored[] = [];
    const aCalls: number[] = [];
    const bCalls: number[] = [];
    let aWal: ((e: FeedEvent) => void) | undefined;
    let aWalStopped = false;
    const a = createActor(
      feedMachine.provide({
        actors: {
          lastPublished: fromPromise<LastPublished, LastPublishedInput>(async () => ({ offset: subject.at(-1)?.batch.offset, seq: subject.length })),
          wal: fromCallback<FeedEvent, FeedWalInput>(({ sendBack }) => {
            aWal = sendBack;
            return () => void (aWalStopped = true);
          }),
          publish: ownerPublish(subject, "A", aCalls, fenced),
        },
      }),
      { input: { feed: { tenant: TENANT, name: "vwap" }, plan } },
    ).start();
    await waitFor(a, (x) => x.matches("running"));
    aWal!({ type: "records", records: w.records.slice(0, 7) });
    aWal!({ type: "caughtUp" });
    await settled(a);
    const byA = subject.length;
    const b = createActor(
      feedMachine.provide({
        actors: {
          lastPublished: fromPromise<LastPublished, LastPublishedInput>(async () => ({ offset: subject.at(-1)?.batch.offset, seq: subject.length })),
          wal: fakeWal(),
          publish: ownerPublish(subject, "B", bCalls, fenced),
        },
      }),
      { input: { feed: { tenant: TENANT, name: "vwap" }, plan } },
    ).start();
    await settled(b);
    aWal!({ type: "records", records: w.records.slice(7) });
    const end = await waitFor(a, (x) => x.matches("fenced") || x.matches("failed") || (x.matches({ running: { output: "idle" } }) && x.context.outbox.length === 0), { timeout: 10_000 });
    // Records after the fence reach nobody: the WAL consumer is gone and nothing is published.
    const callsAtEnd = aCalls.length;
    if (!aWalStopped) aWal!({ type: "records", records: w.records.slice(7) });
    await new Promise((r) => setTimeout(r, 20));
    const later = aCalls.length - callsAtEnd;
    const bEnd = b.getSnapshot();
    a.stop();
    b.stop();
    return { subject, byA, aCalls, bCalls, end, bEnd, aWalStopped, later };
  }

  it("feed actor - publishes expect the subject's sequence: from recovery, then each publish's PubAck", async () => {
    const subject: Stored[] = [];
    const calls: number[] = [];
    const first = createActor(feedMachine.provide({ actors: { lastPublished: fromPromise<LastPublished, LastPublishedInput>(async () => ({ offset: undefined, seq: 0 })), wal: fakeWal(7), publish: ownerPublish(subject, "A", calls) } }), { input: { feed: { tenant: TENANT, name: "vwap" }, plan } }).start();
    await settled(first);
    first.stop();
    const afterFirst = subject.length;
    const second = createActor(feedMachine.provide({ actors: { lastPublished: fromPromise<LastPublished, LastPublishedInput>(async () => ({ offset: subject.at(-1)?.batch.offset, seq: subject.length })), wal: fakeWal(), publish: ownerPublish(subject, "B", calls) } }), { input: { feed: { tenant: TENANT, name: "vwap" }, plan } }).start();
    const s = await settled(second);
    second.stop();
    expect(calls[0]).toBe(0);
    expect(calls).toContain(afterFirst);
    // Every publish expected exactly what the subject held: none refused, the subject equals the uninterrupted output.
    expect(s.matches({ running: { phase: "live" } })).toBe(true);
    expect(s.context.subjectSeq).toBe(subject.length);
    expect(subject.map((x) => text(x.batch))).toEqual(uninterrupted());
  });

  it("feed actor - fenced: an old owner refused because the new owner published stops reading and publishing; the subject holds no stale update", async () => {
    const r = await race(true);
    expect(r.byA).toBeGreaterThan(0);
    expect(r.end.matches("fenced")).toBe(true);
    expect(r.end.context.fenced?.publisher).toBe("B");
    expect(r.end.context.fenced?.seq).toBe(r.subject.length);
    expect(r.end.context.error).toBeUndefined();
    expect(r.aWalStopped).toBe(true);
    expect(r.later).toBe(0);
    expect(r.bEnd.matches({ running: { phase: "live" } })).toBe(true);
    expect(r.subject.slice(r.byA).every((x) => x.by === "B")).toBe(true);
    expect(r.subject.map((x) => text(x.batch))).toEqual(uninterrupted());
  });

  it("negative control - the same race unfenced stores the old owner's stale updates after the new owner's, and the comparison sees it", async () => {
    const r = await race(false);
    expect(r.end.matches("fenced")).toBe(false);
    expect(r.subject.at(-1)!.by).toBe("A");
    expect(r.subject.map((x) => text(x.batch))).not.toEqual(uninterrupted());
    expect(new Set(r.subject.map((x) => text(x.batch))).size).toBeLessThan(r.subject.length);
  });

  it("feed actor - a fenced feed stops on stop (a final state)", async () => {
    const subject: Stored[] = [];
    let wal: ((e: FeedEvent) => void) | undefined;
    const a = createActor(
      feedMachine.provide({
        actors: {
          lastPublished: fromPromise<LastPublished, LastPublishedInput>(async () => ({ offset: undefined, seq: 0 })),
          wal: fromCallback<FeedEvent, FeedWalInput>(({ sendBack }) => void (wal = sendBack)),
          publish: ownerPublish(subject, "A", []),
        },
      }),
      { input: { feed: { tenant: TENANT, name: "vwap" }, plan } },
    ).start();
    await waitFor(a, (x) => x.matches("running"));
    wal!({ type: "records", records: w.records.slice(0, 7) });
    wal!({ type: "caughtUp" });
    await settled(a);
    subject.push({ batch: subject.at(-1)!.batch, by: "B" }); // another owner's message
    wal!({ type: "records", records: w.records.slice(7) });
    await waitFor(a, (x) => x.matches("fenced"));
    a.send({ type: "stop" });
    expect(a.getSnapshot().matches("stopped")).toBe(true);
    expect(a.getSnapshot().status).toBe("done");
  });
});
