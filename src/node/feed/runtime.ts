// Runs a feed actor for real: its WAL reader is an ordered JetStream consumer
// on the feed's tables' subjects, its output the subject px.<tenant>.feed.<name>
// of the stream PX_FEED_<tenant> (each message an Arrow IPC stream, headers
// Px-Feed-Offset and Px-Feed-Kind, Nats-Msg-Id from the offset so a republish
// after a crash is stored once), and its recovery point the offset of the
// subject's last message. Its writes are fenced by the subject's last
// sequence (src/feed/tail.ts): a former owner that resumes after its feed
// moved stores nothing the new owner already published (but for the one case
// src/feed/fence.ts names, after which the writer stops).
import { DeliverPolicy, DiscardPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Schema } from "apache-arrow";
import { batchStream } from "../../codec/batchipc.js";
import { createActor, fromCallback, fromPromise } from "xstate";
import type { Actor } from "xstate";
import { feedMachine } from "../../../actors/feed.js";
import type { CheckpointInput, FeedEvent, FeedWalInput, LastPublishedInput, PublishInput, PublishOutput, SaveCheckpointInput } from "../../../actors/feed.js";
import { decodeWatermark } from "../../../protocols/codec.js";
import { HDR_FEED_KIND, HDR_FEED_OFFSET, HDR_FEED_ROWS, HDR_FEED_SHARDS, feedStream, feedSubject, feedSubjectsOfTenant, parseWalSubject, walStream, walSubjectsOfTable, walSubjectsOfTenant, watermarkStream, watermarkSubjectsOfTenant } from "../../../protocols/subjects.js";
import { EMPTY_TAIL, FEED_DEDUP_WINDOW_MS, FeedMessageTooLargeError, afterTail, decodeOffset, encodeOffset, feedDecodes, feedTables, offsetLsn, outputPlace, publishFenced, pushMerged, readTableGaps, rowsHeader, shardKey, splitBatch } from "../../feed/index.js";
import type { FeedBatch, FeedOffset, FeedPlan, FeedRecord, FeedTail, GapReader, TableGaps, WalGap } from "../../feed/index.js";
import { arrowSchema, toRecordBatches } from "../../query/index.js";
import type { ClickhouseColdSource, OutTable } from "../../query/index.js";
import { WalGapError, consumeBatches, decodeWalEntry, gapAt, walFloor, walPull } from "../../wal/index.js";
import type { WalFloor } from "../../wal/index.js";
import type { ShardAddress } from "../../../protocols/subjects.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { openSnapshotBucket } from "../../snapshot/store.js";
import { feedCheckpoints } from "./checkpoints.js";

export interface FeedRuntimeOptions {
  readonly nc: NatsConnection;
  readonly name: string;
  readonly plan: FeedPlan;
  readonly snapshotIntervalMs?: number;
  /** How often the operator state is checkpointed (0: never). */
  readonly checkpointIntervalMs?: number;
  readonly replicas?: number;
  /** H of a shard this node hosts (undefined: not hosted here, published as -1). */
  readonly horizon?: (tenant: string, table: string, bucket: number) => number | undefined;
  /** TESTS ONLY (the negative control): publish without the subject-sequence fence. */
  readonly fenceOff?: boolean;
  /** Reads compacted WAL records back from ClickHouse (a node with ClickHouse): a feed with no checkpoint rebuilds its state on a compacted WAL. */
  readonly history?: FeedHistory;
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
      .add({ name: feedStream(tenant), subjects: [feedSubjectsOfTenant(tenant)], storage: StorageType.File, retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old, num_replicas: replicas, duplicate_window: FEED_DEDUP_WINDOW_MS * 1_000_000 })
      .catch((addErr: Error) => {
        if (!/already in use|exists/i.test(addErr.message)) throw addErr;
      });
  }
}

