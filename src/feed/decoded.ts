// WAL records decoded once per node for every feed reading them: the
// materialized feeds and each open subscription of a table read the same
// records at about the same time; the first reader decodes a record, the others
// take the same batch (feed operators only read a record's batch, never change
// it). Bounded by count, oldest first: a reader far behind decodes again.
import type { TickBatch } from "../codec/tickbatch.js";

export class SharedDecodes {
  private readonly entries = new Map<string, TickBatch>();
  hits = 0;
  misses = 0;

  constructor(private readonly cap = 256) {}

  get size(): number {
    return this.entries.size;
  }

  /** The batch of `tenant`'s WAL record `lsn` of `table` read with spec version `version`; `decode` runs when no reader left it here. */
  get(tenant: string, table: string, version: number, lsn: number, decode: () => TickBatch): TickBatch {
    const key = `${tenant}\u0000${table}\u0000${version}\u0000${lsn}`;
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.hits++;
      return hit;
    }
    this.misses++;
    const b = decode();
    this.entries.set(key, b);
    if (this.entries.size > this.cap) this.entries.delete(this.entries.keys().next().value!);
    return b;
  }
}

/** The node's one cache (feeds and subscriptions of every tenant share it; keys name the tenant). */
export const feedDecodes = new SharedDecodes();
