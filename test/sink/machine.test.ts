// Sink machine with fake IO and a simulated clock: batching by time, rows and
// bytes, commit then announcement then WAL ack, retries with backoff and the
// landed check, degraded, redeliveries, recovery and WAL failures.
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromCallback, fromPromise } from "xstate";
import { sinkMachine, sinkStateName } from "../../actors/sink.js";
import type { Announce, AnnouncerInput, FlushInput, FlushOutput, RecoverInput, RecoverOutput, SinkEvent, SinkWalInput, WalAck } from "../../actors/sink.js";
import { ClickhouseQueryError, ClickhouseUnavailableError } from "../../src/clickhouse/index.js";
import { retryDelayMs } from "../../src/sink/index.js";
import { SPEC, batch, record } from "./fixtures.js";

const SHARD = { tenant: "t", table: "trades", bucket: 0 };
const RETRY = { baseMs: 100, factor: 2, maxMs: 1_000, degradedAfterAttempts: 3, uncertainGraceMs: 3_000, seed: 9 };

interface Call<I, O> {
  readonly input: I;
  resolve(v: O): void;
  reject(e: unknown): void;
}

function deferredActor<I, O>(calls: Call<I, O>[]) {
  return fromPromise<O, I>(
    ({ input }) =>
      new Promise<O>((resolve, reject) => {
        calls.push({ input, resolve, reject });
      }),
  );
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

function harness(recovered: Partial<RecoverOutput> = {}, limits = { maxBatchRows: 100, maxBatchBytes: 1 << 20, maxBatchDelayMs: 200 }) {
  const clock = new SimulatedClock();
  const flushes: Call<FlushInput, FlushOutput>[] = [];
  const announces: Announce[] = [];
  let toSinkFromAnnouncer: (e: SinkEvent) => void = () => {};
  const acks: number[] = [];
  const walStarts: number[] = [];
  let toSink: (e: SinkEvent) => void = () => {};
  const actor = createActor(
    sinkMachine.provide({
      actors: {
        recover: fromPromise<RecoverOutput, RecoverInput>(async () => ({ persistedLsn: 0, tPersistedMicros: 0, verifyUpToLsn: 0, atMs: clock.now(), ...recovered })),
        wal: fromCallback<WalAck, SinkWalInput>(({ sendBack, receive, input }) => {
          walStarts.push(input.fromLsn);
          toSink = sendBack;
          receive((a) => acks.push(a.lsn));
        }),
        flush: deferredActor(flushes),
        announcer: fromCallback<Announce, AnnouncerInput>(({ sendBack, receive }) => {
          toSinkFromAnnouncer = sendBack;
          receive((a) => announces.push(a));
        }),
      },
    }),
    { input: { shard: SHARD, spec: SPEC, leaseRevision: 7, limits, retry: RETRY }, clock },
  );
  actor.start();
  const state = () => sinkStateName(actor.getSnapshot().value);
  const ok = (out: Partial<FlushOutput> = {}): FlushOutput => ({ inserts: 1, insertedRows: 0, alreadyLandedRows: 0, duplicateRows: 0, atMs: clock.now(), ...out });
  return {
    actor,
    clock,
    flushes,
    announces,
    acks,
    walStarts,
    state,
    ok,
    send: (lsns: number[], rows = 10) => toSink({ type: "records", records: lsns.map((l) => record(l, batch(rows, l), clock.now())), atMs: clock.now() }),
    walError: (fatal: boolean) => toSink({ type: "walError", message: "boom", fatal }),
    announced: (persistedLsn: number) => toSinkFromAnnouncer({ type: "announced", persistedLsn, atMs: clock.now() }),
    announceFailed: () => toSinkFromAnnouncer({ type: "announceFailed", message: "nats down" }),
  };
}

describe("sink machine", () => {
  it("batching - records below the limits are flushed after the batch delay, not before", async () => {
    const h = harness();
    await settle();
    expect(h.state()).toBe("idle");
    h.send([1, 2]);
    expect(h.state()).toBe("batching");
    h.clock.increment(199);
    await settle();
    expect(h.flushes).toHaveLength(0);
    h.clock.increment(1);
    await settle();
    expect(h.state()).toBe("flushing");
    expect(h.flushes[0]!.input.records.map((r) => r.lsn)).toEqual([1, 2]);
    expect(h.flushes[0]!.input).toMatchObject({ uncertain: false, attempt: 1, staleQueryIds: [] });
  });

  it("batching - reaching the row limit flushes at once", async () => {
    const h = harness();
    await settle();
    h.send([1, 2, 3, 4], 30);
    await settle();
    expect(h.state()).toBe("flushing");
    // A flush takes whole records up to the limit; the rest waits.
    expect(h.flushes[0]!.input.records.map((r) => r.lsn)).toEqual([1, 2, 3]);
  });

  it("batching - tune (lag remediation's bigger batches) is taken by the next batch: more rows per flush, a longer delay", async () => {
    const h = harness();
    await settle();
    h.actor.send({ type: "tune", limits: { maxBatchRows: 400, maxBatchBytes: 4 << 20, maxBatchDelayMs: 800, maxInsertRows: 1_000_000 } });
    h.send([1, 2, 3, 4], 30);
    await settle();
    expect(h.state()).toBe("batching"); // 120 rows: full at 100, not at 400
    h.clock.increment(200);
    await settle();
    expect(h.flushes).toHaveLength(0);
    h.clock.increment(600);
    await settle();
    expect(h.flushes[0]!.input.records.map((r) => r.lsn)).toEqual([1, 2, 3, 4]);
  });

  it("commit - P advances to the batch's last LSN and is announced with T_persisted; the WAL is acked once it is stored", async () => {
    const h = harness();
    await settle();
    h.send([4, 6], 10);
    h.clock.increment(200);
    await settle();
    h.flushes[0]!.resolve(h.ok({ insertedRows: 20 }));
    await settle();
    expect(h.state()).toBe("idle");
    const recs = h.flushes[0]!.input.records;
    expect(h.announces).toEqual([{ type: "announce", persistedLsn: 6, tPersistedMicros: Math.max(...recs.map((r) => r.maxTsMicros)) }]);
    expect(h.acks).toEqual([]);
    expect(h.actor.getSnapshot().context).toMatchObject({ persistedLsn: 6, publishedLsn: 0, stats: { flushes: 1, insertedRows: 20 } });
    h.announced(6);
    await settle();
    expect(h.acks).toEqual([6]);
    expect(h.actor.getSnapshot().context).toMatchObject({ persistedLsn: 6, publishedLsn: 6, stats: { watermarks: 1 } });
  });

  it("commit - the next batch is flushed while the watermark of the last one is still being published", async () => {
    const h = harness();
    await settle();
    h.send([1, 2, 3, 4, 5], 30);
    await settle();
    h.flushes[0]!.resolve(h.ok());
    await settle();
    expect(h.state()).toBe("batching");
    h.clock.increment(200);
    await settle();
    expect(h.flushes).toHaveLength(2);
    expect(h.announces.map((a) => a.persistedLsn)).toEqual([3]);
    h.flushes[1]!.resolve(h.ok());
    await settle();
    expect(h.announces.map((a) => a.persistedLsn)).toEqual([3, 5]);
  });

  it("commit - records that arrived during a flush go next, once their delay is up", async () => {
    const h = harness();
    await settle();
    h.send([1]);
    h.clock.increment(200);
    await settle();
    h.clock.increment(50);
    h.send([2, 3]);
    h.clock.increment(100);
    h.flushes[0]!.resolve(h.ok());
    await settle();
    expect(h.state()).toBe("batching");
    // The oldest pending record arrived 100 ms ago: 100 ms remain.
    h.clock.increment(99);
    await settle();
    expect(h.flushes).toHaveLength(1);
    h.clock.increment(1);
    await settle();
    expect(h.flushes[1]!.input.records.map((r) => r.lsn)).toEqual([2, 3]);
  });

  it("retry - an INSERT that may have landed is retried after the backoff with the landed check and its query id", async () => {
    const h = harness();
    await settle();
    h.send([1, 2]);
    h.clock.increment(200);
    await settle();
    const err = new ClickhouseUnavailableError("http://ch", "ECONNRESET", "reset", true, { queryId: "q1" });
    h.flushes[0]!.reject(err);
    await settle();
    expect(h.state()).toBe("backoff");
    const delay = retryDelayMs(RETRY, 1);
    h.clock.increment(delay - 1);
    await settle();
    expect(h.flushes).toHaveLength(1);
    h.clock.increment(1);
    await settle();
    expect(h.flushes[1]!.input).toMatchObject({ uncertain: true, staleQueryIds: ["q1"], attempt: 2 });
    expect(h.flushes[1]!.input.records.map((r) => r.lsn)).toEqual([1, 2]);
    expect(h.acks).toEqual([]);
  });

  it("retry - an INSERT refused before sending is retried without asking what landed", async () => {
    const h = harness();
    await settle();
    h.send([1]);
    h.clock.increment(200);
    await settle();
    h.flushes[0]!.reject(new ClickhouseUnavailableError("http://ch", "ECONNREFUSED", "refused", false));
    await settle();
    h.clock.increment(retryDelayMs(RETRY, 1));
    await settle();
    expect(h.flushes[1]!.input.uncertain).toBe(false);
  });

  it("retry - after a timeout the next attempt waits at least the grace period", async () => {
    const h = harness();
    await settle();
    h.send([1]);
    h.clock.increment(200);
    await settle();
    h.flushes[0]!.reject(new ClickhouseUnavailableError("http://ch", "ETIMEDOUT", "slow", true, { queryId: "q" }));
    await settle();
    h.clock.increment(2_999);
    await settle();
    expect(h.flushes).toHaveLength(1);
    h.clock.increment(1);
    await settle();
    expect(h.flushes).toHaveLength(2);
  });

  it("degraded - after repeated failures the sink reports degraded, keeps retrying and recovers", async () => {
    const h = harness();
    await settle();
    h.send([1]);
    h.clock.increment(200);
    await settle();
    for (let i = 1; i <= 3; i++) {
      h.flushes[i - 1]!.reject(new ClickhouseUnavailableError("http://ch", "ECONNREFUSED", "down", false));
      await settle();
      expect(h.state()).toBe(i < 3 ? "backoff" : "degraded");
      h.clock.increment(retryDelayMs(RETRY, i));
      await settle();
    }
    // Meanwhile ingest goes on: records pile up, lag is visible.
    h.send([2, 3]);
    expect(h.actor.getSnapshot().context.pending.map((r) => r.lsn)).toEqual([2, 3]);
    h.flushes[3]!.resolve(h.ok());
    await settle();
    expect(h.actor.getSnapshot().context).toMatchObject({ degraded: false, attempt: 0, persistedLsn: 1 });
  });

  it("degraded - a recovery that keeps failing (ClickHouse down at start) shows degraded, retries at the capped delay and recovers", async () => {
    const clock = new SimulatedClock();
    let failures = 0;
    let down = true;
    const actor = createActor(
      sinkMachine.provide({
        actors: {
          recover: fromPromise<RecoverOutput, RecoverInput>(async () => {
            if (down) {
              failures++;
              throw new ClickhouseUnavailableError("http://ch", "ECONNREFUSED", "down", false);
            }
            return { persistedLsn: 4, tPersistedMicros: 0, verifyUpToLsn: 4, atMs: clock.now() };
          }),
        },
      }),
      { input: { shard: SHARD, spec: SPEC, leaseRevision: 7, retry: RETRY }, clock },
    );
    actor.start();
    const state = () => sinkStateName(actor.getSnapshot().value);
    for (let i = 1; i <= 6; i++) {
      await settle();
      expect(failures).toBe(i);
      expect(state()).toBe(i < RETRY.degradedAfterAttempts ? "recovering" : "degraded");
      clock.increment(retryDelayMs(RETRY, i) * 2);
    }
    expect(actor.getSnapshot().context).toMatchObject({ degraded: true, lastError: expect.stringMatching(/^recovery: /) });
    down = false;
    await settle();
    clock.increment(60_000);
    await settle();
    expect(state()).toBe("idle");
    expect(actor.getSnapshot().context).toMatchObject({ degraded: false, persistedLsn: 4 });
  });

  it("degraded - a batch the server rejects degrades at once", async () => {
    const h = harness();
    await settle();
    h.send([1]);
    h.clock.increment(200);
    await settle();
    h.flushes[0]!.reject(new ClickhouseQueryError(16, "There is no column price in table", 400, "INSERT"));
    await settle();
    expect(h.state()).toBe("degraded");
    expect(h.actor.getSnapshot().context.lastError).toMatch(/no column price/);
  });

  it("redelivery - records at or below P or already received are ignored", async () => {
    const h = harness({ persistedLsn: 5, verifyUpToLsn: 5 });
    await settle();
    expect(h.walStarts).toEqual([6]);
    h.send([3, 5, 6, 7]);
    h.send([6, 7, 8]);
    expect(h.actor.getSnapshot().context.pending.map((r) => r.lsn)).toEqual([6, 7, 8]);
  });

  it("recovery - batches up to what ClickHouse may hold are flushed with the landed check, later ones without", async () => {
    const h = harness({ persistedLsn: 5, verifyUpToLsn: 9 }, { maxBatchRows: 20, maxBatchBytes: 1 << 20, maxBatchDelayMs: 200 });
    await settle();
    h.send([8, 9, 12, 13], 10);
    await settle();
    expect(h.flushes[0]!.input).toMatchObject({ uncertain: true });
    expect(h.flushes[0]!.input.records.map((r) => r.lsn)).toEqual([8, 9]);
    h.flushes[0]!.resolve(h.ok());
    await settle();
    expect(h.flushes[1]!.input).toMatchObject({ uncertain: false });
    expect(h.flushes[1]!.input.records.map((r) => r.lsn)).toEqual([12, 13]);
  });

  it("watermark - a failed publish is reported; the WAL is acked only after one is stored", async () => {
    const h = harness();
    await settle();
    h.send([1]);
    h.clock.increment(200);
    await settle();
    h.flushes[0]!.resolve(h.ok());
    await settle();
    h.announceFailed();
    await settle();
    expect(h.acks).toEqual([]);
    expect(h.actor.getSnapshot().context.lastError).toMatch(/watermark: nats down/);
    h.announced(1);
    await settle();
    expect(h.acks).toEqual([1]);
    expect(h.actor.getSnapshot().context.stats).toMatchObject({ watermarks: 1, watermarkFailures: 1 });
  });

  it("wal - a record nobody can write fails the sink; a broken consumer restarts from P + 1", async () => {
    const h = harness();
    await settle();
    h.send([1]);
    h.clock.increment(200);
    await settle();
    h.flushes[0]!.resolve(h.ok());
    await settle();
    h.send([2]);
    h.walError(false);
    await settle();
    expect(h.state()).toBe("recovering");
    h.clock.increment(retryDelayMs(RETRY, 1));
    await settle();
    expect(h.walStarts).toEqual([1, 2]);
    expect(h.actor.getSnapshot().context.pending).toEqual([]);
    h.walError(true);
    await settle();
    expect(h.state()).toBe("failed");
  });

  it("drain - stops, whatever it was doing", async () => {
    const h = harness();
    await settle();
    h.send([1]);
    h.clock.increment(200);
    await settle();
    h.actor.send({ type: "drain" });
    expect(h.actor.getSnapshot().status).toBe("done");
  });
});
