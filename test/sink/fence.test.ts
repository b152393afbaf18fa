// Fenced sinks and verified P, pure: the lease's permit (revoked, lapsed,
// renewed, switched off for the negative control), the sink machine with fake
// IO and a simulated clock (a revoked or lapsed permit means no INSERT, no
// watermark, no restarted consumer), the readers' revision gate, and
// verifyPersisted against a fake ClickHouse and WAL.
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromCallback, fromPromise } from "xstate";
import { sinkMachine, sinkStateName } from "../../actors/sink.js";
import type { Announce, AnnouncerInput, FlushInput, FlushOutput, RecoverInput, RecoverOutput, SinkEvent, SinkWalInput, WalAck } from "../../actors/sink.js";
import { SinkFencedError, SinkLease, WatermarkGate, isFenced, runFlush, verifyPersisted } from "../../src/sink/index.js";
import type { FlushIo, VerifyIo } from "../../src/sink/index.js";
import { MemoryClickhouse, SPEC, batch, record } from "./fixtures.js";

const SHARD = { tenant: "t", table: "trades", bucket: 0 };
const RETRY = { baseMs: 100, factor: 2, maxMs: 1_000, degradedAfterAttempts: 3, uncertainGraceMs: 3_000, seed: 9 };

const settle = async (): Promise<void> => {
  for (let i = 0; i < 8; i++) await new Promise((r) => setImmediate(r));
};

describe("SinkLease", () => {
  it("permit - granted while current; refused once revoked, or once the deadline passed without renewal", () => {
    const lease = new SinkLease(7, 1_000, 0);
    expect(() => lease.permit(999, "INSERT")).not.toThrow();
    lease.renew(900);
    expect(() => lease.permit(1_800, "INSERT")).not.toThrow();
    expect(() => lease.permit(1_901, "INSERT")).toThrow(/INSERT refused: lease revision 7 expired/);
    const revoked = new SinkLease(7, 1_000, 0);
    revoked.revoke("px_assign moved the shard to n2");
    expect(() => revoked.permit(1, "watermark P 5")).toThrow(SinkFencedError);
    // A revoked lease is not renewed back to life.
    revoked.renew(2);
    expect(revoked.verdict(3)).toEqual({ ok: false, reason: "lease revision 7 revoked: px_assign moved the shard to n2" });
  });

  it("permit - renewed from a heartbeat sent before a pause (its reply late): the permit stays expired", () => {
    const lease = new SinkLease(7, 1_500, 0);
    // The process froze at 1,000 with a heartbeat sent at 900 in flight; the reply is handled at 7,000: the
    // renewal counts from 900 (SinkRuntime.renew(sentAgoMs) passes now - sentAgoMs), so nothing is extended.
    lease.renew(900);
    expect(() => lease.permit(7_001, "INSERT")).toThrow(/expired/);
    // A heartbeat sent after the pause does extend it (the host asks px_assign first when it had lapsed).
    lease.renew(7_000);
    expect(() => lease.permit(7_001, "INSERT")).not.toThrow();
  });

  it("permit - switched off (the negative control's PX_FENCE_OFF=1) everything is granted", () => {
    const lease = new SinkLease(7, 1_000, 0, true);
    lease.revoke("moved");
    expect(lease.verdict(10_000)).toEqual({ ok: true });
  });

  it("isFenced - sees SinkFencedError through wrapping causes", () => {
    const e = new Error("flush", { cause: new Error("insert", { cause: new SinkFencedError("refused") }) });
    expect(isFenced(e)).toBe(true);
    expect(isFenced(new Error("ECONNRESET"))).toBe(false);
  });
});

describe("WatermarkGate", () => {
  it("refuses a watermark of an older lease revision than the highest seen; same or newer pass", () => {
    const g = new WatermarkGate();
    expect(g.check({ persistedLsn: 10, leaseRevision: 3 })).toBeUndefined();
    expect(g.check({ persistedLsn: 20, leaseRevision: 5 })).toBeUndefined();
    expect(g.check({ persistedLsn: 30, leaseRevision: 3 })).toMatch(/P 30 of lease revision 3 refused: revision 5 was seen/);
    expect(g.check({ persistedLsn: 25, leaseRevision: 5 })).toBeUndefined();
    expect(g.refused).toBe(1);
    expect(g.highestRevision).toBe(5);
  });
});

