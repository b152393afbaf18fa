// The compacted records a feed reads back from ClickHouse (./gap.ts) and the
// records the WAL still holds below them, handed over in LSN order: shards
// compact to floors of their own, so the WAL keeps one shard's records below
// another shard's floor, and a feed folds its shards' records in LSN order
// (its runner takes a record below an LSN it has passed for one it folded).
// The WAL's deliveries are read ahead one at a time, and only while some are
// known to be stored already (`stored`): records below the gap were stored
// before the reading began, and the reader never waits for one that may not come.
import type { FeedRecord } from "./operator.js";

export interface MergeInput<M> {
  /** Reads the gap's records in LSN order into `push` (readWalGap, bound to its reader). */
  readonly gap: (push: (rec: FeedRecord) => Promise<void>) => Promise<unknown>;
  /** The WAL consumer's deliveries, from the first record the feed needs. */
  readonly wal: { next(): Promise<IteratorResult<M>> };
  /** How many deliveries were stored before the reading began (the consumer's pending count). */
  readonly stored: number;
  readonly lsnOf: (m: M) => number;
  readonly onGap: (rec: FeedRecord) => Promise<void>;
  readonly onWal: (m: M) => void;
  /** TESTS ONLY (the negative control): false hands every gap record over before any WAL record, as the code before this did. */
  readonly merge?: boolean;
}

/** Hands the gap's records and the WAL's records below them over in LSN order; returns the delivery read ahead and not handed over (the first at or past the gap's end), if any. */
export async function pushMerged<M>(o: MergeInput<M>): Promise<M | undefined> {
  let delivered = 0;
  let ahead: M | undefined;
  const below = async (lsn: number): Promise<M | undefined> => {
    if (ahead === undefined && delivered < o.stored) {
      const r = await o.wal.next();
      if (!r.done) {
        ahead = r.value;
        delivered++;
      }
    }
    if (ahead === undefined || o.lsnOf(ahead) >= lsn) return undefined;
    const m = ahead;
    ahead = undefined;
    return m;
  };
  await o.gap(async (rec) => {
    if (o.merge !== false) for (let m = await below(rec.lsn); m !== undefined; m = await below(rec.lsn)) o.onWal(m);
    await o.onGap(rec);
  });
  return ahead;
}
