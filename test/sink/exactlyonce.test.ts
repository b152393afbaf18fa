// Exactly-once, as a property: the real sink machine and flush logic against an
// in-memory ClickHouse that fails INSERTs at random (refused, a committed
// prefix, a lost answer, one that times out unseen and runs late) and a sink
// that crashes and recovers at random. After
// every run each row is in the table exactly once, and P only grew and never
// passed what the table held. Without the landed check the same faults
// duplicate rows, and without the fence a late INSERT does: the check and the
// fence are what this test measures.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SimulatedClock, createActor, fromCallback, fromPromise } from "xstate";
import type { Actor } from "xstate";
import { sinkMachine } from "../../actors/sink.js";
import type { Announce, AnnouncerInput, FlushInput, FlushOutput, RecoverInput, RecoverOutput, SinkEvent, SinkWalInput, WalAck } from "../../actors/sink.js";
import { runFlush } from "../../src/sink/index.js";
import type { SinkRecord } from "../../src/sink/index.js";
import { DAY0, DAY_MICROS, MemoryClickhouse, SPEC, batch, record } from "./fixtures.js";
import type { InsertFault } from "./fixtures.js";

const SHARD = { tenant: "t", table: "trades", bucket: 0 };

const settle = async (): Promise<void> => {
  for (let i = 0; i < 8; i++) await new Promise((r) => setImmediate(r));
};

interface World {
  readonly ch: MemoryClickhouse;
  readonly records: readonly SinkRecord[];
  /** Every P published, in order (the watermark stream). */
  readonly published: number[];
  /** For each publish: did the table hold every row up to P at that moment? */
  readonly coveredAtPublish: boolean[];
  acked: number;
}

function startSink(w: World, clock: SimulatedClock, skipLandedCheck: boolean, maxInsertRows: number): Actor<typeof sinkMachine> {
  let no = 0;
  const actor = createActor(
    sinkMachine.provide({
      actors: {
        recover: fromPromise<RecoverOutput, RecoverInput>(async () => {
          // As the runtime's recovery: raise the fence, then read what landed (a queued INSERT runs right after).
          await w.ch.raiseFence();
          const p = Math.max(w.published.at(-1) ?? 0, w.acked);
          const maxLsn = Math.max(0, ...w.ch.rows.map((r) => r.lsn));
          w.ch.runQueued();
          return { persistedLsn: p, tPersistedMicros: 0, verifyUpToLsn: Math.max(p, maxLsn), atMs: clock.now() };
        }),
        wal: fromCallback<WalAck, SinkWalInput>(({ sendBack, receive, input }) => {
          const send = (e: SinkEvent): void => sendBack(e);
          receive((a) => (w.acked = Math.max(w.acked, a.lsn)));
          // Delivered in a few chunks, as a consumer would.
          const todo = w.records.filter((r) => r.lsn >= input.fromLsn);
          for (let i = 0; i < todo.length; i += 3) send({ type: "records", records: todo.slice(i, i + 3), atMs: clock.now() });
        }),
        flush: fromPromise<FlushOutput, FlushInput>(async ({ input }) => {
          const n = ++no;
          const r = await runFlush(w.ch, input, { spec: SPEC, maxInsertRows, queryId: (a, i) => `q-${n}-${a}-${i}`, skipLandedCheck });
          return { ...r, atMs: clock.now() };
        }),
        // Publishes at once, in order (the real one coalesces while a publish is out).
        announcer: fromCallback<Announce, AnnouncerInput>(({ sendBack, receive }) => {
          const send = (e: SinkEvent): void => sendBack(e);
          receive((a) => {
            w.published.push(a.persistedLsn);
            const expected = w.records.filter((r) => r.lsn <= a.persistedLsn);
            w.coveredAtPublish.push(w.ch.check(expected).missing === 0);
            send({ type: "announced", persistedLsn: a.persistedLsn, atMs: clock.now() });
          });
        }),
      },
    }),
    {
      input: { shard: SHARD, spec: SPEC, limits: { maxBatchRows: 60, maxBatchDelayMs: 100 }, retry: { baseMs: 50, maxMs: 400, degradedAfterAttempts: 3, uncertainGraceMs: 500 } },
      clock,
    },
  );
  actor.start();
  return actor;
}

/** Runs the world to the end: faults as scripted, crashes at the given steps. */
async function run(w: World, crashAtSteps: readonly number[], skipLandedCheck: boolean, maxInsertRows: number): Promise<void> {
  const clock = new SimulatedClock();
  let actor = startSink(w, clock, skipLandedCheck, maxInsertRows);
  const last = w.records.at(-1)!.lsn;
  for (let step = 0; step < 400; step++) {
    await settle();
    if (w.acked >= last) break;
    if (crashAtSteps.includes(step)) {
      actor.stop();
      // A crashed writer's INSERT still finishes on the server; recovery waits for it.
      await settle();
      actor = startSink(w, clock, skipLandedCheck, maxInsertRows);
      continue;
    }
    clock.increment(500);
  }
  actor.stop();
}

