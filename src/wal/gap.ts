// Gap safety of WAL readers. A reader (a shard replaying, a sink persisting)
// that expects its next record at LSN E must not go on when records it needs
// are gone: a hand purge, a limit that dropped records, or a compaction
// floor above E (e.g. a shard falling back to an older snapshot). The WAL
// stream keeps an anchor record at its start (walAnchorSubject), so its
// first sequence only moves when someone else removed records: any first
// sequence above E is a gap. Readers check before they hand over a batch
// that skipped sequences, and at start.
import { TaggedError } from "../../protocols/tagged.js";
import type { ShardAddress } from "../../protocols/subjects.js";

/** Records a reader needs are gone from the WAL: the reader stops instead of going past lost data. */
export class WalGapError extends TaggedError("WalGapError") {}

/** What the WAL holds as seen by a reader of one shard. */
export interface WalFloor {
  /** The stream's first stored sequence now. */
  readonly firstSeq: number;
  /** Compaction purged the shard's subject below this sequence (0: never compacted). */
  readonly compactedBelow: number;
}

/**
 * Undefined when every record of `shard` from `expectedLsn` on can still be
 * read; otherwise the gap error (naming the reader, the missing range and what
 * to do).
 */
export function gapAt(reader: string, shard: ShardAddress, expectedLsn: number, floor: WalFloor): WalGapError | undefined {
  const name = `${shard.tenant}/${shard.table}/${shard.bucket}`;
  if (floor.compactedBelow > expectedLsn) {
    return new WalGapError(
      `WAL gap: ${reader} of shard ${name} needs records from LSN ${expectedLsn}, but compaction purged the shard's WAL below LSN ${floor.compactedBelow} (the snapshot or P it was compacted against is not the one this reader starts from); the reader stopped instead of going past lost data: restore the newest snapshot, or rebuild the shard from ClickHouse`,
    );
  }
  if (floor.firstSeq > expectedLsn) {
    return new WalGapError(
      `WAL gap: ${reader} of shard ${name} needs records from LSN ${expectedLsn}, but the WAL stream now starts at LSN ${floor.firstSeq} (records were purged by hand or dropped by a limit, not by Proxist's compaction); the reader stopped instead of going past lost data: re-publish the lost range from the source, then restart the shard`,
    );
  }
  return undefined;
}

/**
 * Follows a reader's position over batches: `needsCheck` says whether a batch
 * starting at `firstLsn` skipped sequences (records of other shards interleave,
 * so a skip alone is no gap; only the stream's floor tells).
 */
export class GapTracker {
  private expected: number;

  constructor(fromLsn: number) {
    this.expected = fromLsn;
  }

  get expectedLsn(): number {
    return this.expected;
  }

  needsCheck(firstLsn: number): boolean {
    return firstLsn > this.expected;
  }

  /** After a batch was handed over: the next record is expected after its last LSN. */
  passed(lastLsn: number): void {
    if (lastLsn + 1 > this.expected) this.expected = lastLsn + 1;
  }
}

/** The WAL refused an append because a limit is reached: the cause to name in RESOURCE_EXHAUSTED, or undefined. */
export function walFullCause(message: string): string | undefined {
  if (/maximum bytes exceeded|maximum messages exceeded|maximum messages per subject exceeded/i.test(message)) {
    return "the WAL stream reached its byte limit (max_bytes, discard new)";
  }
  if (/insufficient (storage )?resources|resource limits exceeded|no space left|storage.*exceeded/i.test(message)) {
    return "JetStream has no storage left for the WAL (the server's or account's store is full)";
  }
  return undefined;
}
