// How much a WAL consumer asks the server for at once. nats-server ends a
// client connection whose unsent bytes pass its max_pending (64 MB unless
// configured) as a slow consumer. Pulls of 256 messages of 160 KB records (20 k
// tick batches) are 41 MB per consumer: a node replaying such a WAL with four
// shards was cut off within seconds of starting, and its consumers stalled
// until the stall check reopened them. So a pull is bounded by bytes instead
// (nats.js takes a bound by bytes or by messages, not both): one message of the
// largest size the server takes (max_payload), with room for its subject and
// headers, so every record still fits in a pull; of ~30 KB records that is ~270
// of them at 8 MB, about what 256 messages were.
import type { ConsumeOptions, JetStreamClient } from "@nats-io/jetstream";

/** Room for a message's subject and headers beside its payload. */
export const PULL_HEADROOM_BYTES = 64 * 1024;

/**
 * The max_payload of the server `js` is connected to, undefined when unknown.
 * nats.js's client keeps its connection as `nc` (not in its types): a test
 * against a real server (test/wal/pull.int.test.ts) fails if that changes.
 */
export function serverMaxPayload(js: JetStreamClient): number | undefined {
  const n = (js as unknown as { nc?: { info?: { max_payload?: number } } }).nc?.info?.max_payload;
  return typeof n === "number" && n > 0 ? n : undefined;
}

/** Pull options of a WAL consumer: one largest message's bytes when the server's limit is known, else `maxMessages`. */
export function walPull(js: JetStreamClient, maxMessages: number): ConsumeOptions {
  const maxPayload = serverMaxPayload(js);
  // PX_UNSAFE_WAL_PULL_BY_MESSAGES=1 (TESTS ONLY, the negative control of test/wal/pull.int.test.ts): pulls by messages only.
  if (maxPayload === undefined || process.env.PX_UNSAFE_WAL_PULL_BY_MESSAGES === "1") return { max_messages: maxMessages };
  return { max_bytes: maxPayload + PULL_HEADROOM_BYTES };
}
