// The small slice of a JetStream KV bucket the control plane needs, so that the
// lease, heartbeat and assignment stores are written once and run both against
// NATS (natskv.ts) and against an in-memory bucket in unit tests (memorykv.ts).
import { TaggedError } from "../../protocols/tagged.js";

/** One current value of a key. `revision` is the bucket's stream sequence of the write. */
export interface KvRecord {
  readonly key: string;
  readonly value: Uint8Array;
  readonly revision: number;
  /** Server time of the write, milliseconds since the epoch (display only: clocks differ). */
  readonly createdMs: number;
}

/** A change seen by a watcher: a new value, or a delete (`value` undefined). */
export interface KvChange {
  readonly key: string;
  readonly value: Uint8Array | undefined;
  readonly revision: number;
  readonly createdMs: number;
}

export interface ControlKv {
  readonly bucket: string;
  /** The current value; undefined when the key never existed or was deleted. */
  get(key: string): Promise<KvRecord | undefined>;
  /** Every current value (deleted keys left out). */
  list(): Promise<KvRecord[]>;
  /** Writes only if the key has no current value; KvConflictError otherwise. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key's current revision is `revision`; KvConflictError otherwise. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  put(key: string, value: Uint8Array): Promise<number>;
  /** Deletes the key; with `revision`, only if that is still its current revision (KvConflictError otherwise). */
  delete(key: string, revision?: number): Promise<void>;
  /**
   * Writes (or deletes, when `value` is undefined) only if the newest revision in
   * the whole bucket is `lastRevision`: a single writer that tracks the
   * revisions it wrote is fenced the moment anyone else writes. KvConflictError otherwise.
   */
  writeIfBucketAt(key: string, value: Uint8Array | undefined, lastRevision: number): Promise<number>;
  /** The newest revision in the bucket (0 when nothing was ever written). */
  lastRevision(): Promise<number>;
  /**
   * Calls `onChange` with every current value, then `onSynced` once, then with
   * every later change, until the returned stop is called. If the watcher
   * breaks (its consumer is gone, the iterator failed) `onError` is called once
   * and nothing more is delivered: the caller re-opens the watch to resync.
   * A watcher that stalls (no error, nothing delivered while the bucket moves
   * on) counts as broken too, unless `o.fillStalls`: then the gap is read
   * from the stream and the watch goes on (no consumer is created, so this
   * works while JetStream elects a meta leader, when a re-open would fail).
   */
  watch(onChange: (change: KvChange) => void, onSynced?: () => void, onError?: (e: KvWatchError) => void, o?: WatchOptions): Promise<() => void>;
}

export interface WatchOptions {
  /** A stalled watcher's gap is filled from the stream instead of reported to onError (see ControlKv.watch). */
  readonly fillStalls?: boolean;
}

/**
 * The control plane's watches (px_assign, px_nodes, px_placement): a stall is
 * filled from the stream, since a re-open needs a consumer and so the JetStream
 * meta leader, and the leader judging heartbeats (or an agent waiting for a
 * failover) cannot be blind for an election; a watcher that ends or fails is
 * re-opened (src/control/watchactor.ts).
 */
export const STALLS: WatchOptions = { fillStalls: true };

/** A KV watcher stopped delivering without being asked to: re-open it to resync. */
export class KvWatchError extends TaggedError("KvWatchError") {}

/** A compare-and-set lost: someone else wrote first. */
export class KvConflictError extends TaggedError("KvConflictError") {}

/** NATS and the memory bucket report a failed expectation with these words. */
export function isConflict(e: unknown): boolean {
  if (e instanceof KvConflictError) return true;
  const msg = e instanceof Error ? e.message : String(e);
  return /wrong last sequence|wrong last msg|key exists|10071|10164/i.test(msg);
}

export const utf8 = {
  encode: (s: string): Uint8Array => new TextEncoder().encode(s),
  decode: (b: Uint8Array): string => new TextDecoder().decode(b),
};

export const jsonValue = {
  encode: (v: unknown): Uint8Array => utf8.encode(JSON.stringify(v)),
  decode: <T>(b: Uint8Array): T => JSON.parse(utf8.decode(b)) as T,
};
