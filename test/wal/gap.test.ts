// Gap safety of WAL readers (pure parts): the gap decision, the position
// tracking over batches, the classification of a full WAL, and the batching
// hook that holds a batch until its check passed.
import { describe, expect, it } from "vitest";
import type { JsMsg } from "@nats-io/jetstream";
import { GapTracker, WalGapError, consumeBatches, gapAt, walFullCause } from "../../src/wal/index.js";
import { parseBytes, storeLimits } from "../../src/config/limits.js";

const shard = { tenant: "t", table: "trades", bucket: 2 };

async function* deliveries(seqs: number[]): AsyncIterable<JsMsg> {
  for (const [i, seq] of seqs.entries()) yield { seq, data: new Uint8Array(), info: { pending: seqs.length - 1 - i } } as unknown as JsMsg;
}

describe("WAL gap", () => {
  it("gap - none while the stream starts at or below what the reader expects and compaction stayed below it", () => {
    expect(gapAt("the sink", shard, 10, { firstSeq: 1, compactedBelow: 0 })).toBeUndefined();
    expect(gapAt("the sink", shard, 10, { firstSeq: 10, compactedBelow: 10 })).toBeUndefined();
  });

  it("gap - a stream starting above the expected LSN, or a compaction floor above it, is a named gap", () => {
    const purged = gapAt("the sink", shard, 10, { firstSeq: 40, compactedBelow: 0 });
    expect(purged).toBeInstanceOf(WalGapError);
    expect(purged!.message).toMatch(/WAL gap: the sink of shard t\/trades\/2 needs records from LSN 10, but the WAL stream now starts at LSN 40 \(records were purged by hand/);
    const compacted = gapAt("the hot set", shard, 10, { firstSeq: 1, compactedBelow: 20 });
    expect(compacted!.message).toMatch(/compaction purged the shard's WAL below LSN 20/);
  });

  it("tracker - only a batch that skipped sequences needs a check; the position follows the batches", () => {
    const t = new GapTracker(5);
    expect(t.needsCheck(5)).toBe(false);
    t.passed(9);
    expect(t.expectedLsn).toBe(10);
    expect(t.needsCheck(12)).toBe(true);
  });

  it("batches - a batch is held until its check passes, a refused check ends the loop with the error and hands nothing more over", async () => {
    const handed: number[][] = [];
    const checks: [number, number][] = [];
    const err = new WalGapError("WAL gap: test");
    const run = consumeBatches<number>(deliveries([1, 2, 7, 8]), {
      maxBatch: 2,
      stopped: () => false,
      read: (m) => m.seq,
      onBatch: (r) => void handed.push(r),
      beforeBatch: (first, last) => {
        checks.push([first, last]);
        return first === 7 ? Promise.reject(err) : undefined;
      },
    });
    await expect(run).rejects.toBe(err);
    expect(checks).toEqual([
      [1, 2],
      [7, 8],
    ]);
    expect(handed).toEqual([[1, 2]]);
  });

  it("WAL full - JetStream's limit errors are named, other failures are not", () => {
    expect(walFullCause("JetStream refused the append to px.t.wal.trades.0: maximum bytes exceeded (code 10077)")).toMatch(/byte limit/);
    expect(walFullCause("insufficient resources")).toMatch(/no storage left/);
    expect(walFullCause("TIMEOUT")).toBeUndefined();
  });

  it("limits - byte sizes parse with K/M/G; a bad value names the variable and the form", () => {
    expect(parseBytes("PX_WAL_MAX_BYTES", "512M")).toBe(512 * 1024 * 1024);
    expect(storeLimits({ PX_WAL_MAX_BYTES: "2G" }).walMaxBytes).toBe(2 * 1024 ** 3);
    expect(() => parseBytes("PX_WAL_MAX_BYTES", "lots")).toThrow(/PX_WAL_MAX_BYTES="lots": expected a byte count such as 1073741824, 512M or 4G/);
  });
});
