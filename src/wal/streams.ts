// JetStream streams Proxist owns: one WAL stream and one watermark stream per
// tenant. Created idempotently by whichever node or tool first needs them.
import type { JetStreamManager } from "@nats-io/jetstream";
import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { walStream, walSubjectsOfTenant, watermarkStream, watermarkSubjectsOfTenant } from "../../protocols/subjects.js";

export interface WalStreamOptions {
  readonly replicas?: number;
  /** Bytes the WAL keeps before it drops the oldest records; -1 = unlimited. */
  readonly maxBytes?: number;
  /** Window in which a repeated Nats-Msg-Id is recognised as a retry. */
  readonly duplicateWindowMs?: number;
}

const NS_PER_MS = 1_000_000;

async function ensureStream(jsm: JetStreamManager, config: Parameters<JetStreamManager["streams"]["add"]>[0] & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch (e) {
    if (!/stream not found/i.test((e as Error).message)) throw e;
    try {
      await jsm.streams.add(config);
    } catch (addErr) {
      // Another node created it between our info and add.
      if (!/already in use|exists/i.test((addErr as Error).message)) throw addErr;
    }
  }
}

export async function ensureWalStream(jsm: JetStreamManager, tenant: string, o: WalStreamOptions = {}): Promise<void> {
  await ensureStream(jsm, {
    name: walStream(tenant),
    subjects: [walSubjectsOfTenant(tenant)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas ?? 1,
    max_bytes: o.maxBytes ?? -1,
    duplicate_window: (o.duplicateWindowMs ?? 120_000) * NS_PER_MS,
  });
}

export async function ensureWatermarkStream(jsm: JetStreamManager, tenant: string, replicas = 1): Promise<void> {
  await ensureStream(jsm, {
    name: watermarkStream(tenant),
    subjects: [watermarkSubjectsOfTenant(tenant)],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    // Last value per subject: a shard only needs its latest persisted watermark.
    max_msgs_per_subject: 1,
    num_replicas: replicas,
  });
}