/** The subject's last message: its offset (undefined: none) and the tail; refuses a subject holding another feed's messages. */
async function readTail(jsm: JetStreamManager, name: string, plan: FeedPlan): Promise<{ offset: FeedOffset | undefined; tail: FeedTail }> {
  const m = await jsm.streams.getMessage(feedStream(plan.tenant), { last_by_subj: feedSubject(plan.tenant, name) }).catch((e: Error) => {
    if (/no message found|not found/i.test(e.message)) return null;
    throw e;
  });
  if (m === null || m === undefined) return { offset: undefined, tail: EMPTY_TAIL };
  const token = m.header?.get(HDR_FEED_OFFSET);
  if (!token) return { offset: undefined, tail: { seq: m.seq, place: EMPTY_TAIL.place } };
  // A redefined feed under the same name would mix two feeds' messages on one subject: refuse by name.
  const offset = decodeOffset(token, plan.fingerprint, feedTables(plan));
  return { offset, tail: { seq: m.seq, place: outputPlace(m.header.get(HDR_FEED_KIND) === "snapshot" ? "snapshot" : "update", offset) } };
}

/** The schema of a feed's messages, one object per plan (the IPC writer keeps its schema message per schema object). */
const feedSchemas = new WeakMap<FeedPlan, Schema>();
function feedSchema(plan: FeedPlan): Schema {
  let s = feedSchemas.get(plan);
  if (s === undefined) feedSchemas.set(plan, (s = arrowSchema(plan.fields, new Map([["proxist.feed", plan.fingerprint]]))));
  return s;
}

/** One message per batch: an Arrow IPC stream (ts as int64 µs, field metadata proxist.unit=us). */
function encode(plan: FeedPlan, t: OutTable): Uint8Array {
  return batchStream(toRecordBatches(t, feedSchema(plan), Infinity)[0]!);
}

/** Bytes of max_payload left for a feed message's headers besides the per-shard positions. */
const HEADER_ROOM = 1024;

/** What one writer of a feed knows of its subject. */
interface Writer {
  tail: FeedTail;
  readonly fenceOff: boolean;
}

/** The stream refused a publish because the subject's last sequence is not the one expected: another writer wrote it. */
const anotherWriter = (e: unknown): boolean => e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamWrongLastSequence;

/**
 * Publishes `input.batches` to the feed's subject through publishFenced
 * (src/feed/fence.ts: what it fences and the one case it does not); returns
 * how many messages this writer stored. `fenceOff` (TESTS ONLY) sends every
 * batch unfenced and at once.
 */