const faultArb: fc.Arbitrary<InsertFault> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<InsertFault>({ kind: "ok" }) },
  { weight: 1, arbitrary: fc.constant<InsertFault>({ kind: "refused" }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 80 }).map((rows): InsertFault => ({ kind: "prefix", rows })) },
  { weight: 1, arbitrary: fc.constant<InsertFault>({ kind: "lostAnswer" }) },
  { weight: 1, arbitrary: fc.constant<InsertFault>({ kind: "late" }) },
);

function world(sizes: readonly number[], seed: number, faults: readonly InsertFault[], fenced = true): World {
  let lsn = 0;
  // Ticks near midnight, so batches often span two UTC days (two INSERTs).
  const records = sizes.map((rows, i) => record((lsn += 1 + (i % 3)), batch(rows, seed + i, DAY0 + DAY_MICROS - 30_000_000 + i * 2_000_000, 4_000_000)));
  const ch = new MemoryClickhouse(fenced);
  ch.faults.push(...faults);
  return { ch, records, published: [], coveredAtPublish: [], acked: 0 };
}

describe("sink exactly-once (in-memory ClickHouse)", () => {
  it("exactly-once - under random INSERT faults and sink crashes, every row lands once and P is monotonic and never ahead", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 1, max: 1_000 }),
        fc.array(faultArb, { maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 3 }),
        fc.integer({ min: 7, max: 100 }),
        async (sizes, seed, faults, crashes, maxInsertRows) => {
          const w = world(sizes, seed, faults);
          await run(w, crashes, false, maxInsertRows);
          expect(w.acked).toBe(w.records.at(-1)!.lsn);
          expect(w.ch.check(w.records)).toEqual({ duplicates: 0, missing: 0, extra: 0 });
          for (let i = 1; i < w.published.length; i++) expect(w.published[i]).toBeGreaterThanOrEqual(w.published[i - 1]!);
          expect(w.coveredAtPublish.every(Boolean)).toBe(true);
        },
      ),
      { numRuns: 120 },
    );
  });

  it("exactly-once - negative control: without the landed check the same faults duplicate rows", async () => {
    // A lost answer (committed, the client never heard) and a committed prefix.
    for (const fault of [{ kind: "lostAnswer" }, { kind: "prefix", rows: 15 }] as const) {
      const safe = world([20, 20, 20], 5, [fault]);
      await run(safe, [], false, 1_000);
      expect(safe.ch.check(safe.records).duplicates).toBe(0);
      const unsafe = world([20, 20, 20], 5, [fault]);
      await run(unsafe, [], true, 1_000);
      expect(unsafe.ch.check(unsafe.records).duplicates).toBeGreaterThan(0);
    }
  });

  it("exactly-once - an INSERT that timed out unseen and runs after the retry asked what landed: fenced, it writes nothing; negative control: unfenced, it duplicates", async () => {
    const safe = world([20, 20, 20], 5, [{ kind: "late" }]);
    await run(safe, [], false, 1_000);
    expect(safe.ch.check(safe.records)).toEqual({ duplicates: 0, missing: 0, extra: 0 });
    expect(safe.ch.fence).toBeGreaterThan(1);
    const unsafe = world([20, 20, 20], 5, [{ kind: "late" }], false);
    await run(unsafe, [], false, 1_000);
    expect(unsafe.ch.check(unsafe.records).duplicates).toBeGreaterThan(0);
    // The same across a crash: the INSERT runs after the restarted sink read what landed.
    const crashed = world([20, 20, 20], 5, [{ kind: "late" }]);
    await run(crashed, [1], false, 1_000);
    expect(crashed.ch.check(crashed.records)).toEqual({ duplicates: 0, missing: 0, extra: 0 });
    const crashedUnsafe = world([20, 20, 20], 5, [{ kind: "late" }], false);
    await run(crashedUnsafe, [1], false, 1_000);
    expect(crashedUnsafe.ch.check(crashedUnsafe.records).duplicates).toBeGreaterThan(0);
  });

  it("exactly-once - a retry after a committed prefix sends only the missing rows", async () => {
    const w = world([30, 30], 8, [{ kind: "prefix", rows: 25 }]);
    await run(w, [], false, 1_000);
    expect(w.ch.check(w.records)).toEqual({ duplicates: 0, missing: 0, extra: 0 });
    // 60 rows, one INSERT that committed 25, then one retry of 35 (the batch may span two days: more INSERTs).
    expect(w.ch.rows).toHaveLength(60);
    expect(w.ch.landedQueries).toBe(1);
  });
});
