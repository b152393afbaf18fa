// Stateful subscriptions whose consumer fell behind, kept for a short while so
// the consumer's resume goes on from their state. A last-by, bars, rolling or
// as-of subscription folds the WAL from its first record to build its state;
// when its call ends for a slow consumer (RESOURCE_EXHAUSTED with an offset)
// and the consumer subscribes again from that offset, folding it all again
// costs as much as the first time (a 1-minute VWAP over 1,000 symbols at
// 100 k ticks/s: seconds of one core), which puts a node that is merely busy
// further behind, and the next resume costs it again. Parked here are the
// runner (its state), the batches it made that were not sent, the last
// batches it sent and the last WAL record it folded: a resume from the offset
// of the last message sent, or of one of those recent ones (a call ending
// with an error may lose the last few on the way), takes them and reads the
// WAL on from that record, so it sends what the call would have sent next.
// Anything else (another offset, the tables' specs changed, expired, taken
// already) folds from the start as before.
import type { TableSpec } from "../../protocols/tablespec.js";
import type { FeedPlan } from "./model.js";
import { feedTables } from "./model.js";
import type { FeedOffset } from "./offset.js";
import type { FeedBatch, FeedRunner } from "./runner.js";

export interface ParkedState {
  readonly tenant: string;
  readonly fingerprint: string;
  /** The specs the state was built under (the catalog's objects: a changed spec is another object). */
  readonly tables: readonly TableSpec[];
  readonly runner: FeedRunner;
  /** Batches made after `at` and not sent, in order. */
  readonly pending: readonly FeedBatch[];
  /** The last WAL sequence folded into the runner. */
  readonly folded: number;
  /** The offset of the last message sent: the one a resume names. */
  readonly at: FeedOffset;
  /**
   * The last batches sent (whole records' updates, oldest first, the last one at `at`): a consumer that did not get
   * the last few (a call ending with an error may drop what the client had not read) resumes from one of theirs.
   */
  readonly recent: readonly FeedBatch[];
}

export interface ParkedFeedsOptions {
  /** How long a parked state waits for its resume (default 30 s). */
  readonly ttlMs?: number;
  /** States kept at most; the oldest goes first (default 8: each may hold a large window). */
  readonly max?: number;
  /** Holds the WAL from `needs` for the tables while parked (the node's compaction must keep what the resume reads); returns the release. */
  readonly hold?: (tenant: string, tables: readonly string[], needs: number) => () => void;
  readonly setTimer?: (fn: () => void, ms: number) => () => void;
}

const sameOffset = (a: FeedOffset, b: FeedOffset): boolean => {
  if (a.feed !== b.feed || a.part !== undefined || b.part !== undefined) return false;
  const ka = Object.keys(a.lsn);
  return ka.length === Object.keys(b.lsn).length && ka.every((k) => a.lsn[k] === b.lsn[k]);
};

const defaultTimer = (fn: () => void, ms: number): (() => void) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

interface Entry {
  readonly state: ParkedState;
  readonly release: () => void;
}

export class ParkedFeeds {
  private readonly entries: Entry[] = [];
  private readonly ttlMs: number;
  private readonly max: number;

  constructor(private readonly o: ParkedFeedsOptions = {}) {
    this.ttlMs = o.ttlMs ?? 30_000;
    this.max = o.max ?? 8;
  }

  /** Keeps `state` until a resume takes it or it expires. */
  park(state: ParkedState): void {
    while (this.entries.length >= this.max) this.drop(this.entries[0]!);
    const unhold = this.o.hold?.(state.tenant, state.tables.map((t) => t.name), state.folded + 1) ?? (() => {});
    let cancel = (): void => {};
    const entry: Entry = {
      state,
      release: () => {
        cancel();
        unhold();
      },
    };
    this.entries.push(entry);
    cancel = (this.o.setTimer ?? defaultTimer)(() => this.drop(entry), this.ttlMs);
  }

  /**
   * The state parked for a resume of `plan` by `tenant` from `from`, removed (one resume takes it), or undefined.
   * From the offset of one of the recent batches, the batches sent after it come first again.
   */
  take(tenant: string, plan: FeedPlan, from: FeedOffset): ParkedState | undefined {
    const tables = feedTables(plan);
    for (const e of this.entries) {
      const s = e.state;
      if (s.tenant !== tenant || s.fingerprint !== plan.fingerprint || s.tables.length !== tables.length || !s.tables.every((t, i) => t === tables[i])) continue;
      // How many of the recent batches the consumer has: all when it names the last offset sent, else up to the one it names.
      const atLast = sameOffset(s.at, from);
      const had = atLast ? s.recent.length : s.recent.findLastIndex((b) => sameOffset(b.offset, from)) + 1;
      if (!atLast && had === 0) continue;
      this.drop(e);
      return { ...s, at: from, pending: [...s.recent.slice(had), ...s.pending], recent: [] };
    }
    return undefined;
  }

  get size(): number {
    return this.entries.length;
  }

  private drop(e: Entry): void {
    const i = this.entries.indexOf(e);
    if (i < 0) return;
    this.entries.splice(i, 1);
    e.release();
  }
}
