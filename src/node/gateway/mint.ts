// Producer pairs for batches that came without one (gRPC Ingest with an empty
// producer_id, Flight DoPut with a path descriptor, NATS publishes without the
// Px-Producer-* headers). Every WAL record then carries a Nats-Msg-Id, so when
// the gateway appends a batch again after a lost or failed PubAck (jetstreamWal's
// retry), JetStream stores what it already has once, as for a client's own pair.
// One random id per node run, one sequence number per batch: never reused.
import { randomBytes } from "node:crypto";
import type { Producer } from "../../ingest/prepare.js";

export class ProducerMint {
  /** 64 random bits: no client's id collides with it by chance. */
  readonly id = `px-${randomBytes(8).toString("hex")}`;
  private seq = 0n;

  next(): Producer {
    this.seq++;
    return { id: this.id, seq: this.seq, generated: true };
  }
}
