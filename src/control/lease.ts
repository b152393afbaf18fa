// Leader lease in KV px_leader: one record, renewed by its holder with
// compare-and-set on the revision it last wrote. Contenders never trust a
// clock they do not own: a lease is expired when its revision has not changed
// for a full lease period measured on the contender's own clock (KV TTL is not
// used; on nats-server 2.9 it is unreliable for R3 buckets).
// Writes expect the bucket's last revision, not the key's: px_leader holds only
// this key, so both are the same number, but only the bucket-wide check is
// serialized by the stream leader on nats-server < 2.10 R3 (nats-server#4320:
// two concurrent kv.update()s of one key can both succeed there).
import { jsonValue } from "./kv.js";
import type { ControlKv } from "./kv.js";

export const LEASE_KEY = "controller";

export interface LeaseRecord {
  /** Controller id of the holder; "" once released. */
  readonly holder: string;
  /** Bumped by every takeover; assignments carry the term that wrote them. */
  readonly term: number;
  /** How long contenders must see no renewal before taking over. */
  readonly leaseMs: number;
  /** The holder's clock at the write (display only). */
  readonly renewedAtMs: number;
}

export interface StoredLease {
  readonly record: LeaseRecord;
  readonly revision: number;
  /** NATS server time of the write (display only). */
  readonly createdMs?: number;
}

/** What a contender has seen of the lease: the revision and when (own clock) it first saw it. */
export interface LeaseObservation {
  readonly lease: StoredLease | undefined;
  readonly firstSeenAt: number;
}

export function observeLease(prev: LeaseObservation | undefined, read: StoredLease | undefined, now: number): LeaseObservation {
  if (prev && read && prev.lease?.revision === read.revision) return { lease: read, firstSeenAt: prev.firstSeenAt };
  return { lease: read, firstSeenAt: now };
}

export type LeaseVerdict = "free" | "held" | "expired";

/** `leaseMs` is the contender's own setting; the longer of it and the holder's wins. */
export function leaseVerdict(obs: LeaseObservation, now: number, leaseMs: number): LeaseVerdict {
  const lease = obs.lease;
  if (!lease || lease.record.holder === "") return "free";
  return now - obs.firstSeenAt >= Math.max(leaseMs, lease.record.leaseMs) ? "expired" : "held";
}

export class LeaseStore {
  constructor(
    private readonly kv: ControlKv,
    private readonly key = LEASE_KEY,
  ) {}

  async read(): Promise<StoredLease | undefined> {
    const r = await this.kv.get(this.key);
    return r && { record: jsonValue.decode<LeaseRecord>(r.value), revision: r.revision, createdMs: r.createdMs };
  }

  /** Takes the lease over the revision the caller observed (0: the bucket was empty). KvConflictError when it changed. */
  acquire(record: LeaseRecord, observedRevision: number): Promise<number> {
    return this.kv.writeIfBucketAt(this.key, jsonValue.encode(record), observedRevision);
  }

  /** Renews over the revision the holder last wrote. KvConflictError: someone took the lease. */
  renew(record: LeaseRecord, revision: number): Promise<number> {
    return this.kv.writeIfBucketAt(this.key, jsonValue.encode(record), revision);
  }

  /** Hands the lease back so a contender need not wait for it to expire. */
  async release(record: LeaseRecord, revision: number): Promise<void> {
    await this.kv.writeIfBucketAt(this.key, jsonValue.encode({ ...record, holder: "" }), revision);
  }
}
