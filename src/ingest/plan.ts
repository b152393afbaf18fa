// The shapes of a prepared batch: what the gateway appends to the WAL. Kept apart
// from prepare.ts so the fast path and the general path both use them without
// importing each other.

export interface Producer {
  readonly id: string;
  readonly seq: bigint;
  /**
   * true when the node made the pair up (the client sent none): unique per
   * batch by construction, so the pair-reuse check is not needed; it only makes
   * the gateway's own retries of the batch idempotent.
   */
  readonly generated?: boolean;
}

export interface WalAppendPlan {
  readonly bucket: number;
  readonly subject: string;
  /** Nats-Msg-Id; undefined when the publisher gave no producer id (no dedup). */
  readonly msgId: string | undefined;
  readonly rows: number;
  readonly record: Uint8Array;
}

export interface PreparedBatch {
  readonly tenant: string;
  readonly table: string;
  readonly rows: number;
  readonly appends: readonly WalAppendPlan[];
}

/** Tick times a table accepts right now, in microseconds, both ends inclusive (see plausible.ts). */
export interface TimeWindow {
  readonly minMicros: number;
  readonly maxMicros: number;
}
