// Compaction workflow with fake IO and a simulated clock: scheduled and
// on-demand runs, planning -> purging -> verifying, nothing to purge, a failed
// step backing off and retrying, what it records. And the pure planner: the
// lowest reader bounds the cut, walKeep stays, a repeat purges nothing.
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromPromise } from "xstate";
import { compactorMachine } from "../../actors/compactor.js";
import type { CompactorRecorded, PurgeResult } from "../../actors/compactor.js";
import { planCompaction } from "../../src/wal/index.js";
import type { CompactionPlan } from "../../src/wal/index.js";

const shard = { tenant: "t", table: "trades", bucket: 0 };
const plan = (cut: number): CompactionPlan => ({ shard, cut, neededFrom: cut + 5, neededBy: "the sink (P 104)", persistedLsn: 104, snapshotLsn: 200 });

/** Drains pending promise callbacks (the fake IO resolves at once). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

function harness(o: { plans?: () => CompactionPlan[]; purgeFails?: number; verifyProblems?: string[] } = {}) {
  const clock = new SimulatedClock();
  const purged: CompactionPlan[][] = [];
  const recorded: CompactorRecorded[] = [];
  const onlys: (readonly string[] | undefined)[] = [];
  let purgeFails = o.purgeFails ?? 0;
  const actor = createActor(
    compactorMachine.provide({
      actors: {
        plan: fromPromise<readonly CompactionPlan[], { only: readonly string[] | undefined }>(async ({ input }) => {
          onlys.push(input.only);
          return (o.plans ?? (() => [plan(100)]))();
        }),
        purge: fromPromise<readonly PurgeResult[], { plans: readonly CompactionPlan[] }>(async ({ input }) => {
          if (purgeFails-- > 0) throw new Error("JetStream timeout");
          purged.push([...input.plans]);
          return input.plans.map((p) => ({ plan: p, purged: 7 }));
        }),
        verify: fromPromise<readonly string[], { results: readonly PurgeResult[] }>(async () => o.verifyProblems ?? []),
      },
    }),
    { input: { intervalMs: 60_000, backoffBaseMs: 1_000, backoffMaxMs: 8_000 }, clock },
  );
  actor.on("recorded", (e) => recorded.push(e));
  actor.start();
  return { actor, clock, purged, recorded, onlys };
}

describe("compactor machine", () => {
  it("schedule - idle until the interval, then plans, purges, verifies and records the cut", async () => {
    const h = harness();
    expect(h.actor.getSnapshot().value).toBe("idle");
    h.clock.increment(59_999);
    await settle();
    expect(h.purged).toHaveLength(0);
    h.clock.increment(1);
    await settle();
    expect(h.actor.getSnapshot().value).toBe("idle");
    expect(h.purged).toEqual([[plan(100)]]);
    expect(h.actor.getSnapshot().context.stats).toMatchObject({ runs: 1, purgedRecords: 7, failures: 0 });
    expect(h.recorded.map((r) => r.kind)).toEqual(["compaction.purged"]);
    expect(h.recorded[0]!.message).toMatch(/t\/trades\/0: purge below LSN 100 \(the sink \(P 104\) needs LSN 105\): 7 records purged, verified/);
  });

  it("on demand - compact runs at once, limited to the asked shards; nothing to purge records a skip and purges nothing", async () => {
    const h = harness({ plans: () => [{ ...plan(0), skip: "already compacted below LSN 100" }] });
    h.actor.send({ type: "compact", only: ["t.trades.0"] });
    await settle();
    expect(h.onlys).toEqual([["t.trades.0"]]);
    expect(h.purged).toHaveLength(0);
    expect(h.recorded.map((r) => r.kind)).toEqual(["compaction.skipped"]);
    expect(h.actor.getSnapshot().value).toBe("idle");
  });

  it("backoff - a failed purge backs off exponentially and plans again; success resets the attempt", async () => {
    const h = harness({ purgeFails: 2 });
    h.actor.send({ type: "compact" });
    await settle();
    expect(h.actor.getSnapshot().value).toBe("backoff");
    expect(h.actor.getSnapshot().context.lastError).toBe("purging: JetStream timeout");
    expect(h.recorded.at(-1)!.message).toMatch(/retrying in 1000 ms/);
    h.clock.increment(1_000);
    await settle();
    expect(h.actor.getSnapshot().value).toBe("backoff");
    expect(h.recorded.at(-1)!.message).toMatch(/retrying in 2000 ms/);
    h.clock.increment(1_999);
    await settle();
    expect(h.purged).toHaveLength(0);
    h.clock.increment(1);
    await settle();
    expect(h.purged).toHaveLength(1);
    expect(h.actor.getSnapshot().context).toMatchObject({ attempt: 0, lastError: undefined, stats: { failures: 2, runs: 1 } });
  });

  it("verify - a subject still holding records below its cut is a failure, not a success", async () => {
    const h = harness({ verifyProblems: ["t/trades/0: a record at LSN 3 is still below the cut 100"] });
    h.actor.send({ type: "compact" });
    await settle();
    expect(h.actor.getSnapshot().value).toBe("backoff");
    expect(h.actor.getSnapshot().context.lastError).toMatch(/^verifying: t\/trades\/0: a record at LSN 3/);
  });
});

describe("compaction plan", () => {
  const base = { shard, holds: [], walKeep: 10, compactedBelow: 0 };
  it("plan - the lowest reader bounds the cut: the sink's P, the snapshot, or a hold", () => {
    expect(planCompaction({ ...base, persistedLsn: 500, snapshotLsn: 800 })).toMatchObject({ cut: 491, neededFrom: 501, neededBy: "the sink (P 500)" });
    expect(planCompaction({ ...base, persistedLsn: 900, snapshotLsn: 800 })).toMatchObject({ cut: 791, neededBy: "a replay from the snapshot at LSN 800" });
    expect(planCompaction({ ...base, persistedLsn: 900, snapshotLsn: 800, holds: [300] })).toMatchObject({ cut: 290, neededBy: "hold 1 (LSN 300)" });
  });
  it("plan - walKeepSeconds (as the LSN of the first record within it) keeps records the record margin would let go", () => {
    expect(planCompaction({ ...base, persistedLsn: 500, snapshotLsn: 800, keepFromLsn: 300, walKeepSeconds: 60 })).toMatchObject({ cut: 300 });
    // The record margin keeps more: it decides.
    expect(planCompaction({ ...base, persistedLsn: 500, snapshotLsn: 800, keepFromLsn: 495, walKeepSeconds: 60 })).toMatchObject({ cut: 491 });
    expect(planCompaction({ ...base, persistedLsn: 500, snapshotLsn: 800, keepFromLsn: 1, walKeepSeconds: 60 })).toMatchObject({ cut: 0, skip: "the sink (P 500) needs LSN 501; walKeepSeconds 60 keeps LSN 1 and after" });
  });
  it("plan - nothing without a sink, without a snapshot, or below the last cut", () => {
    expect(planCompaction({ ...base, persistedLsn: 0, snapshotLsn: 800 }).cut).toBe(0);
    expect(planCompaction({ ...base, persistedLsn: 500, snapshotLsn: 0 }).cut).toBe(0);
    expect(planCompaction({ ...base, persistedLsn: 500, snapshotLsn: 800, compactedBelow: 491 })).toMatchObject({ cut: 0, skip: "already compacted below LSN 491" });
  });
});
