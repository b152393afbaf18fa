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
  /** Called after a delivery that left nothing pending on the server (the reader is caught up), after its batch was handed over. */
  readonly onCaughtUp?: () => void;
  /**
   * Asked when a batch is complete, with the stream sequences it spans: a
   * promise holds the batch (and every later one, in order) until it resolves;
   * a rejection hands nothing more over and ends the loop with that error
   * (the gap check, ./gap.ts). Undefined lets the batch through at once.
   */
  readonly beforeBatch?: (firstSeq: number, lastSeq: number) => Promise<void> | undefined;
  /** Called once when a beforeBatch promise rejected: the caller stops `messages` so the loop ends with the error. */
  readonly onRefused?: () => void;
}

const ignore = (): void => {};

/** Reads `messages` until they end or the reader stops; resolves after the last batch is handed over. */
export async function consumeBatches<T>(messages: AsyncIterable<JsMsg>, o: ConsumeBatchesOptions<T>): Promise<void> {
  let pending: T[] = [];
  let firstSeq = 0;
  let lastSeq = 0;
  let scheduled = false;
  // Batches held by a beforeBatch promise, handed over in order once it resolves.
  let held: Promise<void> | undefined;
  let heldCount = 0;
  let failure: { error: unknown } | undefined;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0 || o.stopped() || failure !== undefined) return;
    const records = pending;
    pending = [];
    const gate = o.beforeBatch?.(firstSeq, lastSeq);
    if (gate === undefined && held === undefined) {
      o.onBatch(records);
      return;
    }
    // The chain only reaches this gate once the batches before it are handed over; a gate that
    // rejects earlier (every pending floor read times out at once after the process was stopped)
    // must not count as unhandled meanwhile: Node would end the process for it.
    gate?.catch(ignore);
    heldCount++;
    held = (held ?? Promise.resolve())
      .then(() => gate)
      .then(
        () => {
          if (!o.stopped() && failure === undefined) o.onBatch(records);
        },
        (error: unknown) => {
          if (failure !== undefined) return;
          failure = { error };
          o.onRefused?.();
        },
      )
      .finally(() => {
        if (--heldCount === 0) held = undefined;
      });
  };
  // Runs `f` after every batch held so far is handed over: "caught up" must never
  // overtake the records it covers (a shard would go live without them).
  const afterHeld = (f: () => void): void => {
    if (held === undefined) return f();
    heldCount++;
    held = held
      .then(() => {
        if (!o.stopped() && failure === undefined) f();
      })
      .finally(() => {
        if (--heldCount === 0) held = undefined;
      });
  };
  for await (const m of messages) {
    if (failure !== undefined) throw failure.error;
    if (o.stopped()) break;
    let r: T | undefined;
    try {
      r = o.read(m);
    } catch (e) {
      flush();
      throw e;
    }
    if (r === undefined) continue;
    if (pending.length === 0) firstSeq = m.seq;
    lastSeq = m.seq;
    pending.push(r);
    const caughtUp = m.info.pending === 0;
    if (pending.length >= o.maxBatch || caughtUp) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    if (caughtUp) afterHeld(() => o.onCaughtUp?.());
  }
  flush();
  if (held !== undefined) await held;
  if (failure !== undefined) throw failure.error;
}
