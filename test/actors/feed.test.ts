// Feed actor with fake IO: a fake WAL (the query fixture's records) and a
// fake stream (an array standing for PX_FEED_<tenant>). Checks: the published
// stream equals the feed's uninterrupted output; a restart recovers from the
// stream's last offset and continues with no gap and no duplicate (negative
// control: recovery that ignores the stream republishes and is caught);
// snapshots; a WAL consumer that breaks is reopened after a backoff (simulated
// clock) from the record after the last folded, and the stream still equals
// the uninterrupted output; lost WAL records and publish failures end in failed.
// Checkpoints: saved only once the stream holds every batch folded before the
// copy; a restart loads the checkpoint and reads the WAL from the record after
// it (the stream still equals the uninterrupted output); a checkpoint that
// does not fit is passed over (the WAL from its start), a store that cannot be
// read is asked again after a backoff.
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromCallback, fromPromise, waitFor } from "xstate";
import { feedMachine } from "../../actors/feed.js";
import type { CheckpointInput, FeedEvent, FeedWalInput, LastPublishedInput, PublishInput, PublishOutput, SaveCheckpointInput } from "../../actors/feed.js";
import { FeedRunner, encodeCheckpoint, planFeed } from "../../src/feed/index.js";
import type { FeedBatch, FeedOffset, FeedPlan } from "../../src/feed/index.js";
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
      lastPublished: fromPromise<FeedOffset | undefined, LastPublishedInput>(async () => (o.recover === false ? undefined : stream.at(-1)?.offset)),
      wal: fakeWal(o.upTo),
      publish: fromPromise<PublishOutput, PublishInput>(async ({ input }) => {
        if (o.publishFails) throw new Error("stream PX_FEED_qt: no responders");
        stream.push(...input.batches);
        return { stored: input.batches.length };
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
      actors: { lastPublished: fromPromise<FeedOffset | undefined, LastPublishedInput>(async () => undefined), wal: fakeWal(), publish: fromPromise<PublishOutput, PublishInput>(async ({ input }) => {
        stream.push(...input.batches);
        return { stored: input.batches.length };
      }) },
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
        lastPublished: fromPromise<FeedOffset | undefined, LastPublishedInput>(async () => undefined),
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
        lastPublished: fromPromise<FeedOffset | undefined, LastPublishedInput>(async () => undefined),
        wal: fromCallback<FeedEvent, FeedWalInput>(({ input, sendBack }) => {
          starts.push(input.fromSeq);
          wal = sendBack;
        }),
        publish: fromPromise<PublishOutput, PublishInput>(async ({ input }) => {
        stream.push(...input.batches);
        return { stored: input.batches.length };
      }),
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

  /** A feed with a simulated clock whose WAL, publish and checkpoint store the test drives. */
  function driven(o: { stream: FeedBatch[]; saved: SaveCheckpointInput[]; load?: () => Promise<Uint8Array | undefined>; p?: FeedPlan }) {
    const clock = new SimulatedClock();
    const starts: number[] = [];
    const gates: (() => void)[] = [];
    let wal: ((e: FeedEvent) => void) | undefined;
    const machine = feedMachine.provide({
      actors: {
        lastPublished: fromPromise<FeedOffset | undefined, LastPublishedInput>(async () => o.stream.at(-1)?.offset),
        loadCheckpoint: fromPromise<Uint8Array | undefined, CheckpointInput>(() => (o.load ?? (async () => undefined))()),
        saveCheckpoint: fromPromise<void, SaveCheckpointInput>(async ({ input }) => void o.saved.push(input)),
        wal: fromCallback<FeedEvent, FeedWalInput>(({ input, sendBack }) => {
          starts.push(input.fromSeq);
          wal = sendBack;
        }),
        // Each publish waits until the test opens its gate.
        publish: fromPromise<PublishOutput, PublishInput>(
          ({ input }) =>
            new Promise((resolve) =>
              gates.push(() => {
                o.stream.push(...input.batches);
                resolve({ stored: input.batches.length });
              }),
            ),
        ),
      },
    });
    const a = createActor(machine, { input: { feed: { tenant: TENANT, name: "vwap" }, plan: o.p ?? plan, checkpointIntervalMs: 1_000 }, clock }).start();
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 8; i++) await new Promise((r) => setImmediate(r));
    };
    /** Records [from, to) of the fixture that the reader's start lets through. */
    const deliver = (from: number, to: number): void => wal!({ type: "records", records: w.records.slice(from, to).filter((r) => r.lsn >= starts.at(-1)!) });
    const openGates = async (): Promise<void> => {
      while (gates.length > 0) {
        gates.shift()!();
        await settle();
      }
    };
    return { a, clock, starts, settle, deliver, openGates, wal: (e: FeedEvent) => wal!(e) };
  }

  it("feed actor - a checkpoint is saved once the stream holds what was folded before it; a restart loads it and reads the WAL from the record after it", async () => {
    const stream: FeedBatch[] = [];
    const saved: SaveCheckpointInput[] = [];
    const d = driven({ stream, saved });
    await d.settle();
    d.deliver(0, 8);
    d.wal({ type: "caughtUp" });
    await d.settle();
    // The copy is taken at the interval while the first publish is still out.
    d.clock.increment(1_000);
    await d.settle();
    expect(d.a.getSnapshot().matches({ running: { checkpoint: "covering" } })).toBe(true);
    expect(saved).toEqual([]);
    // More records fold meanwhile; the copy stays at what it covered.
    d.deliver(8, 10);
    await d.openGates();
    expect(saved.map((x) => x.foldedLsn)).toEqual([w.records[7]!.lsn]);
    expect(d.a.getSnapshot().context.stats.checkpointLsn).toBe(w.records[7]!.lsn);
    // Nothing new folded since the last checkpoint: nothing saved.
    d.clock.increment(1_000);
    await d.settle();
    await d.openGates();
    d.clock.increment(1_000);
    await d.settle();
    expect(saved.map((x) => x.foldedLsn)).toEqual([w.records[7]!.lsn, w.records[9]!.lsn]);
    d.clock.increment(1_000);
    await d.settle();
    expect(saved.length).toBe(2);
    d.a.stop(); // the process dies here, the stream holds records 0-9's output

    const e = driven({ stream, saved, load: async () => saved.at(-1)!.bytes });
    await d.settle();
    await e.settle();
    expect(e.starts).toEqual([w.records[9]!.lsn + 1]);
    expect(e.a.getSnapshot().context.stats.restoredFrom).toMatch(new RegExp(`^checkpoint at LSN ${w.records[9]!.lsn} \\(\\d+ bytes\\)$`));
    e.deliver(0, w.records.length);
    e.wal({ type: "caughtUp" });
    await e.settle();
    await e.openGates();
    e.a.stop();
    expect(stream.map(text)).toEqual(uninterrupted());
  });

  it("feed actor - a checkpoint that does not fit is passed over (the WAL from its start); an unreadable store is asked again after 0.5 s", async () => {
    const other = planFeed(TENANT, { query: { op: "lastBy", table: "trades" } }, (t) => w.specs.find((s) => s.name === t), () => ["trades", "quotes"]);
    const r = new FeedRunner(other);
    r.push(w.records[0]!);
    const foreign = encodeCheckpoint(r, w.records[0]!.lsn, undefined);
    let reads = 0;
    const stream: FeedBatch[] = [];
    const d = driven({
      stream,
      saved: [],
      load: async () => {
        reads++;
        if (reads === 1) throw new Error("timeout reading px_snapshots");
        return foreign;
      },
    });
    await d.settle();
    expect(d.a.getSnapshot().matches("restoreWaiting")).toBe(true);
    expect(d.a.getSnapshot().context.stats.checkpointError).toBe("cannot read the feed's checkpoint: timeout reading px_snapshots");
    d.clock.increment(499);
    await d.settle();
    expect(reads).toBe(1);
    d.clock.increment(1);
    await d.settle();
    expect(reads).toBe(2);
    expect(d.starts).toEqual([1]);
    expect(d.a.getSnapshot().context.stats.restoredFrom).toMatch(/^checkpoint not used, folding the WAL from its first record: the checkpoint is of feed [0-9a-f]+, not of this feed/);
    d.a.stop();
  });
});
