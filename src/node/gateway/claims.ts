// Producer pairs: a (Px-Producer-Id, Px-Producer-Seq) pair names one batch. The
// WAL's dedup works per record (Nats-Msg-Id = producer:seq:table:bucket), so on
// its own a reused pair with other data would be stored where it routes to new
// buckets and dropped as a duplicate where it routes to old ones. Before a batch
// is appended, its pair is claimed in KV px_producers with a SHA-256 of the
// batch's WAL records: the same pair with the same records is a retry (appended
// again; JetStream stores what is missing once), with other records an error.
// Claims expire with JetStream's duplicate window (2 minutes).
import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import type { Producer, WalAppendPlan } from "../../ingest/prepare.js";
import { isConflict } from "../../control/index.js";
import { TaggedError } from "../../../protocols/tagged.js";

export const KV_PRODUCERS = "px_producers";
/** As long as the WAL stream's duplicate window: past it the WAL would store the pair again anyway. */
export const CLAIM_TTL_MS = 120_000;

export class PairReusedError extends TaggedError("PairReusedError") {}

export interface PairClaims {
  /** Resolves when the batch may be appended; throws PairReusedError when its pair was used for other data. */
  claim(tenant: string, table: string, producer: Producer, plans: readonly WalAppendPlan[]): Promise<void>;
}

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

const keyOf = (tenant: string, table: string, producer: Producer): string =>
  createHash("sha256").update(`${tenant}\0${table}\0${producer.id}\0${producer.seq}`).digest("hex");

export async function openPairClaims(nc: NatsConnection, replicas = 1): Promise<PairClaims> {
  const kvm = new Kvm(nc);
  let kv: KV;
  try {
    kv = await kvm.create(KV_PRODUCERS, { replicas, history: 1, ttl: CLAIM_TTL_MS });
  } catch (e) {
    if (!/already in use|exists/i.test((e as Error).message)) throw e;
    kv = await kvm.open(KV_PRODUCERS);
  }
  return {
    claim: async (tenant, table, producer, plans) => {
      const key = keyOf(tenant, table, producer);
      const digest = recordsDigest(plans);
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await kv.create(key, digest);
          return;
        } catch (e) {
          if (!isConflict(e)) throw e;
        }
        const held = await kv.get(key);
        if (held === null || held.operation !== "PUT") continue; // expired meanwhile: claim again
        if (held.string() === digest) return; // a retry of the same batch
        throw new PairReusedError(
          `tenant ${tenant} table ${table}: producer ${producer.id} seq ${producer.seq} was already used for a different batch (within the last ${CLAIM_TTL_MS / 1000} s); ` +
            `a retry must resend the same batch unchanged, a new batch needs a new Px-Producer-Seq. Nothing of this batch was stored`,
        );
      }
      throw new Error(`px_producers: could not claim producer ${producer.id} seq ${producer.seq} (the claim kept changing)`);
    },
  };
}
