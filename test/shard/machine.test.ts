// Shard machine with fake WAL, watermark and snapshot IO and a simulated clock:
// recovery from a snapshot (or from the whole WAL), replay to live, live apply,
// eviction on watermarks, scheduled and on-demand snapshots, a failed snapshot,
// draining, and the failure paths (an unreadable record, a failing consumer).
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromCallback, fromPromise } from "xstate";
import { shardMachine } from "../../actors/shard.js";
import type { ShardEvent, SnapshotWriteInput, WalInput, WatermarksInput } from "../../actors/shard.js";
import { encodeWalRecord } from "../../protocols/codec.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { HotTable } from "../../src/hotset/index.js";
import { applyWalRecord } from "../../src/shard/apply.js";
import { snapshotPhaseOf } from "../../src/shard/snapshotphase.js";
import type { WalEntry } from "../../src/shard/apply.js";
import { decodeWalEntry } from "../../src/wal/index.js";
import { DAY0, SPEC, batch } from "../sink/fixtures.js";

const SHARD = { tenant: "t", table: "trades", bucket: 0 };
const SECOND = 1_000_000;

/** A WAL record as JetStream stores it: `rows` ticks from `t0`, over one second. */
function entry(lsn: number, rows = 10, t0 = DAY0 + 3_600 * SECOND, spec: TableSpec = SPEC): WalEntry {
  const data = encodeWalRecord({
    tenant: SHARD.tenant,
    table: spec.name,
    schemaVersion: spec.version,
    producerId: "p",
    producerSeq: BigInt(lsn),
    bucket: 0,
    rows,
    minTsMicros: 0n,
    maxTsMicros: 0n,
    payload: tickBatchToIpc(spec, batch(rows, lsn, t0, SECOND)),
  });
  return { lsn, data };
}

