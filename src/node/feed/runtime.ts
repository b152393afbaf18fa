// Runs a feed actor for real: its WAL reader is an ordered JetStream consumer
// on the feed's tables' subjects, its output the subject px.<tenant>.feed.<name>
// of the stream PX_FEED_<tenant> (each message an Arrow IPC stream, headers
// Px-Feed-Offset and Px-Feed-Kind, Nats-Msg-Id from the offset so a republish
// after a crash is stored once), and its recovery point the offset of the
// subject's last message. Publishes are fenced (fence.ts): each expects the
// subject's last sequence this runtime saw, so a former owner that resumes
// after the feed moved is refused by JetStream and the feed goes to fenced.
import { randomUUID } from "node:crypto";
import { DeliverPolicy, DiscardPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { TimeoutError, headers as natsHeaders } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { RecordBatchStreamWriter } from "apache-arrow";
import { createActor, fromCallback, fromPromise } from "xstate";
import type { Actor } from "xstate";
import { feedMachine } from "../../../actors/feed.js";
import type { FeedEvent, FeedWalInput, LastPublished, LastPublishedInput, PublishInput } from "../../../actors/feed.js";
import { decodeWatermark } from "../../../protocols/codec.js";
import { HDR_FEED_KIND, HDR_FEED_OFFSET, HDR_FEED_PUBLISHER, HDR_FEED_SHARDS, feedStream, feedSubject, feedSubjectsOfTenant, parseWalSubject, walStream, walSubjectsOfTable, walSubjectsOfTenant, watermarkStream, watermarkSubjectsOfTenant } from "../../../protocols/subjects.js";
import { WrongLastSequenceError, decodeOffset, encodeOffset, feedDecodes, feedTables, shardKey } from "../../feed/index.js";
import type { FeedBatch, FeedOffset, FeedPlan, FeedRecord } from "../../feed/index.js";
import { arrowSchema, toRecordBatches } from "../../query/index.js";
import { WalGapError, consumeBatches, decodeWalEntry, gapAt, walFloor } from "../../wal/index.js";
import { publishFenced } from "./fence.js";
import type { FeedSubjectPort, SubjectHead } from "./fence.js";

export interface FeedRuntimeOptions {
  readonly nc: NatsConnection;
  readonly name: string;
  readonly plan: FeedPlan;
  readonly snapshotIntervalMs?: number;
  readonly replicas?: number;
  /** H of a shard this node hosts (undefined: not hosted here, published as -1). */
  readonly horizon?: (tenant: string, table: string, bucket: number) => number | undefined;
  /** Held before each publish (tests: a former owner paused with its batches in hand). */
  readonly beforePublish?: () => Promise<void>;
}

/** What each message says about the shards besides its offset: P (followed from the watermark stream) and H. */
interface ShardFacts {
  readonly persisted: Map<string, number>;
  readonly horizon: (table: string, bucket: number) => number;
}

/** The tenant's feed stream (created once by whichever feed needs it first). */
export async function ensureFeedStream(jsm: JetStreamManager, tenant: string, replicas = 1): Promise<void> {
  try {
    await jsm.streams.info(feedStream(tenant));
  } catch (e) {
    if (!/stream not found/i.test((e as Error).message)) throw e;
    await jsm.streams
      .add({ name: feedStream(tenant), subjects: [feedSubjectsOfTenant(tenant)], storage: StorageType.File, retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old, num_replicas: replicas, duplicate_window: 120_000 * 1_000_000 })
      .catch((addErr: Error) => {
        if (!/already in use|exists/i.test(addErr.message)) throw addErr;
      });
  }
}

/** The subject's last message (undefined: the subject is empty). */
async function subjectHead(jsm: JetStreamManager, tenant: string, name: string) {
  const m = await jsm.streams.getMessage(feedStream(tenant), { last_by_subj: feedSubject(tenant, name) }).catch((e: Error) => {
    if (/no message found|not found/i.test(e.message)) return null;
    throw e;
  });
  return m ?? undefined;
}

const headOf = (m: NonNullable<Awaited<ReturnType<typeof subjectHead>>>): SubjectHead => ({ seq: m.seq, publisher: m.header?.get(HDR_FEED_PUBLISHER) || undefined, offset: m.header?.get(HDR_FEED_OFFSET) || undefined });

/** The feed's last published offset and the subject's last sequence (0: empty); refuses a subject holding another feed's messages. */
async function lastPublished(jsm: JetStreamManager, name: string, plan: FeedPlan): Promise<LastPublished> {
  const m = await subjectHead(jsm, plan.tenant, name);
  const token = m?.header?.get(HDR_FEED_OFFSET);
  if (m === undefined || !token) return { offset: undefined, seq: m?.seq ?? 0 };
  // A redefined feed under the same name would mix two feeds' messages on one subject: refuse by name.
  return { offset: decodeOffset(token, plan.fingerprint, feedTables(plan)), seq: m.seq };
}

/** One message per batch: an Arrow IPC stream (ts as int64 µs, field metadata proxist.unit=us). */
function encode(plan: FeedPlan, b: FeedBatch): Uint8Array {
  const schema = arrowSchema(plan.fields, new Map([["proxist.feed", plan.fingerprint]]));
  return RecordBatchStreamWriter.writeAll(toRecordBatches(b.table, schema, Infinity)).toUint8Array(true);
}

const maxLsn = (o: FeedOffset): number => Math.max(0, ...Object.values(o.lsn));

/** The raw JetStream refusal of an expectation, classified once here. */
const wrongLastSequence = (e: unknown): boolean => e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamWrongLastSequence;

interface Publisher {
  readonly id: string;
  /** TESTS ONLY (negative control, PX_FEED_FENCE_OFF=1 when the runtime was made): publish with no expectation. */
  readonly fenceOff: boolean;
  readonly beforePublish: (() => Promise<void>) | undefined;
}

async function publish(js: JetStreamClient, jsm: JetStreamManager, name: string, input: PublishInput, facts: ShardFacts, me: Publisher, signal: AbortSignal): Promise<number> {
  await me.beforePublish?.();
  const subject = feedSubject(input.plan.tenant, name);
  const shards = feedTables(input.plan).flatMap((t) => Array.from({ length: t.shards }, (_, bucket) => ({ table: t.name, bucket })));
  const messages = input.batches.map((b) => {
    const h = natsHeaders();
    const offset = encodeOffset(b.offset);
    h.set(HDR_FEED_OFFSET, offset);
    h.set(HDR_FEED_KIND, b.kind);
    h.set(HDR_FEED_PUBLISHER, me.id);
    const positions = shards.map((s) => {
      const k = shardKey(s.table, s.bucket);
      return { ...s, lsn: b.offset.lsn[k] ?? 0, persistedLsn: facts.persisted.get(k) ?? 0, horizonMicros: facts.horizon(s.table, s.bucket) };
    });
    h.set(HDR_FEED_SHARDS, JSON.stringify(positions));
    return { offset, message: { data: encode(input.plan, b), headers: h, msgID: `${name}:${input.plan.fingerprint}:${b.kind === "snapshot" ? "s" : "u"}:${maxLsn(b.offset)}` } };
  });
  if (me.fenceOff) {
    // As before the fence: pipelined, only the duplicate window between a stale owner and the subject.
    const acks = await Promise.all(messages.map(({ message: m }) => js.publish(subject, m.data, { headers: m.headers, msgID: m.msgID })));
    return Math.max(input.lastSeq, ...acks.map((a) => a.seq));
  }
  const port: FeedSubjectPort<(typeof messages)[number]["message"]> = {
    send: async (m, expectSeq) => {
      try {
        return await js.publish(subject, m.data, { headers: m.headers, msgID: m.msgID, ...(expectSeq === undefined ? {} : { expect: { lastSubjectSequence: expectSeq } }) });
      } catch (e) {
        if (wrongLastSequence(e)) throw new WrongLastSequenceError(`feed ${name}: JetStream refused the publish on ${subject}: ${(e as Error).message} (expected last sequence ${expectSeq})`, { cause: e });
        throw e;
      }
    },
    head: async () => {
      const m = await subjectHead(jsm, input.plan.tenant, name);
      return m === undefined ? undefined : headOf(m);
    },
  };
  return publishFenced(port, messages, { lastSeq: input.lastSeq, publisher: me.id, fenced: true, ackUnknown: (e) => e instanceof TimeoutError, signal });
}

/**
 * The feed folds its tables' WAL from `fromSeq`: records compaction already
 * purged below that would be missing from its state without a word. Rebuilding
 * the state from ClickHouse is not implemented, so the feed fails, naming it.
 */
async function checkFloors(jsm: JetStreamManager, plan: FeedPlan, fromSeq: number): Promise<void> {
  for (const t of feedTables(plan)) {
    for (let bucket = 0; bucket < t.shards; bucket++) {
      const shard = { tenant: plan.tenant, table: t.name, bucket };
      const gap = gapAt(`feed ${plan.fingerprint}`, shard, fromSeq, await walFloor(jsm, shard));
      if (gap !== undefined) throw new WalGapError(`${gap.message}. A materialized feed rebuilds its state from the WAL only (not yet from ClickHouse): redefine the feed to start over from the WAL as it is now`);
    }
  }
}

function walReader(js: JetStreamClient, jsm: JetStreamManager) {
  return fromCallback<FeedEvent, FeedWalInput>(({ input, sendBack }) => {
    let stopped = false;
    let stop: (() => void) | undefined;
    const plan = input.plan;
    const specs = new Map(feedTables(plan).map((t) => [t.name, t]));
    void (async () => {
      await checkFloors(jsm, plan, input.fromSeq);
      const consumer = await js.consumers.get(walStream(plan.tenant), {
        filter_subjects: specs.size === 1 ? walSubjectsOfTable(plan.tenant, plan.left.name) : walSubjectsOfTenant(plan.tenant),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: input.fromSeq,
      });
      if (stopped) return;
      const info = await consumer.info(true).catch(() => undefined);
      if ((info?.num_pending ?? 0) === 0) sendBack({ type: "caughtUp" });
      const messages = await consumer.consume({ max_messages: 256 });
      stop = () => void messages.stop();
      await consumeBatches<FeedRecord | null>(messages, {
        maxBatch: 512,
        stopped: () => stopped,
        read: (m) => {
          const a = parseWalSubject(m.subject);
          const spec = a === undefined ? undefined : specs.get(a.table);
          // Another table of the tenant (as-of feeds read the tenant's whole WAL).
          if (a === undefined || spec === undefined) return null;
          return { table: a.table, bucket: a.bucket, lsn: m.seq, batch: feedDecodes.get(plan.tenant, a.table, spec.version, m.seq, () => decodeWalEntry(spec, m.seq, m.data).batch) };
        },
        onBatch: (records) => sendBack({ type: "records", records: records.filter((r): r is FeedRecord => r !== null) }),
        onCaughtUp: () => sendBack({ type: "caughtUp" }),
      });
      // Deliveries that end without a stop would leave the feed waiting forever: reopen the consumer.
      if (!stopped) throw new Error(`the WAL consumer of feed ${plan.fingerprint} ended`);
    })().catch((e: unknown) => {
      // Lost records end the feed (fatal); anything else (a timeout, a NATS server going away) is retried.
      if (!stopped) sendBack({ type: "walError", message: (e as Error).message, fatal: e instanceof WalGapError });
    });
    return () => {
      stopped = true;
      stop?.();
    };
  });
}

export interface FeedRuntime {
  readonly actor: Actor<typeof feedMachine>;
  /** This runtime's publisher id (header Px-Feed-Publisher of its messages). */
  readonly publisher: string;
  stop(): void;
}

/** Starts the feed `name` (its stream is created if missing). */
export async function startFeed(o: FeedRuntimeOptions): Promise<FeedRuntime> {
  const js = jetstream(o.nc);
  const jsm = await jetstreamManager(o.nc);
  await ensureFeedStream(jsm, o.plan.tenant, o.replicas ?? 1);
  const facts: ShardFacts = { persisted: new Map(), horizon: (table, bucket) => o.horizon?.(o.plan.tenant, table, bucket) ?? -1 };
  const stopWatermarks = await followPersisted(js, o.plan.tenant, facts.persisted);
  const me: Publisher = { id: randomUUID(), fenceOff: process.env.PX_FEED_FENCE_OFF === "1", beforePublish: o.beforePublish };
  const machine = feedMachine.provide({
    actors: {
      lastPublished: fromPromise<LastPublished, LastPublishedInput>(({ input }) => lastPublished(jsm, o.name, input.plan)),
      wal: walReader(js, jsm),
      publish: fromPromise<number, PublishInput>(({ input, signal }) => publish(js, jsm, o.name, input, facts, me, signal)),
    },
  });
  const actor = createActor(machine, { input: { feed: { tenant: o.plan.tenant, name: o.name }, plan: o.plan, snapshotIntervalMs: o.snapshotIntervalMs ?? 0 } }).start();
  return {
    actor,
    publisher: me.id,
    stop: () => {
      actor.stop();
      stopWatermarks();
    },
  };
}

/** Keeps `persisted` at each shard's last P (the tenant's watermark stream, last value per subject, then each new one). */
async function followPersisted(js: JetStreamClient, tenant: string, persisted: Map<string, number>): Promise<() => void> {
  const c = await js.consumers.get(watermarkStream(tenant), { filter_subjects: watermarkSubjectsOfTenant(tenant), deliver_policy: DeliverPolicy.LastPerSubject }).catch(() => undefined);
  if (c === undefined) return () => {};
  const msgs = await c.consume({ max_messages: 64 });
  void (async () => {
    for await (const m of msgs) {
      try {
        const w = decodeWatermark(m.data);
        const k = shardKey(w.table, w.bucket);
        persisted.set(k, Math.max(persisted.get(k) ?? 0, Number(w.persistedLsn)));
      } catch {
        // An unreadable watermark: the next one supersedes it.
      }
    }
  })().catch(() => {});
  return () => void msgs.stop();
}
