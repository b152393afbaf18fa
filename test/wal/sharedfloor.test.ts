// The floor reads every WAL reader of a node shares: the stream's state is read
// for each check, the shard's compaction floor only when the stream shows that
// records were removed since it was last read. A fake WAL stream with
// compaction (write the floor, then purge) and hand purges at its start.
import { describe, expect, it } from "vitest";
import { SharedWalFloors } from "../../src/wal/sharedfloor.js";
import { gapAt } from "../../src/wal/gap.js";
import type { ShardAddress } from "../../protocols/subjects.js";

const S0: ShardAddress = { tenant: "t", table: "trades", bucket: 0 };
const S1: ShardAddress = { tenant: "t", table: "trades", bucket: 1 };

/** A tenant's WAL as the floor reads see it, counting the reads. */
function fakeWal() {
  const floors = new Map<number, number>();
  const w = {
    firstSeq: 1,
    removed: 0,
    streamReads: 0,
    compactionReads: 0,
    /** Compaction: the floor recorded first, the shard's records below it purged after. */
    writeFloor: (bucket: number, below: number) => floors.set(bucket, below),
    purge: (records: number) => (w.removed += records),
    reads: {
      streamFloor: async () => (w.streamReads++, { firstSeq: w.firstSeq, removed: w.removed }),
      compactionFloor: async (s: ShardAddress) => (w.compactionReads++, floors.get(s.bucket) ?? 0),
    },
  };
  return w;
}

describe("wal shared floors", () => {
  it("floors - nothing removed: the stream is read for every check, the compaction floor once per shard", async () => {
    const w = fakeWal();
    const f = new SharedWalFloors(w.reads);
    for (let i = 0; i < 50; i++) {
      expect(await f.floorAfterNow(S0)).toEqual({ firstSeq: 1, compactedBelow: 0 });
      expect(await f.floorAfterNow(S1)).toEqual({ firstSeq: 1, compactedBelow: 0 });
    }
    expect([w.streamReads, w.compactionReads]).toEqual([100, 2]);
  });

  it("floors - compaction (floor written, then purged) is seen by the next check, and a reader behind the floor gets its gap", async () => {
    const w = fakeWal();
    const f = new SharedWalFloors(w.reads);
    await f.floorAfterNow(S0);
    await f.floorAfterNow(S1);
    // Written and not purged yet: nothing is gone, the old floor still tells every gap.
    w.writeFloor(0, 500);
    expect((await f.floorAfterNow(S0)).compactedBelow).toBe(0);
    w.purge(120);
    const floor = await f.floorAfterNow(S0);
    expect(floor.compactedBelow).toBe(500);
    expect(gapAt("the sink", S0, 300, floor)?.message).toMatch(/compaction purged the shard's WAL below LSN 500/);
    // Another shard's floor is read again too (a purge anywhere in the tenant's stream), once.
    expect((await f.floorAfterNow(S1)).compactedBelow).toBe(0);
    await f.floorAfterNow(S1);
    expect(w.compactionReads).toBe(4);
  });

  it("floors - records dropped at the stream's start (first sequence moves, removed may fall): read again", async () => {
    const w = fakeWal();
    const f = new SharedWalFloors(w.reads);
    await f.floorAfterNow(S0);
    w.writeFloor(0, 90);
    w.firstSeq = 40;
    expect(await f.floorAfterNow(S0)).toEqual({ firstSeq: 40, compactedBelow: 90 });
    expect(w.compactionReads).toBe(2);
  });

  it("floors - a check that saw the purge never takes the floor of a read made before it", async () => {
    const w = fakeWal();
    let release: (() => void) | undefined;
    // The first compaction read is slow: it started before the floor was written and answers after the purge.
    const slow = {
      streamFloor: w.reads.streamFloor,
      compactionFloor: async (s: ShardAddress) => {
        const v = await w.reads.compactionFloor(s);
        if (w.compactionReads === 1) await new Promise<void>((r) => (release = r));
        return v;
      },
    };
    const f = new SharedWalFloors(slow);
    const first = f.floorAfterNow(S0);
    await new Promise((r) => setImmediate(r));
    w.writeFloor(0, 700);
    w.purge(10);
    const second = f.floorAfterNow(S0);
    await new Promise((r) => setImmediate(r));
    release!();
    expect((await first).compactedBelow).toBe(0);
    expect((await second).compactedBelow).toBe(700);
    // And what the first stored does not stand for the purged stream.
    expect((await f.floorAfterNow(S0)).compactedBelow).toBe(700);
  });
});
