// Which applied WAL records of a shard are not yet persisted (LSN > P): the
// shard's lag in records, for status and metrics. Mutated in place by the shard
// machine like the hot set itself; O(1) amortised per record, and bounded: past
// `cap` entries the oldest are only counted.
export class UnpersistedLsns {
  private lsns: number[] = [];
  private head = 0;
  /** Records dropped from the list (all older than those kept), still unpersisted as far as we know. */
  private overflow = 0;
  private lastDropped = 0;

  constructor(private readonly cap = 1_000_000) {}

  /** Records applied and not covered by P. */
  get count(): number {
    return this.overflow + this.lsns.length - this.head;
  }

  /** A record was applied (LSNs ascending). */
  push(lsn: number): void {
    this.lsns.push(lsn);
    if (this.lsns.length - this.head > this.cap) {
      const drop = Math.floor(this.cap / 2);
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
      this.head = 0;
    }
  }
}