interface Call<I, O> {
  readonly input: I;
  resolve(v: O): void;
  reject(e: unknown): void;
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

interface HarnessOptions {
  readonly spec?: TableSpec;
  readonly snapshotIntervalMs?: number;
  readonly snapshotPhase?: number;
  /** What loadSnapshot finds; an Error makes it fail. */
  readonly snapshot?: HotTable | Error;
}

function harness(o: HarnessOptions = {}) {
  const spec = o.spec ?? SPEC;
  const clock = new SimulatedClock();
  const walStarts: number[] = [];
  let walStops = 0;
  let toShard: (e: ShardEvent) => void = () => {};
  let toShardWm: (e: ShardEvent) => void = () => {};
  const writes: Call<SnapshotWriteInput, { lsn: number }>[] = [];
  const actor = createActor(
    shardMachine.provide({
      actors: {
        loadSnapshot: fromPromise<HotTable | undefined, { shard: typeof SHARD; spec: TableSpec }>(async () => {
          if (o.snapshot instanceof Error) throw o.snapshot;
          return o.snapshot;
        }),
        wal: fromCallback<ShardEvent, WalInput>(({ input, sendBack }) => {
          walStarts.push(input.fromLsn);
          toShard = sendBack;
          return () => walStops++;
        }),
        watermarks: fromCallback<ShardEvent, WatermarksInput>(({ sendBack }) => {
          toShardWm = sendBack;
        }),
        writeSnapshot: fromPromise<{ lsn: number }, SnapshotWriteInput>(({ input }) => new Promise((resolve, reject) => writes.push({ input, resolve, reject }))),
      },
    }),
    { input: { shard: SHARD, spec, snapshotIntervalMs: o.snapshotIntervalMs ?? 0, ...(o.snapshotPhase === undefined ? {} : { snapshotPhase: o.snapshotPhase }) }, clock },
  );
  actor.start();
  const state = (): string => {
    const v = actor.getSnapshot().value;
    return typeof v === "string" ? v : Object.entries(v).map(([k, s]) => `${k}.${String(s)}`).join(",");
  };
  return {
    actor,
    clock,
    walStarts,
    writes,
    state,
    walStops: () => walStops,
    stats: () => actor.getSnapshot().context.stats,
    records: (...records: WalEntry[]) => toShard({ type: "records", records }),
    caughtUp: () => toShard({ type: "caughtUp" }),
    walError: (message: string, fatal = false) => toShard({ type: "walError", message, fatal }),
    watermark: (persistedLsn: number, tPersistedMicros = 0, leaseRevision = 1) => toShardWm({ type: "watermark", persistedLsn, tPersistedMicros, leaseRevision }),
  };
}

/** A live shard with a 1 s schedule, record 1 applied, one interval passed: its first scheduled snapshot is being written. */
async function firstScheduledSnapshot(): Promise<ReturnType<typeof harness>> {
  const h = harness({ snapshotIntervalMs: 1_000 });
  await settle();
  h.records(entry(1));
  h.caughtUp();
  h.clock.increment(1_000);
  await settle();
  return h;
}

/** A hot set as a snapshot restores it: records 1..lsn applied. */
function restored(lsn: number): HotTable {
  const t = new HotTable(SPEC);
  for (let l = 1; l <= lsn; l++) applyWalRecord(t, SPEC, entry(l));
  return t;
}


/** A harness on a trades spec with `retention`, caught up, with `records` records of 10 ticks, 10 s apart from t0. */
async function liveWith(retention: Record<string, number>, records: number) {
  const spec = parseTableSpec({ name: "trades", columns: SPEC.columns.map((c) => ({ name: c.name, type: c.type })), retention });
  const h = harness({ spec });
  await settle();
  h.caughtUp();
  const t0 = DAY0 + 3_600 * SECOND;
  h.records(...Array.from({ length: records }, (_, i) => entry(i + 1, 10, t0 + i * 10 * SECOND, spec)));
  return { h, t0, spec };
}

describe("shard machine", () => {
  it("recovery - without a snapshot the WAL is read from LSN 1, replaying until caught up", async () => {
    const h = harness();
    await settle();
    expect(h.state()).toBe("running.replaying");
    expect(h.walStarts).toEqual([1]);
    expect(h.stats().appliedLsn).toBe(0);
  });

  it("recovery - from a snapshot: its rows are served and the WAL resumes after its LSN", async () => {
    const h = harness({ snapshot: restored(3) });
    await settle();
    expect(h.walStarts).toEqual([4]);
    expect(h.stats()).toMatchObject({ appliedLsn: 3, rows: 30, lastSnapshotLsn: 3 });
    expect(h.stats().newestTickMicros).toBeGreaterThan(DAY0);
  });

  it("recovery - a failing snapshot store: the shard rebuilds from the whole WAL instead", async () => {
    const h = harness({ snapshot: new Error("object store down") });
    await settle();
    expect(h.state()).toBe("running.replaying");
    expect(h.walStarts).toEqual([1]);
  });

  it("replay - records apply while replaying; caught up it goes live; redeliveries change nothing", async () => {
    const h = harness();
    await settle();
    h.records(entry(1), entry(2));
    expect(h.state()).toBe("running.replaying");
    expect(h.stats()).toMatchObject({ appliedLsn: 2, rows: 20, records: 2, lagRecords: 2 });
    h.caughtUp();
    expect(h.state()).toBe("running.live");
    h.records(entry(2), entry(3, 5));
    expect(h.stats()).toMatchObject({ appliedLsn: 3, rows: 25, records: 4, lagRecords: 3 });
    // Decoded by the consumer (shared with the sink): applied the same.
    const e4 = entry(4, 7);
    h.records({ ...e4, decoded: decodeWalEntry(SPEC, 4, e4.data) });
    expect(h.stats()).toMatchObject({ appliedLsn: 4, rows: 32 });
    expect(h.actor.getSnapshot().context.table.rowCount).toBe(32);
  });

  it("watermarks - P lowers the lag; rows outside the hot retention and persisted are evicted", async () => {
    const { h, t0 } = await liveWith({ hotSeconds: 1 }, 3);
    expect(h.stats().lagRecords).toBe(3);
    h.watermark(2, t0 + 11 * SECOND, 5);
    expect(h.stats()).toMatchObject({ persistedLsn: 2, lagRecords: 1, watermarks: 1, watermarkLeaseRevision: 5, evictedRows: 20, rows: 10 });
    expect(h.stats().tPersistedMicros).toBe(t0 + 11 * SECOND);
    // An older watermark (a restarted sink's first) never moves P back.
    h.watermark(1, t0, 5);
    expect(h.stats()).toMatchObject({ persistedLsn: 2, tPersistedMicros: t0 + 11 * SECOND, watermarks: 2 });
  });

  it("watermarks - the oldest unpersisted record's WAL time follows P (0 once everything is persisted)", async () => {
    const h = harness();
    await settle();
    h.caughtUp();
    h.records({ ...entry(1), appendedAtMs: 5_000 }, { ...entry(2), appendedAtMs: 6_000 }, { ...entry(3), appendedAtMs: 7_000 });
    expect(h.stats().oldestUnpersistedAtMs).toBe(5_000);
    h.watermark(2, DAY0, 5);
    expect(h.stats()).toMatchObject({ lagRecords: 1, oldestUnpersistedAtMs: 7_000 });
    h.watermark(3, DAY0, 5);
    expect(h.stats()).toMatchObject({ lagRecords: 0, oldestUnpersistedAtMs: 0 });
  });

  it("hold eviction - while held (lag remediation) persisted rows older than hotSeconds stay; released, the next watermark evicts them", async () => {
    const { h, t0 } = await liveWith({ hotSeconds: 1 }, 3);
    h.actor.send({ type: "holdEviction", hold: true });
    h.watermark(2, t0 + 11 * SECOND, 5);
    expect(h.stats()).toMatchObject({ persistedLsn: 2, lagRecords: 1, evictedRows: 0, rows: 30 });
    h.actor.send({ type: "holdEviction", hold: false });
    h.watermark(2, t0 + 11 * SECOND, 5);
    expect(h.stats()).toMatchObject({ persistedLsn: 2, evictedRows: 20, rows: 10 });
  });

  it("hold eviction - the memory budget still evicts persisted rows while eviction by age is held", async () => {
    const { h, t0 } = await liveWith({ hotSeconds: 3_600, maxHotBytes: 1 }, 3);
    h.actor.send({ type: "holdEviction", hold: true });
    h.watermark(2, t0 + 11 * SECOND, 5);
    // Over budget: the persisted rows go; the unpersisted record stays whatever the budget says.
    expect(h.stats()).toMatchObject({ persistedLsn: 2, evictedRows: 20, rows: 10 });
  });

  it("snapshot - while one is written, watermarks move P and the memory budget evicts, eviction by age waits for its end (no export restarted by it)", async () => {
    const { h, t0 } = await liveWith({ hotSeconds: 1 }, 3);
    h.actor.send({ type: "snapshot" });
    await settle();
    expect(h.state()).toBe("running.snapshotting");
    const evictions = h.writes[0]!.input.table.evictionCount;
    h.watermark(2, t0 + 11 * SECOND, 5);
    expect(h.stats()).toMatchObject({ persistedLsn: 2, lagRecords: 1, watermarks: 1, evictedRows: 0, rows: 30 });
    expect(h.writes[0]!.input.table.evictionCount).toBe(evictions);
    h.writes[0]!.resolve({ lsn: 3 });
    await settle();
    expect(h.state()).toBe("running.live");
    // The first watermark after the snapshot evicts by age as usual.
    h.watermark(2, t0 + 11 * SECOND, 5);
    expect(h.stats()).toMatchObject({ persistedLsn: 2, evictedRows: 20, rows: 10 });
  });

  it("snapshot - negative control: the same watermark outside a snapshot evicts by age at once", async () => {
    const { h, t0 } = await liveWith({ hotSeconds: 1 }, 3);
    h.watermark(2, t0 + 11 * SECOND, 5);
    expect(h.stats()).toMatchObject({ persistedLsn: 2, evictedRows: 20, rows: 10 });
  });

  it("snapshot - the memory budget still evicts persisted rows while a snapshot is written", async () => {
    const { h, t0 } = await liveWith({ hotSeconds: 3_600, maxHotBytes: 1 }, 3);
    h.actor.send({ type: "snapshot" });
    await settle();
    expect(h.state()).toBe("running.snapshotting");
    h.watermark(2, t0 + 11 * SECOND, 5);
    expect(h.stats()).toMatchObject({ persistedLsn: 2, evictedRows: 20, rows: 10 });
  });

  it("snapshot - a watermark of an older lease revision is refused while a snapshot is written too", async () => {
    const { h, t0 } = await liveWith({ hotSeconds: 1 }, 2);
    h.watermark(1, t0, 9);
    h.actor.send({ type: "snapshot" });
    await settle();
    expect(h.state()).toBe("running.snapshotting");
    h.watermark(2, t0 + 11 * SECOND, 8);
    expect(h.stats()).toMatchObject({ persistedLsn: 1, watermarks: 1, refusedWatermarks: 1 });
  });

  it("watermarks - one of an older lease revision than seen (a stale owner's) is refused: nothing is evicted against it", async () => {
    const { h, t0 } = await liveWith({ hotSeconds: 1 }, 3);
    h.watermark(1, t0, 9);
    expect(h.stats()).toMatchObject({ persistedLsn: 1, watermarkLeaseRevision: 9, refusedWatermarks: 0 });
    h.watermark(3, t0 + 20 * SECOND, 8);
    expect(h.stats()).toMatchObject({ persistedLsn: 1, watermarks: 1, watermarkLeaseRevision: 9, refusedWatermarks: 1, rows: 20 });
    h.watermark(2, t0 + 11 * SECOND, 9);
    expect(h.stats()).toMatchObject({ persistedLsn: 2, watermarks: 2, refusedWatermarks: 1 });
  });

  it("snapshots - on the schedule, only once live, with the hot set as it is", async () => {
    const h = harness({ snapshotIntervalMs: 1_000 });
    await settle();
    h.clock.increment(5_000);
    expect(h.writes).toHaveLength(0); // still replaying
    h.records(entry(1), entry(2));
    h.caughtUp();
    h.clock.increment(999);
    await settle();
    expect(h.writes).toHaveLength(0);
    h.clock.increment(1);
    await settle();
    expect(h.state()).toBe("running.snapshotting");
    expect(h.writes).toHaveLength(1);
    expect(h.writes[0]!.input.table.appliedLsn).toBe(2);
    // Records keep applying while the snapshot is written.
    h.records(entry(3));
    expect(h.stats().appliedLsn).toBe(3);
    h.writes[0]!.resolve({ lsn: 2 });
    await settle();
    expect(h.state()).toBe("running.live");
    expect(h.stats()).toMatchObject({ snapshots: 1, lastSnapshotLsn: 2, snapshotFailures: 0 });
    h.clock.increment(1_000);
    await settle();
    expect(h.writes).toHaveLength(2);
  });

  it("snapshots - a shard's phase moves its first scheduled snapshot earlier (phase 0.5: after 0.75 intervals), the next ones an interval apart", async () => {
    const h = harness({ snapshotIntervalMs: 1_000, snapshotPhase: 0.5 });
    await settle();
    h.records(entry(1));
    h.caughtUp();
    h.clock.increment(749);
    await settle();
    expect(h.writes).toHaveLength(0);
    h.clock.increment(1);
    await settle();
    expect(h.writes).toHaveLength(1);
    h.writes[0]!.resolve({ lsn: 1 });
    await settle();
    h.records(entry(2));
    h.clock.increment(999);
    await settle();
    expect(h.writes).toHaveLength(1);
    h.clock.increment(1);
    await settle();
    expect(h.writes).toHaveLength(2);
  });

  it("snapshots - a scheduled one is skipped while nothing was applied since the last (a shard at rest), and comes an interval after records arrive again", async () => {
    const h = await firstScheduledSnapshot();
    expect(h.writes).toHaveLength(1);
    h.writes[0]!.resolve({ lsn: 1 });
    await settle();
    // At rest for 5 intervals: no snapshot of the same records again.
    for (let i = 0; i < 5; i++) {
      h.clock.increment(1_000);
      await settle();
    }
    expect(h.writes).toHaveLength(1);
    expect(h.state()).toBe("running.live");
    // Records again: the schedule still runs (the skipped turns re-armed it).
    h.records(entry(2));
    h.clock.increment(1_000);
    await settle();
    expect(h.writes).toHaveLength(2);
    expect(h.writes[1]!.input.table.appliedLsn).toBe(2);
    // On demand still writes one without new records.
    h.writes[1]!.resolve({ lsn: 2 });
    await settle();
    h.actor.send({ type: "snapshot" });
    await settle();
    expect(h.writes).toHaveLength(3);
  });

  it("snapshots - the phases of a node's shards spread over [0, 1)", () => {
    const phases = Array.from({ length: 8 }, (_, bucket) => snapshotPhaseOf({ tenant: "default", table: "trades", bucket }));
    expect(phases.every((p) => p >= 0 && p < 1)).toBe(true);
    // Spread: the 8 shards' first snapshots fall in at least 3 of the 4 quarters of the half interval.
    expect(new Set(phases.map((p) => Math.floor(p * 4))).size).toBeGreaterThanOrEqual(3);
  });

  it("snapshots - the table's policy: every N records applied (also right after a long replay), and its interval over the node's", async () => {
    const spec = parseTableSpec({ ...SPEC, snapshot: { records: 3, intervalSeconds: 0 } }, "t");
    const h = harness({ spec, snapshotIntervalMs: 1_000 });
    await settle();
    h.records(entry(1, 10, undefined, spec), entry(2, 10, undefined, spec), entry(3, 10, undefined, spec));
    expect(h.writes).toHaveLength(0); // replaying
    h.caughtUp();
    await settle();
    // Three records since the start: one snapshot as soon as it is live.
    expect(h.writes).toHaveLength(1);
    h.writes[0]!.reject(new Error("object store full"));
    await settle();
    expect(h.state()).toBe("running.live");
    // The table's interval 0 replaces the node's 1 s: no schedule.
    h.clock.increment(5_000);
    await settle();
    expect(h.writes).toHaveLength(1);
    // A failed write waits for as many records again.
    h.records(entry(4, 10, undefined, spec), entry(5, 10, undefined, spec));
    await settle();
    expect(h.writes).toHaveLength(1);
    h.records(entry(6, 10, undefined, spec));
    await settle();
    expect(h.writes).toHaveLength(2);
    expect(h.writes[1]!.input.table.appliedLsn).toBe(6);
  });

  it("snapshots - the table's policy by WAL bytes: once this many payload bytes were applied since the last attempt", async () => {
    const one = entry(1).data.byteLength;
    // Two and a half records' worth: the third record makes it due.
    const spec = parseTableSpec({ ...SPEC, snapshot: { walBytes: Math.floor(one * 2.5), intervalSeconds: 0 } }, "t");
    const h = harness({ spec });
    await settle();
    h.caughtUp();
    h.records(entry(1, 10, undefined, spec), entry(2, 10, undefined, spec));
    await settle();
    expect(h.writes).toHaveLength(0);
    expect(h.stats().walBytes).toBe(entry(1, 10, undefined, spec).data.byteLength + entry(2, 10, undefined, spec).data.byteLength);
    h.records(entry(3, 10, undefined, spec));
    await settle();
    expect(h.writes).toHaveLength(1);
    h.writes[0]!.resolve({ lsn: 3 });
    await settle();
    // Counted from the last attempt: two more records are not enough, the third is.
    h.records(entry(4, 10, undefined, spec), entry(5, 10, undefined, spec));
    await settle();
    expect(h.writes).toHaveLength(1);
    h.records(entry(6, 10, undefined, spec));
    await settle();
    expect(h.writes).toHaveLength(2);
    expect(h.writes[1]!.input.table.appliedLsn).toBe(6);
  });

  it("snapshots - on demand when live; a request while replaying is ignored", async () => {
    const h = harness();
    await settle();
    h.actor.send({ type: "snapshot" });
    expect(h.state()).toBe("running.replaying");
    h.caughtUp();
    h.clock.increment(60_000);
    await settle();
    expect(h.writes).toHaveLength(0); // interval 0: no schedule
    h.actor.send({ type: "snapshot" });
    await settle();
    expect(h.writes).toHaveLength(1);
    h.writes[0]!.resolve({ lsn: 0 });
    await settle();
    expect(h.stats().snapshots).toBe(1);
  });

  it("snapshots - a failed write is counted, the shard stays live and the next one succeeds", async () => {
    const h = await firstScheduledSnapshot();
    h.writes[0]!.reject(new Error("bucket full"));
    await settle();
    expect(h.state()).toBe("running.live");
    expect(h.stats()).toMatchObject({ snapshots: 0, snapshotFailures: 1, lastSnapshotLsn: 0, appliedLsn: 1 });
    h.clock.increment(1_000);
    await settle();
    h.writes[1]!.resolve({ lsn: 1 });
    await settle();
    expect(h.stats()).toMatchObject({ snapshots: 1, snapshotFailures: 1, lastSnapshotLsn: 1 });
  });

  it("drain - stops the WAL consumer and ends the actor, also mid-snapshot", async () => {
    const h = harness();
    await settle();
    h.caughtUp();
    h.actor.send({ type: "snapshot" });
    await settle();
    expect(h.state()).toBe("running.snapshotting");
    h.actor.send({ type: "drain" });
    expect(h.state()).toBe("stopped");
    expect(h.actor.getSnapshot().status).toBe("done");
    expect(h.walStops()).toBe(1);
  });

  it("failure - an unreadable record fails the shard at that LSN; nothing after it applies; drain stops it", async () => {
    const h = harness();
    await settle();
    h.records(entry(1), { lsn: 2, data: new Uint8Array([1, 2, 3]) }, entry(3));
    expect(h.state()).toBe("failed");
    expect(h.actor.getSnapshot().context.error).toMatch(/^WAL record unreadable: the record at LSN 2 of table trades does not decode .*; the shard stopped before it .*pxctl shard skip-record --tenant t --table trades --bucket \d+ --lsn 2$/);
    expect(h.stats().appliedLsn).toBe(1);
    expect(h.walStops()).toBe(1);
    h.actor.send({ type: "drain" });
    expect(h.state()).toBe("stopped");
  });

  it("failure - a record of a newer schema version than the shard's spec fails the shard with both versions named", async () => {
    const h = harness();
    await settle();
    const other = parseTableSpec({ name: "trades", version: 2, columns: SPEC.columns.map((c) => ({ name: c.name, type: c.type })) });
    h.records(entry(1, 10, undefined, other));
    expect(h.state()).toBe("failed");
    expect(h.actor.getSnapshot().context.error).toMatch(/written for version 2 of table trades; this node serves version 1/);
  });

  it("failure - the WAL consumer losing records it needs (fatal) fails the shard with its reason", async () => {
    const h = harness();
    await settle();
    h.caughtUp();
    h.records(entry(1));
    h.walError("records 2-5 are gone", true);
    expect(h.state()).toBe("failed");
    expect(h.actor.getSnapshot().context.error).toBe("WAL consumer failed: records 2-5 are gone");
    expect(h.stats().appliedLsn).toBe(1);
  });

  it("failure - a WAL consumer that breaks (a timeout) is opened again after a growing backoff from the next LSN, and the shard goes live again", async () => {
    const h = harness();
    await settle();
    h.caughtUp();
    h.records(entry(1), entry(2));
    h.walError("timeout");
    expect(h.state()).toBe("walRetry");
    expect(h.actor.getSnapshot().context.error).toBeUndefined();
    h.clock.increment(499);
    await settle();
    expect(h.walStarts).toEqual([1]);
    h.clock.increment(1);
    await settle();
    // Re-read from the record after the last one applied; replaying until it catches up again.
    expect(h.walStarts).toEqual([1, 3]);
    expect(h.state()).toBe("running.replaying");
    // A second failure before catching up waits twice as long.
    h.walError("timeout");
    h.clock.increment(999);
    await settle();
    expect(h.walStarts).toEqual([1, 3]);
    h.clock.increment(1);
    await settle();
    expect(h.walStarts).toEqual([1, 3, 3]);
    h.records(entry(3));
    h.caughtUp();
    expect(h.state()).toBe("running.live");
    expect(h.stats().appliedLsn).toBe(3);
    expect(h.actor.getSnapshot().context.walRetries).toBe(0);
  });
});
