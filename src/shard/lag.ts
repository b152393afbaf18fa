// Which applied WAL records of a shard are not yet persisted (LSN > P): the
// shard's lag in records, and in time since the WAL took the oldest of them,
// for status, metrics and lag remediation. Mutated in place by the shard
// machine like the hot set itself; O(1) amortised per record, and bounded: past
// `cap` entries the oldest are only counted (and the oldest one's time kept).
export class UnpersistedLsns {
  private lsns: number[] = [];
  /** When the WAL stored each record of `lsns` (ms; 0: not known). */
  private times: number[] = [];
  private head = 0;
  /** Records dropped from the list (all older than those kept), still unpersisted as far as we know. */
  private overflow = 0;
  private lastDropped = 0;
  /** When the WAL stored the oldest dropped record. */
  private overflowAtMs = 0;

  constructor(private readonly cap = 1_000_000) {}

  /** Records applied and not covered by P. */
  get count(): number {
    return this.overflow + this.lsns.length - this.head;
  }

  /** When the WAL stored the oldest record applied and not persisted (ms; 0: none, or not known). */
  get oldestAtMs(): number {
    if (this.overflow > 0) return this.overflowAtMs;
    return this.head < this.times.length ? this.times[this.head]! : 0;
  }

  /** A record was applied (LSNs ascending); `appendedAtMs`: when the WAL stored it (0: not known). */
  push(lsn: number, appendedAtMs = 0): void {
    this.lsns.push(lsn);
    this.times.push(appendedAtMs);
    if (this.lsns.length - this.head > this.cap) {
      const drop = Math.floor(this.cap / 2);
      if (this.overflow === 0) this.overflowAtMs = this.times[this.head]!;
      this.lastDropped = this.lsns[this.head + drop - 1]!;
      this.overflow += drop;
      this.head += drop;
      this.compact();
    }
  }

  /** P advanced: every record with LSN <= p is persisted. */
  prune(p: number): void {
    if (this.overflow > 0 && p >= this.lastDropped) this.overflow = 0;
    while (this.head < this.lsns.length && this.lsns[this.head]! <= p) this.head++;
    this.compact();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.lsns.length) {
      this.lsns = this.lsns.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * A shard's persistence lag in ms: the age of the oldest record the WAL took
 * and ClickHouse does not hold yet. The sink only sees records delivered to it
 * (`sinkLagMs`); records still waiting in the WAL for its consumer, or dropped
 * when it went back to recovery, it cannot see, while the shard applied them:
 * their age comes from the WAL's own append time (`oldestUnpersistedAtMs`, 0
 * when none).
 */
export function persistenceLagMs(oldestUnpersistedAtMs: number, sinkLagMs: number, nowMs: number): number {
  return Math.max(sinkLagMs, oldestUnpersistedAtMs > 0 ? Math.max(0, nowMs - oldestUnpersistedAtMs) : 0);
}
