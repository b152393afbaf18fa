// What open subscriptions (gRPC Subscribe, Flight DoExchange) still need of
// the WAL: each holds its tables from the first record it has not received
// yet, so the node's WAL compaction does not purge records a lagging
// subscriber is about to read. A subscription holds while its call runs; one
// that ended and resumes later from an offset holds nothing in between.
export interface SubscriptionHold {
  readonly tenant: string;
  readonly tables: readonly string[];
  /** The lowest LSN the subscription still needs (the record after the last it received). */
  readonly needs: () => number;
}

export class SubscriptionHolds {
  private readonly open = new Set<SubscriptionHold>();

  /** Registers a running subscription; the function returned ends its hold. */
  add(hold: SubscriptionHold): () => void {
    this.open.add(hold);
    return () => void this.open.delete(hold);
  }

  /** The LSNs from which open subscriptions on `tenant`'s `table` need the WAL. */
  holds(tenant: string, table: string): number[] {
    const out: number[] = [];
    for (const h of this.open) if (h.tenant === tenant && h.tables.includes(table)) out.push(h.needs());
    return out;
  }

  get size(): number {
    return this.open.size;
  }
}
