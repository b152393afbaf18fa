// Producer pairs: a (Px-Producer-Id, Px-Producer-Seq) pair names one batch. The
// WAL's dedup works per record (Nats-Msg-Id = producer:seq:table:bucket), so on
// its own a reused pair with other data would be stored where it routes to new
// buckets and dropped as a duplicate where it routes to old ones.
//
// So the first record of a batch is appended alone, under a pair-level
// Nats-Msg-Id (`producer:seq`; the stream is the tenant's, so the pair is per
// tenant) and with the SHA-256 of all the batch's records in a header; the rest
// follow with their per-bucket ids. JetStream's own duplicate window (2 minutes)
// then decides: a first record that is not a duplicate makes the pair ours; a
// duplicate names the stored original, whose digest tells a retry of the same
// batch (the rest is appended, JetStream stores what is missing once) from a
// reuse with other data (refused: its first record was dropped as a duplicate
// and the rest is never sent, so nothing of it is stored). That costs no extra
// write per batch, one extra read only on a duplicate, and one round trip of
// latency before the other records of a multi-bucket batch go out.
import { createHash } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Producer, WalAppendPlan } from "../../ingest/prepare.js";
import { HDR_BATCH_DIGEST } from "../../../protocols/subjects.js";
import { TaggedError } from "../../../protocols/tagged.js";

/** JetStream's duplicate window on the WAL streams (src/wal/streams.ts): past it a pair may be reused. */
export const PAIR_WINDOW_S = 120;

export class PairReusedError extends TaggedError("PairReusedError") {}

/** The batch's fingerprint: its WAL records (subject and bytes), in bucket order. */
export function recordsDigest(plans: readonly WalAppendPlan[]): string {
  const h = createHash("sha256");
  for (const p of plans) {
    h.update(p.subject);
    h.update("\0");
    h.update(p.record);
  }
  return h.digest("hex");
}

/** The Nats-Msg-Id of a batch's first record: the pair alone, whatever table or bucket it goes to. */
export const pairMsgId = (producer: Producer): string => `${producer.id}:${producer.seq}`;

export const pairReused = (tenant: string, table: string, producer: Producer): PairReusedError =>
  new PairReusedError(
    `tenant ${tenant} table ${table}: producer ${producer.id} seq ${producer.seq} was already used for a different batch (within the last ${PAIR_WINDOW_S} s); ` +
      `a retry must resend the same batch unchanged, a new batch needs a new Px-Producer-Seq. Nothing of this batch was stored`,
  );

/** Reads the batch digest stored with a WAL record (undefined when the record or its header is gone). */
export type DigestAt = (stream: string, seq: number) => Promise<string | undefined>;

export function jetstreamDigestAt(js: JetStreamClient): DigestAt {
  return async (stream, seq) => {
    const jsm = await js.jetstreamManager();
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    return m?.header?.get(HDR_BATCH_DIGEST) || undefined;
  };
}