/** The sink machine with the runtime's permit check in its flush, over an in-memory ClickHouse. */
function harness() {
  const clock = new SimulatedClock();
  const lease = new SinkLease(7, 1_000, clock.now());
  const mem = new MemoryClickhouse();
  // Holds INSERTs (an IO stall, or a paused process) until released.
  let stall: Promise<void> | undefined;
  let release: () => void = () => {};
  const permit = (what: string): void => lease.permit(clock.now(), what);
  const io: FlushIo = {
    raiseFence: () => mem.raiseFence(),
    waitQueryGone: () => mem.waitQueryGone(),
    landedCounts: (a, b) => mem.landedCounts(a, b),
    landedRowSets: (l) => mem.landedRowSets(l),
    insert: async (plan, queryId, signal) => {
      if (stall !== undefined) await stall;
      // As the HTTP client: an aborted request is not sent.
      signal?.throwIfAborted();
      // As in the runtime: the permit is asked right before the request.
      permit(`INSERT ${queryId}`);
      await mem.insert(plan, queryId);
    },
  };
  const walStarts: number[] = [];
  let walStops = 0;
  const announces: Announce[] = [];
  const flushAttempts: FlushInput[] = [];
  let toSink: (e: SinkEvent) => void = () => {};
  const actor = createActor(
    sinkMachine.provide({
      actors: {
        recover: fromPromise<RecoverOutput, RecoverInput>(async () => {
          permit("recovery");
          return { persistedLsn: 0, tPersistedMicros: 0, verifyUpToLsn: 0, atMs: clock.now() };
        }),
        wal: fromCallback<WalAck, SinkWalInput>(({ sendBack, input }) => {
          walStarts.push(input.fromLsn);
          toSink = sendBack;
          return () => walStops++;
        }),
        flush: fromPromise<FlushOutput, FlushInput>(async ({ input, signal }) => {
          flushAttempts.push(input);
          const r = await runFlush(io, input, { spec: SPEC, maxInsertRows: 1_000, queryId: (a, i) => `pxsink-t-trades-0-r7-x-${a}-${i}` }, signal);
          return { ...r, atMs: clock.now() };
        }),
        announcer: fromCallback<Announce, AnnouncerInput>(({ receive, sendBack }) => {
          receive((a) => {
            try {
              permit(`watermark P ${a.persistedLsn}`);
              announces.push(a);
            } catch (e) {
              sendBack({ type: "fenced", reason: (e as Error).message });
            }
          });
        }),
      },
    }),
    { input: { shard: SHARD, spec: SPEC, leaseRevision: 7, limits: { maxBatchRows: 100, maxBatchBytes: 1 << 20, maxBatchDelayMs: 200 }, retry: RETRY }, clock },
  );
  actor.start();
  return {
    actor,
    clock,
    lease,
    mem,
    walStarts,
    announces,
    flushAttempts,
    walStops: () => walStops,
    state: () => sinkStateName(actor.getSnapshot().value),
    send: (lsns: number[], rows = 10) => toSink({ type: "records", records: lsns.map((l) => record(l, batch(rows, l), clock.now())), atMs: clock.now() }),
    stall: () => {
      stall = new Promise((r) => (release = r));
    },
    release: () => release(),
  };
}