async function publish(js: JetStreamClient, jsm: JetStreamManager, name: string, input: PublishInput, facts: ShardFacts, w: Writer, maxPayload: number | undefined): Promise<PublishOutput> {
  const subject = feedSubject(input.plan.tenant, name);
  const shards = feedTables(input.plan).flatMap((t) => Array.from({ length: t.shards }, (_, bucket) => ({ table: t.name, bucket })));
  // Encoded once: the cuts, the size check and the publish see the same bytes.
  const bodies = new Map<OutTable, Uint8Array>();
  const body = (t: OutTable): Uint8Array => {
    let x = bodies.get(t);
    if (x === undefined) bodies.set(t, (x = encode(input.plan, t)));
    return x;
  };
  // The headers (offset token, per-shard positions, rows, message id) take their share of max_payload.
  const room = maxPayload === undefined ? Infinity : maxPayload - HEADER_ROOM - 160 * shards.length;
  // A record's update larger than a message goes out in parts (src/feed/parts.ts), from where the subject stands.
  const batches = input.batches.flatMap((b) => splitBatch(afterTail(b, w.tail), room, (t) => body(t).length));
  const check = (b: FeedBatch): void => {
    const n = body(b.table).length;
    if (n > room) {
      throw new FeedMessageTooLargeError(
        `feed ${input.plan.tenant}/${name}: the ${b.kind} at LSN ${offsetLsn(b.offset)} is ${n} bytes (${b.table.rows} rows), more than one NATS message carries here (max_payload ${maxPayload} bytes, less room for headers); ` +
          "a single row does not fit: select fewer columns, or raise the server's max_payload",
      );
    }
  };
  const send = (b: FeedBatch, expectSeq?: number) => {
    const h = natsHeaders();
    h.set(HDR_FEED_OFFSET, encodeOffset(b.offset));
    h.set(HDR_FEED_KIND, b.kind);
    const rows = rowsHeader(b);
    if (rows !== undefined) h.set(HDR_FEED_ROWS, rows);
    const positions = shards.map((s) => {
      const k = shardKey(s.table, s.bucket);
      return { ...s, lsn: b.offset.lsn[k] ?? 0, persistedLsn: facts.persisted.get(k) ?? 0, horizonMicros: facts.horizon(s.table, s.bucket) };
    });
    h.set(HDR_FEED_SHARDS, JSON.stringify(positions));
    // Two writers cut a record or a snapshot alike (the same max_payload): a part's id names the rows it ends at.
    const at = b.offset.part === undefined ? `${offsetLsn(b.offset)}` : `${b.offset.part.lsn}.${b.offset.part.rows}`;
    const msgID = `${name}:${input.plan.fingerprint}:${b.kind === "snapshot" ? "s" : "u"}:${at}`;
    return js.publish(subject, body(b.table), { headers: h, msgID, ...(expectSeq === undefined ? {} : { expect: { lastSubjectSequence: expectSeq } }) });
  };
  if (w.fenceOff) {
    await Promise.all(batches.map((b) => send(b)));
    return { stored: batches.length };
  }
  const stored = await publishFenced(batches, w, { now: () => performance.now(), send, readTail: async () => (await readTail(jsm, name, input.plan)).tail, refused: anotherWriter, check });
  return { stored };
}

/** Reads the compacted WAL records of a table back from ClickHouse (the node's cold source). */
export type FeedHistory = (tenant: string, spec: TableSpec) => GapReader;

/** The history of the node's ClickHouse: rows by (_lsn, _row). */
export const historyOf =
  (cold: Pick<ClickhouseColdSource, "byLsn">): FeedHistory =>
  (tenant, spec) =>
  (gaps, cursor, limit) =>
    cold.byLsn(tenant, spec, gaps, cursor, limit);

/** Each shard of the feed's tables with its WAL floor. */
async function floorsOf(jsm: JetStreamManager, plan: FeedPlan): Promise<{ shard: ShardAddress; floor: WalFloor }[]> {
  const shards = feedTables(plan).flatMap((t) => Array.from({ length: t.shards }, (_, bucket) => ({ tenant: plan.tenant, table: t.name, bucket })));
  return Promise.all(shards.map(async (shard) => ({ shard, floor: await walFloor(jsm, shard) })));
}

/**
 * The feed folds its tables' WAL from `fromSeq`: records compaction already
 * purged below that would be missing from its state without a word. They are
 * read back from ClickHouse (`history`; an as-of feed's two tables side by
 * side), merged in LSN order with the WAL's records below them
 * (src/feed/gapmerge.ts), and handed to the feed; returns the first LSN left
 * to read from the WAL. Anything else missing (no ClickHouse, records removed
 * from the stream itself, or purged further meanwhile) fails the feed, naming it.
 */
