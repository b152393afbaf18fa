// How much a WAL consumer asks the server for at once. Two limits pull against
// each other:
//  - nats-server ends a client connection whose unsent bytes pass its
//    max_pending (64 MB unless configured) as a slow consumer. Pulls of 256
//    messages of 160 KB records (20 k-tick batches) are 41 MB per consumer: a
//    node replaying such a WAL with four shards was cut off within seconds.
//  - nats.js takes a pull bound by bytes or by messages, not both, and bounds a
//    pull by bytes to 100 messages as well. With small records that window
//    starved the sinks: at 150 k ticks/s (records of ~150 ticks) up to 1,546
//    records waited undelivered and the persistence lag p99 was 6 s; pulling by
//    messages, 20 and 0.6 s (bench:sustained, one run each).
// So a consumer pulls by messages when the WAL's records are small enough that
// a window of at least 100 of them stays within PULL_BUDGET_BYTES, and by
// bytes (one max_payload, so every record fits) when they are not.
import type { ConsumeOptions, JetStreamClient } from "@nats-io/jetstream";

/** Room for a message's subject and headers beside its payload. */
export const PULL_HEADROOM_BYTES = 64 * 1024;

/** Bytes one consumer's pulls may leave unsent on the server, at twice the average record size (16 consumers: 64 MB). */
export const PULL_BUDGET_BYTES = 4 * 1024 * 1024;

/** The messages nats.js allows a pull bounded by bytes. */
const BYTES_MODE_MESSAGES = 100;

/**
 * The max_payload of the server `js` is connected to, undefined when unknown.
 * nats.js's client keeps its connection as `nc` (not in its types): a test
 * against a real server (test/wal/pull.int.test.ts) fails if that changes.
 */
export function serverMaxPayload(js: JetStreamClient): number | undefined {
  const n = (js as unknown as { nc?: { info?: { max_payload?: number } } }).nc?.info?.max_payload;
  return typeof n === "number" && n > 0 ? n : undefined;
}

/**
 * Pull options for records of `avgRecordBytes` on average (undefined: none
 * yet, the consumer reads live), at most `maxMessages` at once, from a server
 * whose max_payload is `maxPayload` (undefined: unknown).
 */
export function pullOptions(maxPayload: number | undefined, avgRecordBytes: number | undefined, maxMessages: number): ConsumeOptions {
  // PX_UNSAFE_WAL_PULL_BY_MESSAGES=1 (TESTS ONLY, the negative control of test/wal/pull.int.test.ts): pulls by messages only.
  if (maxPayload === undefined || process.env.PX_UNSAFE_WAL_PULL_BY_MESSAGES === "1") return { max_messages: maxMessages };
  if (avgRecordBytes === undefined || !(avgRecordBytes > 0)) return { max_messages: maxMessages };
  const fit = Math.min(maxMessages, Math.floor(PULL_BUDGET_BYTES / (2 * avgRecordBytes)));
  if (fit >= BYTES_MODE_MESSAGES) return { max_messages: fit };
  return { max_bytes: maxPayload + PULL_HEADROOM_BYTES };
}

/** Pull options of a consumer of WAL stream `stream`: its records' average size read from the stream (one request). */
export async function walPull(js: JetStreamClient, stream: string, maxMessages: number): Promise<ConsumeOptions> {
  let avg: number | undefined;
  try {
    const state = (await (await js.streams.get(stream)).info(true)).state;
    avg = state.messages > 0 ? state.bytes / state.messages : undefined;
  } catch {
    // Unknown: pull as for a live reader; the consumer's own open fails next if the stream is really gone.
  }
  return pullOptions(serverMaxPayload(js), avg, maxMessages);
}
