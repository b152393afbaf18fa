// Watermark events over JetStream: the sink publishes (P, T_persisted, lease
// revision) on px.<tenant>.wm.<table>.<bucket> after each verified batch; the
// stream keeps the last one per subject, so a restarted sink resumes from it
// and a shard (on any node) follows it to evict. The sink's publishing actor
// is in src/node/sink/announcer.ts.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { DeliverPolicy } from "@nats-io/jetstream";
import { decodeWatermark, encodeWatermark } from "../../protocols/codec.js";
import { watermarkStream, watermarkSubject } from "../../protocols/subjects.js";
import type { ShardAddress } from "../../protocols/subjects.js";

export interface WatermarkEvent {
  readonly persistedLsn: number;
  readonly tPersistedMicros: number;
  readonly leaseRevision: number;
  readonly emittedAtMicros: number;
}

function toEvent(bytes: Uint8Array): WatermarkEvent {
  const w = decodeWatermark(bytes);
  return {
    persistedLsn: Number(w.persistedLsn),
    tPersistedMicros: Number(w.tPersistedMicros),
    leaseRevision: Number(w.leaseRevision),
    emittedAtMicros: Number(w.emittedAtMicros),
  };
}

/** Publishes one watermark (awaits the stream's ack). */
export async function publishWatermark(js: JetStreamClient, shard: ShardAddress, w: Omit<WatermarkEvent, "emittedAtMicros">, nowMs: number): Promise<void> {
  const payload = encodeWatermark({
    tenant: shard.tenant,
    table: shard.table,
    bucket: shard.bucket,
    persistedLsn: BigInt(w.persistedLsn),
    tPersistedMicros: BigInt(Math.trunc(w.tPersistedMicros)),
    emittedAtMicros: BigInt(Math.trunc(nowMs * 1000)),
    leaseRevision: BigInt(w.leaseRevision),
  });
  await js.publish(watermarkSubject(shard.tenant, shard.table, shard.bucket), payload);
}

/** The shard's last watermark, or undefined when none was ever published. */
export async function lastWatermark(jsm: JetStreamManager, shard: ShardAddress): Promise<WatermarkEvent | undefined> {
  try {
    const m = await jsm.streams.getMessage(watermarkStream(shard.tenant), { last_by_subj: watermarkSubject(shard.tenant, shard.table, shard.bucket) });
    return m === null ? undefined : toEvent(m.data);
  } catch (e) {
    if (/no message found|not found/i.test((e as Error).message)) return undefined;
    throw e;
  }
}

/**
 * Follows the shard's watermarks, starting with the last one stored; calls
 * `onWatermark` for each. Returns a function that stops following.
 */
export function followWatermarks(
  js: JetStreamClient,
  shard: ShardAddress,
  onWatermark: (w: WatermarkEvent) => void,
  onError: (e: Error) => void,
): () => void {
  let stopped = false;
  let stop: (() => void) | undefined;
  void (async () => {
    const consumer = await js.consumers.get(watermarkStream(shard.tenant), {
      filter_subjects: watermarkSubject(shard.tenant, shard.table, shard.bucket),
      deliver_policy: DeliverPolicy.LastPerSubject,
    });
    if (stopped) return;
    const messages = await consumer.consume({ max_messages: 64 });
    stop = () => void messages.stop();
    if (stopped) stop();
    for await (const m of messages) {
      if (stopped) break;
      let w: WatermarkEvent;
      try {
        w = toEvent(m.data);
      } catch (e) {
        // An unreadable watermark is skipped: the next one supersedes it.
        onError(e as Error);
        continue;
      }
      onWatermark(w);
    }
  })().catch((e: unknown) => {
    if (!stopped) onError(e as Error);
  });
  return () => {
    stopped = true;
    stop?.();
  };
}