async function foldHistory(js: JetStreamClient, jsm: JetStreamManager, plan: FeedPlan, fromSeq: number, history: FeedHistory | undefined, recordOf: (m: JsMsg) => FeedRecord | null, send: (records: FeedRecord[]) => void, stopped: () => boolean): Promise<number> {
  const reader = `feed ${plan.fingerprint}`;
  const before = await floorsOf(jsm, plan);
  const gaps = before.filter((x) => gapAt(reader, x.shard, fromSeq, x.floor) !== undefined);
  if (gaps.length === 0) return fromSeq;
  const first = gapAt(reader, gaps[0]!.shard, fromSeq, gaps[0]!.floor)!;
  const cannot: [why: string, fix: string] | undefined =
    history === undefined
      ? ["this node has no ClickHouse to read the compacted records back from", "run the feed's node with ClickHouse (--clickhouse)"]
      : gaps.some((g) => g.floor.firstSeq > fromSeq)
          ? ["records were removed from the stream itself (a limit or a hand purge), not by compaction, so ClickHouse may not hold them", "its state cannot be rebuilt exactly; re-publish the lost range from the source"]
          : process.env.PX_UNSAFE_NO_WAL_GAP_READ === "1"
            ? ["reading compacted records back is switched off (PX_UNSAFE_NO_WAL_GAP_READ=1, tests only)", "unset PX_UNSAFE_NO_WAL_GAP_READ"]
            : undefined;
  if (cannot !== undefined) throw new WalGapError(`${first.message}. A materialized feed rebuilds its state from its last checkpoint and the WAL after it, or reads compacted records back from ClickHouse, and neither works here (${cannot[0]}): ${cannot[1]}`);
  const tables: TableGaps[] = feedTables(plan).flatMap((spec) => {
    const g: WalGap[] = gaps.filter((x) => x.shard.table === spec.name).map((x) => ({ bucket: x.shard.bucket, after: fromSeq - 1, below: x.floor.compactedBelow }));
    return g.length === 0 ? [] : [{ spec, gaps: g, read: history!(plan.tenant, spec) }];
  });
  const consumer = await js.consumers.get(walStream(plan.tenant), { filter_subjects: plan.right === undefined ? walSubjectsOfTable(plan.tenant, plan.left.name) : walSubjectsOfTenant(plan.tenant), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq });
  const stored = (await consumer.info(true)).num_pending;
  const messages = await consumer.consume(await walPull(js, walStream(plan.tenant), 256));
  let last = fromSeq - 1;
  let batch: FeedRecord[] = [];
  const flush = (): void => {
    if (batch.length > 0) send(batch);
    batch = [];
  };
  const take = (r: FeedRecord | null, lsn: number): void => {
    if (r !== null) batch.push(r);
    last = lsn;
    if (batch.length >= 256) flush();
  };
  try {
    await pushMerged({
      gap: (push) => readTableGaps(tables, push),
      wal: messages[Symbol.asyncIterator](),
      stored,
      lsnOf: (m) => m.seq,
      onWal: (m) => take(recordOf(m), m.seq),
      onGap: async (rec) => {
        if (stopped()) throw new Error(`feed ${plan.fingerprint} stopped while reading its history`);
        take(rec, rec.lsn);
        // Let the feed fold what was sent before reading the next page's worth.
        if (batch.length === 0) await new Promise((r) => setImmediate(r));
      },
    });
    flush();
  } finally {
    messages.stop();
    // An ordered consumer outlives stop() on the server until it is inactive for minutes: delete it now.
    void consumer.delete().catch(() => false);
  }
  // Read below each floor as it was; compacted further meanwhile, records after those read may be gone too.
  const after = await floorsOf(jsm, plan);
  const readBelow = new Map(tables.flatMap((t) => t.gaps.map((g) => [shardKey(t.spec.name, g.bucket), g.below] as const)));
  for (const x of after) {
    const floor = { firstSeq: x.floor.firstSeq, compactedBelow: x.floor.compactedBelow <= (readBelow.get(shardKey(x.shard.table, x.shard.bucket)) ?? 0) ? 0 : x.floor.compactedBelow };
    const gap = gapAt(reader, x.shard, last + 1, floor);
    if (gap !== undefined) throw new WalGapError(`${gap.message}. (It was compacted further while the feed read its history back from ClickHouse: restart the node running the feed, which reads it again.)`);
  }
  return last + 1;
}

