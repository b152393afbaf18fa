// Asking the WAL where a producer stands (px.<t>.ingest._status): after an
// outage longer than the WAL's duplicate window (2 minutes), resending a batch
// that was stored makes a second copy, so a publisher asks first and continues
// after the highest seq the WAL holds.
import type { NatsConnection } from "@nats-io/transport-node";
import type { IngestStatusAnswer, IngestStatusReply, ProducerStatus } from "../../protocols/ingest.js";
import { ingestStatusSubject } from "../../protocols/subjects.js";
import { TaggedError } from "../../protocols/tagged.js";

/** The node refused the status request (`code` as in ingest nacks); the message names the input and the fix. */
export class IngestStatusError extends TaggedError("IngestStatusError") {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The tenant's producers as the WAL holds them (only `producerId` when given). Throws IngestStatusError on a refusal. */
export async function ingestStatus(nc: NatsConnection, tenant: string, producerId?: string, timeoutMs = 30_000): Promise<IngestStatusAnswer> {
  const body = producerId === undefined ? new Uint8Array() : encoder.encode(JSON.stringify({ producerId }));
  const m = await nc.request(ingestStatusSubject(tenant), body, { timeout: timeoutMs });
  const reply = JSON.parse(decoder.decode(m.data)) as IngestStatusReply;
  if (!reply.ok) throw new IngestStatusError(reply.error.code, reply.error.message);
  return reply;
}

export interface Resume {
  /** The seq to send next: one past the highest the WAL holds (1 when it holds none). */
  readonly nextSeq: bigint;
  readonly status: ProducerStatus | undefined;
  /**
   * Seqs below nextSeq the WAL lacks (for a producer numbering batches one by
   * one: in flight when the outage hit while later ones were stored): resend
   * them with the same seq.
   */
  readonly missing: readonly bigint[];
  /**
   * Seqs whose batch the WAL holds only in part (the outage cut it while it
   * was being stored; a batch with a client's pair only): the rows of its
   * missing buckets are the publisher's to resend, under a new seq.
   */
  readonly cut: readonly bigint[];
}

/** Where `producerId` resumes (see Resume). */
export async function resumeFrom(nc: NatsConnection, tenant: string, producerId: string, timeoutMs = 30_000): Promise<Resume> {
  const status = (await ingestStatus(nc, tenant, producerId, timeoutMs)).producers.find((p) => p.producerId === producerId);
  if (status === undefined) return { nextSeq: 1n, status, missing: [], cut: [] };
  return { nextSeq: BigInt(status.lastSeq) + 1n, status, missing: status.missing.map(BigInt), cut: status.cut.map(BigInt) };
}
