// JetStream streams Proxist owns: one WAL stream and one watermark stream per
// tenant. Created idempotently by whichever node or tool first needs them.
import type { JetStreamManager } from "@nats-io/jetstream";
import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { isNoRoom, noRoomMessage, STORE_LIMIT_ENV } from "../config/limits.js";
import { TaggedError } from "../../protocols/tagged.js";
import { walAnchorSubject, walStream, walSubjectsOfTenant, watermarkStream, watermarkSubjectsOfTenant } from "../../protocols/subjects.js";

export interface WalStreamOptions {
  readonly replicas?: number;
  /**
   * Bytes the WAL holds at most; when full, JetStream refuses new records
   * (discard new: nothing stored is ever dropped) and ingest is refused with
   * RESOURCE_EXHAUSTED until compaction frees space. -1 = unlimited.
   */
  readonly maxBytes?: number;
  /** Window in which a repeated Nats-Msg-Id is recognised as a retry. */
  readonly duplicateWindowMs?: number;
}

const NS_PER_MS = 1_000_000;

/** JetStream has no room to reserve a stream's max_bytes: names the stream, the limit and the fix. */
export class StreamRoomError extends TaggedError("StreamRoomError") {}

/** A refusal to reserve the stream's max_bytes, as a StreamRoomError naming `envVar`; other errors as they are. */
const roomError = (e: unknown, name: string, maxBytes: number, envVar: string): unknown =>
  isNoRoom(e) ? new StreamRoomError(noRoomMessage(`stream ${name}`, maxBytes, envVar), { cause: e }) : e;

async function ensureStream(jsm: JetStreamManager, config: Parameters<JetStreamManager["streams"]["add"]>[0] & { name: string }, limitEnv = "the stream's max_bytes"): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch (e) {
    if (!/stream not found/i.test((e as Error).message)) throw e;
    try {
      await jsm.streams.add(config);
    } catch (addErr) {
      // Another node created it between our info and add.
      if (!/already in use|exists/i.test((addErr as Error).message)) throw roomError(addErr, config.name, config.max_bytes ?? -1, limitEnv);
    }
  }
}

/**
 * Creates the tenant's WAL stream, or brings an existing one to this
 * configuration. Resolves with a note when the configured limit was not applied
 * (undefined otherwise).
 */
export async function ensureWalStream(jsm: JetStreamManager, tenant: string, o: WalStreamOptions = {}): Promise<string | undefined> {
  const name = walStream(tenant);
  const subjects = [walSubjectsOfTenant(tenant), walAnchorSubject(tenant)];
  const maxBytes = o.maxBytes ?? -1;
  await ensureStream(jsm, {
    name,
    subjects,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.New,
    num_replicas: o.replicas ?? 1,
    max_bytes: maxBytes,
    duplicate_window: (o.duplicateWindowMs ?? 120_000) * NS_PER_MS,
  }, STORE_LIMIT_ENV.walMaxBytes);
  // A stream of an earlier release (discard old, no limit, no anchor subject): bring its limits to this configuration.
  const info = await jsm.streams.info(name);
  const c = info.config;
  // JetStream applies a lower max_bytes by dropping the oldest records: never below what the stream holds.
  const shrinksPastData = maxBytes !== -1 && info.state.bytes > maxBytes;
  const target = shrinksPastData ? c.max_bytes : maxBytes;
  if (c.discard !== DiscardPolicy.New || c.max_bytes !== target || !subjects.every((s) => c.subjects.includes(s))) {
    await jsm.streams
      .update(name, { ...c, discard: DiscardPolicy.New, max_bytes: target, subjects: [...new Set([...c.subjects, ...subjects])] })
      .catch((e: unknown) => {
        throw roomError(e, name, target, STORE_LIMIT_ENV.walMaxBytes);
      });
  }
  await ensureAnchor(jsm, tenant);
  return shrinksPastData
    ? `the WAL of tenant ${tenant} holds ${info.state.bytes} bytes, more than the configured limit ${maxBytes} (PX_WAL_MAX_BYTES): its limit stays ${c.max_bytes} (lowering it would drop records); compact it, then restart the node to apply the limit`
    : undefined;
}

/**
 * Stores the anchor once (the same Nats-Msg-Id from every node, and only into an
 * empty stream on a new one): see walAnchorSubject.
 */
async function ensureAnchor(jsm: JetStreamManager, tenant: string): Promise<void> {
  const name = walStream(tenant);
  const held = await jsm.streams.getMessage(name, { last_by_subj: walAnchorSubject(tenant) }).catch(() => null);
  if (held !== null) return;
  const js = jsm.jetstream();
  const h = headers();
  h.set("Nats-Msg-Id", `px-anchor-${tenant}`);
  await js.publish(walAnchorSubject(tenant), new Uint8Array(0), { headers: h }).catch((e: unknown) => {
    // A full stream cannot take the anchor; the gap check then still sees limits, not compaction, moving the start.
    if (!/maximum|insufficient|resource/i.test((e as Error).message)) throw e;
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