describe("fenced sink machine", () => {
  it("permit revoked while an INSERT is stalled: the INSERT is refused, the sink is fenced, nothing lands, no retry, no watermark", async () => {
    const h = harness();
    await settle();
    h.send([1, 2]);
    h.clock.increment(200);
    await settle();
    // The first batch went through.
    expect(h.mem.rows).toHaveLength(20);
    expect(h.announces.map((a) => a.persistedLsn)).toEqual([2]);
    h.stall();
    // The second batch stalls in front of its INSERT (a paused process, a stuck socket).
    h.send([3, 4]);
    h.clock.increment(200);
    await settle();
    expect(h.state()).toBe("flushing");
    // The agent's watch of px_assign revokes; the machine hears it only once its IO resumes.
    h.lease.revoke("px_assign moved the shard to n2 (lease revision 9)");
    h.release();
    await settle();
    expect(h.state()).toBe("fenced");
    expect(h.mem.rows).toHaveLength(20);
    expect(h.actor.getSnapshot().context.fencedReason).toMatch(/revoked: px_assign moved the shard to n2/);
    // Stopped for good: the WAL consumer is stopped and not restarted, no retry comes, P stays.
    expect(h.walStops()).toBe(1);
    h.clock.increment(60_000);
    await settle();
    expect(h.flushAttempts).toHaveLength(2);
    expect(h.walStarts).toEqual([1]);
    expect(h.actor.getSnapshot().context.persistedLsn).toBe(2);
    expect(h.announces.map((a) => a.persistedLsn)).toEqual([2]);
  });

  it("permit lapsed (no renewal within the lease TTL, e.g. the node was paused): the next INSERT is refused", async () => {
    const h = harness();
    await settle();
    h.send([1]);
    // 1.2 s without a renewal: past the 1 s TTL.
    h.clock.increment(1_200);
    await settle();
    expect(h.state()).toBe("fenced");
    expect(h.mem.inserts).toBe(0);
    expect(h.actor.getSnapshot().context.fencedReason).toMatch(/expired/);
  });

  it("renewed permits keep the sink writing", async () => {
    const h = harness();
    await settle();
    for (let i = 1; i <= 5; i++) {
      h.send([i]);
      h.clock.increment(500);
      h.lease.renew(h.clock.now());
      await settle();
    }
    expect(h.state()).toBe("idle");
    expect(h.mem.rows).toHaveLength(50);
    expect(h.mem.check([1, 2, 3, 4, 5].map((l) => record(l, batch(10, l))))).toEqual({ duplicates: 0, missing: 0, extra: 0 });
  });

  it("a `fenced` event (the agent's revocation) stops the WAL consumer and aborts a flush at once", async () => {
    const h = harness();
    await settle();
    h.stall();
    h.send([1]);
    h.clock.increment(200);
    await settle();
    expect(h.state()).toBe("flushing");
    h.actor.send({ type: "fenced", reason: "px_assign moved the shard" });
    expect(h.state()).toBe("fenced");
    expect(h.walStops()).toBe(1);
    h.release();
    await settle();
    expect(h.mem.inserts).toBe(0);
  });

  it("negative control: with the permit switched off the stalled INSERT lands after the revocation", async () => {
    const clock = new SimulatedClock();
    const off = new SinkLease(7, 1_000, clock.now(), true);
    off.revoke("moved");
    const mem = new MemoryClickhouse();
    const r = await runFlush(
      { ...mem, raiseFence: () => mem.raiseFence(), waitQueryGone: () => mem.waitQueryGone(), landedCounts: (a, b) => mem.landedCounts(a, b), landedRowSets: (l) => mem.landedRowSets(l), insert: async (p, q) => (off.permit(clock.now(), "INSERT"), mem.insert(p, q)) },
      { records: [record(1, batch(10, 1))], uncertain: false, staleQueryIds: [], attempt: 1 },
      { spec: SPEC, maxInsertRows: 1_000, queryId: () => "q" },
    );
    expect(r.insertedRows).toBe(10);
  });
});

/** A shard's WAL (lsn -> rows) and what ClickHouse holds of it (lsn -> rows landed). */
function verifyIo(wal: Record<number, number>, landed: Record<number, number>): VerifyIo {
  const lsns = Object.keys(wal).map(Number).sort((a, b) => a - b);
  return {
    maxLandedUpTo: async (upTo) => Math.max(0, ...Object.keys(landed).map(Number).filter((l) => l <= upTo && landed[l]! > 0)),
    landedRows: async (lsn) => landed[lsn] ?? 0,
    recordRows: async (lsn) => wal[lsn] ?? 0,
    nextRecord: async (after) => {
      const l = lsns.find((x) => x > after);
      return l === undefined ? undefined : { lsn: l, rows: wal[l]! };
    },
  };
}

describe("verified P", () => {
  // The shard's records are LSNs 2, 5, 9, 12 (others belong to other shards).
  const WAL = { 2: 10, 5: 10, 9: 10, 12: 10 };

  it("a watermark ClickHouse backs is accepted", async () => {
    expect(await verifyPersisted(verifyIo(WAL, { 2: 10, 5: 10, 9: 10 }), 11)).toEqual({ persistedLsn: 11, refused: undefined });
    expect(await verifyPersisted(verifyIo(WAL, {}), 1)).toEqual({ persistedLsn: 1, refused: undefined });
  });

  it("a forged watermark far ahead is refused: P is what ClickHouse holds", async () => {
    const v = await verifyPersisted(verifyIo(WAL, { 2: 10, 5: 10 }), 1_000_000);
    expect(v.persistedLsn).toBe(8);
    expect(v.refused).toMatch(/claims more than ClickHouse holds: the shard's WAL record 9 \(10 rows\) is not there/);
  });

  it("the newest landed record must be whole (row count), or P stops before it", async () => {
    const v = await verifyPersisted(verifyIo(WAL, { 2: 10, 5: 4 }), 5);
    expect(v).toEqual({ persistedLsn: 4, refused: "watermark P 5: WAL record 5 is only partly in ClickHouse" });
  });

  it("records without rows never reach ClickHouse and do not count as missing", async () => {
    expect(await verifyPersisted(verifyIo({ 2: 10, 5: 0, 9: 10 }, { 2: 10 }), 8)).toEqual({ persistedLsn: 8, refused: undefined });
  });
});
