// The gap check of a WAL reader over JetStream (./gap.ts), on the floor reads
// every reader of the process shares (./sharedfloor.ts): checked once at the
// reader's start (the stream's first sequence and the shard's compaction
// floor) and again before every batch that skipped sequences, with a floor
// read after the batch arrived, so a purge that happened before its delivery
// is seen. Replaces src/node/walgap.ts (one read per reader) for the shard and
// the sink.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { ShardAddress } from "../../protocols/subjects.js";
import { GapTracker, gapAt } from "./gap.js";
import { sharedWalFloors } from "./sharedfloor.js";

export interface WalGapGate {
  /** Rejects with WalGapError when records from `fromLsn` on are already gone. */
  atStart(): Promise<void>;
  /** For consumeBatches: holds a batch that skipped sequences until the stream's floor is read. */
  beforeBatch(firstSeq: number, lastSeq: number): Promise<void> | undefined;
}

/** `off` (TESTS ONLY, the negative control: PX_GAP_CHECK_OFF=1 in the shard host) checks nothing. */
export function sharedWalGapGate(jsm: JetStreamManager, shard: ShardAddress, reader: string, fromLsn: number, off = false): WalGapGate {
  const tracker = new GapTracker(fromLsn);
  if (off) return { atStart: async () => {}, beforeBatch: () => undefined };
  const floors = sharedWalFloors(jsm);
  return {
    atStart: async () => {
      const gap = gapAt(reader, shard, fromLsn, await floors.floorAfterNow(shard));
      if (gap !== undefined) throw gap;
    },
    beforeBatch: (firstSeq, lastSeq) => {
      const expected = tracker.expectedLsn;
      const check = tracker.needsCheck(firstSeq);
      tracker.passed(lastSeq);
      if (!check) return undefined;
      return floors.floorAfterNow(shard).then((floor) => {
        // Only a record the batch skipped can be lost: the floor matters up to the batch's first record.
        const gap = gapAt(reader, shard, expected, { firstSeq: Math.min(floor.firstSeq, firstSeq), compactedBelow: Math.min(floor.compactedBelow, firstSeq) });
        if (gap !== undefined) throw gap;
      });
    },
  };
}
