// Work kept going while a test (or benchmark) injects a fault: ingest through
// a node kill, an INSERT in flight when ClickHouse stops.
import type { IngestAck } from "../../protocols/ingest.js";
import type { TickPublisher } from "../../src/client/publisher.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";

export interface Running {
  /** Ends every loop after its current step and waits for them. */
  stop(): Promise<void>;
}

/** `loops` concurrent loops, each calling `step` until stop(); `step` handles its own errors. */
export function keepRunning(step: () => Promise<unknown>, loops = 1): Running {
  let go = true;
  const all = Array.from({ length: loops }, async () => {
    while (go) await step();
  });
  return {
    stop: async () => {
      go = false;
      await Promise.all(all);
    },
  };
}

/**
 * Publishes `next()` from `loops` concurrent loops until stop(). Only acknowledged
 * batches count: their acks go to `acks`; a publish that fails for good (a batch
 * caught by a dying node after its retries) is dropped.
 */
export function publishUntilStopped(p: TickPublisher, next: () => TickBatch, acks: IngestAck[], loops = 4): Running {
  return keepRunning(() => p.publish(next()).then((a) => void acks.push(a), () => {}), loops);
}