function walReader(js: JetStreamClient, jsm: JetStreamManager, history: FeedHistory | undefined) {
  return fromCallback<FeedEvent, FeedWalInput>(({ input, sendBack }) => {
    let stopped = false;
    let stop: (() => void) | undefined;
    const plan = input.plan;
    const specs = new Map(feedTables(plan).map((t) => [t.name, t]));
    const recordOf = (m: JsMsg): FeedRecord | null => {
      const a = parseWalSubject(m.subject);
      const spec = a === undefined ? undefined : specs.get(a.table);
      // Another table of the tenant (as-of feeds read the tenant's whole WAL).
      if (a === undefined || spec === undefined) return null;
      return { table: a.table, bucket: a.bucket, lsn: m.seq, batch: feedDecodes.get(plan.tenant, a.table, spec.version, m.seq, () => decodeWalEntry(spec, m.seq, m.data).batch) };
    };
    void (async () => {
      const fromSeq = await foldHistory(js, jsm, plan, input.fromSeq, history, recordOf, (records) => sendBack({ type: "records", records }), () => stopped);
      if (stopped) return;
      const consumer = await js.consumers.get(walStream(plan.tenant), {
        filter_subjects: specs.size === 1 ? walSubjectsOfTable(plan.tenant, plan.left.name) : walSubjectsOfTenant(plan.tenant),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: fromSeq,
      });
      if (stopped) return;
      const info = await consumer.info(true).catch(() => undefined);
      if ((info?.num_pending ?? 0) === 0) sendBack({ type: "caughtUp" });
      const messages = await consumer.consume(await walPull(js, walStream(plan.tenant), 256));
      stop = () => void messages.stop();
      await consumeBatches<FeedRecord | null>(messages, {
        maxBatch: 512,
        stopped: () => stopped,
        read: recordOf,
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
  stop(): void;
  /** After stop, for a feed removed from the spec: removes its checkpoints; how many. */
  dropCheckpoints(): Promise<number>;
}

/** Starts the feed `name` (its stream is created if missing). */
export async function startFeed(o: FeedRuntimeOptions): Promise<FeedRuntime> {
  const js = jetstream(o.nc);
  const jsm = await jetstreamManager(o.nc);
  await ensureFeedStream(jsm, o.plan.tenant, o.replicas ?? 1);
  const facts: ShardFacts = { persisted: new Map(), horizon: (table, bucket) => o.horizon?.(o.plan.tenant, table, bucket) ?? -1 };
  const stopWatermarks = await followPersisted(js, o.plan.tenant, facts.persisted);
  const writer: Writer = { tail: EMPTY_TAIL, fenceOff: o.fenceOff === true };
  const checkpoints = feedCheckpoints(await openSnapshotBucket(o.nc, o.replicas ?? 1), o.plan.tenant, o.name, o.plan.fingerprint);
  const machine = feedMachine.provide({
    actors: {
      // Recovery reads where the subject stands: the offset to resume after, and the tail the next publish expects.
      lastPublished: fromPromise<FeedOffset | undefined, LastPublishedInput>(async ({ input }) => {
        const { offset, tail } = await readTail(jsm, o.name, input.plan);
        writer.tail = tail;
        return offset;
      }),
      wal: walReader(js, jsm, o.history),
      publish: fromPromise<PublishOutput, PublishInput>(({ input }) => publish(js, jsm, o.name, input, facts, writer, o.nc.info?.max_payload)),
      loadCheckpoint: fromPromise<Uint8Array | undefined, CheckpointInput>(() => checkpoints.load()),
      saveCheckpoint: fromPromise<void, SaveCheckpointInput>(({ input }) => checkpoints.save(input.foldedLsn, input.bytes)),
    },
  });
  const actor = createActor(machine, { input: { feed: { tenant: o.plan.tenant, name: o.name }, plan: o.plan, snapshotIntervalMs: o.snapshotIntervalMs ?? 0, checkpointIntervalMs: o.checkpointIntervalMs ?? 0 } }).start();
  return {
    actor,
    stop: () => {
      actor.stop();
      stopWatermarks();
    },
    dropCheckpoints: () => checkpoints.drop(),
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
