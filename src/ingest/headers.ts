// Producer identity from ingest message headers: Px-Producer-Id + Px-Producer-Seq
// make a batch idempotent (a retry with the same pair is stored once).
import type { Producer } from "./plan.js";

const PRODUCER_ID = /^[A-Za-z0-9_-]{1,64}$/;

export type ProducerHeader = { readonly ok: true; readonly producer: Producer | undefined } | { readonly ok: false; readonly message: string };

export function parseProducer(id: string | undefined, seq: string | undefined): ProducerHeader {
  if (!id && !seq) return { ok: true, producer: undefined };
  if (!id || !seq) {
    return { ok: false, message: "headers Px-Producer-Id and Px-Producer-Seq go together; send both (for idempotent retries) or neither" };
  }
  if (!PRODUCER_ID.test(id)) {
    return { ok: false, message: `header Px-Producer-Id "${id.slice(0, 80)}" must be 1-64 characters of A-Z a-z 0-9 _ -; pick another producer id` };
  }
  if (!/^\d{1,20}$/.test(seq) || BigInt(seq) > 0xffffffffffffffffn) {
    return { ok: false, message: `header Px-Producer-Seq "${seq.slice(0, 40)}" must be an unsigned 64-bit decimal integer; send the batch's sequence number` };
  }
  return { ok: true, producer: { id, seq: BigInt(seq) } };
}
