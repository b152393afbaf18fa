// Batching of a WAL consumer's deliveries, shared by the shard's ordered
// consumer and the sink's durable one: records are handed over in order, in
// batches of at most `maxBatch`, as soon as the server has nothing more pending
// or on the next turn of the event loop (a trickle is never held back waiting
// for a full batch, a burst is not handed over one record at a time).
import type { JsMsg } from "@nats-io/jetstream";

export interface ConsumeBatchesOptions<T> {
  /** Records handed over per batch at most. */
  readonly maxBatch: number;
  /** True once the reader stopped: nothing more is handed over. */
  readonly stopped: () => boolean;
  /**
   * The record of a message; undefined skips it (e.g. a redelivery). A throw
   * hands over the records before it, then ends the loop with that error.
   */
  readonly read: (m: JsMsg) => T | undefined;
  readonly onBatch: (records: T[]) => void;
  /** Called after a delivery that left nothing pending on the server (the reader is caught up). */
  readonly onCaughtUp?: () => void;
}

/** Reads `messages` until they end or the reader stops; resolves after the last batch is handed over. */
export async function consumeBatches<T>(messages: AsyncIterable<JsMsg>, o: ConsumeBatchesOptions<T>): Promise<void> {
  let pending: T[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0 || o.stopped()) return;
    const records = pending;
    pending = [];
    o.onBatch(records);
  };
  for await (const m of messages) {
    if (o.stopped()) break;
    let r: T | undefined;
    try {
      r = o.read(m);
    } catch (e) {
      flush();
      throw e;
    }
    if (r === undefined) continue;
    pending.push(r);
    const caughtUp = m.info.pending === 0;
    if (pending.length >= o.maxBatch || caughtUp) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    if (caughtUp) o.onCaughtUp?.();
  }
  flush();
}
