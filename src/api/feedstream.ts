// One ad-hoc feed subscription, whatever carries it (gRPC Subscribe, Flight
// DoExchange): plan the feed from the request, read its WAL subjects in LSN
// order into a FeedSession (src/feed), follow each shard's P, and hand each
// batch the session releases to the transport's sink. A consumer slower than
// the buffer ends the call with RESOURCE_EXHAUSTED naming the offset to resume from.
import type { RecordBatch, Schema } from "apache-arrow";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { JetStreamManager, JsMsg } from "@nats-io/jetstream";
import type { Principal } from "../auth/index.js";
import { decodeWatermark } from "../../protocols/codec.js";
import { parseWalSubject, walStream, walSubject, walSubjectsOfTable, walSubjectsOfTenant, watermarkStream, watermarkSubjectsOfTenant } from "../../protocols/subjects.js";
import { FeedSession, encodeOffset, feedDecodes, feedTables, isStartTime, parseFrom, planFeed, pushMerged, readTableGaps, shardKey, splitBatch } from "../feed/index.js";
import type { FeedBatch, FeedFrom, FeedOffset, FeedPlan, WalGap } from "../feed/index.js";
import { arrowSchema, tableBytes, toRecordBatches } from "../query/index.js";
import { compactionFloor, decodeWalEntry, walPull } from "../wal/index.js";
import type { ApiContext } from "./context.js";
import { ApiError } from "./errors.js";
import { QueryError } from "../../protocols/errors.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { presentBatch, presentSchema } from "./presentation.js";
import { parseQuery } from "./queryjson.js";

/**
 * Rows of compacted history a stateful subscription may read back from
 * ClickHouse to build its state (PX_FEED_HISTORY_MAX_ROWS, default 10 M): a
 * last-by over a table's whole history must not read a billion rows at
 * subscribe time.
 */
export function feedHistoryMaxRows(env: Record<string, string | undefined> = process.env): number {
  const raw = env.PX_FEED_HISTORY_MAX_ROWS;
  if (raw === undefined || raw === "") return 10_000_000;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`PX_FEED_HISTORY_MAX_ROWS=${raw} is not a number of rows >= 0; unset it for the default (10000000)`);
  return n;
}

/**
 * About the most bytes of rows a subscription puts in one message: a record's
 * update larger than that goes out in parts (src/feed/parts.ts). Well under
 * the 4 MiB a gRPC client takes by default (grpc-js, grpcio, grpc-java).
 */
export const FEED_MESSAGE_BYTES = 1 << 20;

/** Batches sent last that a parked state keeps (src/feed/parked.ts), and their bytes at most. */
const RECENT_SENT = 64;
const RECENT_SENT_BYTES = 16 << 20;

/** Messages a subscription holds for a slow consumer by default, and at most. */
export const DEFAULT_FEED_BUFFER = 1024;
export const MAX_FEED_BUFFER = 65_536;

/** What a subscription asks for (the fields of proxist.v1.SubscribeRequest). */
export interface FeedRequest {
  readonly feedJson: string | Uint8Array;
  /** "" or "now", "snapshot", an offset token, or JSON {"time": µs} / {"offset": token} (src/feed/from.ts). */
  readonly from: string;
  readonly durable: boolean;
  /** 0: the default. */
  readonly maxBuffer: number;
  readonly conflate: boolean;
  /** "": the default. */
  readonly lateness: string;
}

/** A shard's place at one message: the LSN covered, P, and H in µs (-1: not hosted by this node). */
export interface ShardAt {
  readonly table: string;
  readonly bucket: number;
  readonly lsn: number;
  readonly persistedLsn: number;
  readonly horizonMicros: number;
}

/** Where one message of the feed stands: its resume token and every shard's LSN, P and H. */
export interface FeedAt {
  readonly kind: "start" | "snapshot" | "update";
  readonly feed: string;
  readonly offset: string;
  readonly rows: number;
  readonly shards: readonly ShardAt[];
}

/** The transport's side: writes one message, resolving once the client can take more (or `signal` fired). */
export interface FeedSink {
  start(schema: Schema, at: FeedAt, signal: AbortSignal): Promise<void>;
  batch(batch: RecordBatch, at: FeedAt, signal: AbortSignal): Promise<void>;
}

async function lastSeqOn(jsm: JetStreamManager, tenant: string, table: string, bucket: number): Promise<number> {
  const m = await jsm.streams.getMessage(walStream(tenant), { last_by_subj: walSubject(tenant, table, bucket) }).catch(() => null);
  return m?.seq ?? 0;
}

/**
 * Runs the subscription until `signal` aborts (rejects with its reason) or
 * the feed fails (rejects with an ApiError); `stops` gets the cleanups of the
 * consumers it opens, for the caller to run when the call ends.
 */
export async function runFeed(ctx: ApiContext, principal: Principal, req: FeedRequest, signal: AbortSignal, sink: FeedSink, stops: (() => void)[]): Promise<never> {
  const tenant = principal.tenant;
  const query = parseQuery(principal, req.feedJson, "feed_json");
  const catalog = ctx.node.catalog().get(tenant);
  const plan = planFeed(tenant, req.lateness === "" ? { query } : { query, lateness: req.lateness }, (t) => catalog?.get(t), () => [...(catalog?.keys() ?? [])]);
  const tables = feedTables(plan);
  const from = parseFrom(req.from, plan.fingerprint, tables);
  const maxBuffer = req.maxBuffer === 0 ? DEFAULT_FEED_BUFFER : Math.min(req.maxBuffer, MAX_FEED_BUFFER);
  const jsm = await ctx.jsm();
  const shards = tables.flatMap((t) => Array.from({ length: t.shards }, (_, bucket) => ({ table: t.name, bucket })));
  const lastLsn = Math.max(0, ...(await Promise.all(shards.map((s) => lastSeqOn(jsm, tenant, s.table, s.bucket)))));
  // A stateful subscription that ended for a slow consumer left its state here; resuming from its last offset goes on from it.
  const parked = typeof from === "object" && !isStartTime(from) && from.part === undefined && !req.durable ? ctx.parkedFeeds?.take(tenant, plan, from) : undefined;
  const session = new FeedSession(plan, { from, lastLsn, durable: req.durable, maxBuffer, conflate: req.conflate }, parked);
  // Until the call ends, the node's WAL compaction keeps every record from the first this subscription has not received.
  let received = session.readFrom - 1;
  stops.push(ctx.subscriptions?.add({ tenant, tables: tables.map((t) => t.name), needs: () => received + 1 }) ?? (() => {}));
  const { notes, gaps } = await walNotes(ctx, jsm, tenant, plan, from, shards, session.readFrom);
  if (parked !== undefined) notes.push(`resumed from the state the call that ended at this offset left on this node: the WAL is read on from LSN ${session.readFrom}`);
  const raw = arrowSchema(plan.fields, new Map([["proxist.feed", plan.fingerprint], ...(notes.length > 0 ? [["proxist.notes", notes.join("\n")] as [string, string]] : [])]));
  // Time columns leave as Arrow timestamp[us, UTC], as query results do.
  const schema = presentSchema(raw, "timestamp");

  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let readError: Error | undefined;
  const fail = (e: Error): void => {
    readError ??= e;
    poke();
  };
  const js = jetstream(ctx.node.nc);
  // Watermarks: the last one of every shard of the tenant, then each new one.
  const wmConsumer = await js.consumers.get(watermarkStream(tenant), { filter_subjects: watermarkSubjectsOfTenant(tenant), deliver_policy: DeliverPolicy.LastPerSubject }).catch(() => undefined);
  if (wmConsumer !== undefined) {
    const wms = await wmConsumer.consume({ max_messages: 64 });
    // Ordered consumers outlive stop() on the server (5 minutes inactive): delete them when the call ends.
    stops.push(() => void wms.stop(), () => void wmConsumer.delete().catch(() => false));
    void (async () => {
      for await (const m of wms) {
        try {
          const w = decodeWatermark(m.data);
          session.setPersisted(w.table, w.bucket, Number(w.persistedLsn));
          poke();
        } catch {
          // An unreadable watermark: the next one supersedes it.
        }
      }
    })().catch(fail);
  } else if (req.durable) throw new ApiError("UNAVAILABLE", `tenant ${tenant} has no watermark stream yet, so no row can be known durable; retry once the node serves the tenant`);

  // A write blocked by a stalled client must not hold the call open once the buffer overflowed: the overflow cuts the wait.
  const overflow = new AbortController();
  const writeSignal = AbortSignal.any([signal, overflow.signal]);
  const specs = new Map(tables.map((t) => [t.name, t]));
  const walConsumer = await js.consumers.get(walStream(tenant), {
    filter_subjects: tables.length === 1 ? walSubjectsOfTable(tenant, plan.left.name) : walSubjectsOfTenant(tenant),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: session.readFrom,
  });
  // Every delivery it has now is a record stored before the subscription started (the gap merge below needs the count).
  const storedAtStart = gaps.length === 0 ? 0 : ((await walConsumer.info(true).catch(() => undefined))?.num_pending ?? 0);
  const msgs = await walConsumer.consume(await walPull(js, walStream(tenant), 256));
  stops.push(() => void msgs.stop(), () => void walConsumer.delete().catch(() => false));
  const deliveries = msgs[Symbol.asyncIterator]();
  const pushWal = (m: JsMsg): void => {
    received = m.seq;
    const a = parseWalSubject(m.subject);
    const spec = a === undefined ? undefined : specs.get(a.table);
    if (a === undefined || spec === undefined) return;
    session.push({ table: a.table, bucket: a.bucket, lsn: m.seq, batch: feedDecodes.get(tenant, a.table, spec.version, m.seq, () => decodeWalEntry(spec, m.seq, m.data).batch) });
    if (session.overflowed) overflow.abort();
    if (session.buffered > 0 || session.overflowed) poke();
  };
  // The records compaction purged below the WAL's start come first, read back from ClickHouse, a page at a time (the
  // reader waits while the buffer is half full), merged in LSN order with the WAL's own records below them: shards
  // compact to floors of their own, so the WAL still holds another shard's records below this shard's floor, and a
  // feed folds its shards' records in LSN order.
  let room: (() => void) | undefined;
  signal.addEventListener("abort", () => room?.(), { once: true });
  const historyCap = feedHistoryMaxRows();
  let historyRows = 0;
  /** Reads the gap (the WAL's records below it merged in); returns the WAL delivery read ahead of it, if any. */
  const readGap = async (): Promise<JsMsg | undefined> => {
    // PX_UNSAFE_NO_WAL_GAP_READ=1: the negative control of the gap tests (the compacted rows are then missing).
    if (gaps.length === 0 || process.env.PX_UNSAFE_NO_WAL_GAP_READ === "1") return undefined;
    return pushMerged({
      gap: (push) => readTableGaps(gaps.map((g) => ({ ...g, read: ctx.walHistory!(tenant, g.spec) })), push),
      wal: deliveries,
      stored: storedAtStart,
      lsnOf: (m) => m.seq,
      onWal: pushWal,
      // PX_UNSAFE_NO_GAP_MERGE=1 (TESTS ONLY, the negative control of test/feed/gapstate.int.test.ts): the WAL's records come after the gap's.
      merge: process.env.PX_UNSAFE_NO_GAP_MERGE !== "1",
      onGap: async (rec) => {
        if (signal.aborted || session.overflowed) throw new Error("the subscription ended");
        // A raw feed streams the history out; a stateful one keeps what it reads.
        if (plan.kind !== "raw") historyRows += rec.batch.rows;
        if (historyRows > historyCap) {
          throw new ApiError(
            "FAILED_PRECONDITION",
            `feed ${plan.fingerprint}: its state needs more than ${historyCap} rows of compacted WAL history read back from ClickHouse (PX_FEED_HISTORY_MAX_ROWS); declare it as a materialized feed (its state is checkpointed), start a raw feed "now", or raise the limit`,
          );
        }
        session.push(rec);
        if (session.overflowed) overflow.abort();
        poke();
        while (session.buffered >= maxBuffer / 2 && !signal.aborted && !session.overflowed) await new Promise<void>((r) => (room = r));
      },
    });
  };
  void (async () => {
    const ahead = await readGap();
    if (ahead !== undefined && !signal.aborted && !session.overflowed) pushWal(ahead);
    for (let r = await deliveries.next(); !r.done; r = await deliveries.next()) {
      if (signal.aborted || session.overflowed) break;
      pushWal(r.value);
    }
  })().catch(fail);

  const at = (kind: FeedAt["kind"], rows: number, offset: FeedOffset): FeedAt => ({
    kind,
    feed: plan.fingerprint,
    offset: encodeOffset(offset),
    rows,
    shards: shards.map((s) => ({
      table: s.table,
      bucket: s.bucket,
      lsn: offset.lsn[shardKey(s.table, s.bucket)] ?? 0,
      persistedLsn: session.persisted.get(shardKey(s.table, s.bucket)) ?? 0,
      horizonMicros: Math.trunc(ctx.horizon?.(tenant, s.table, s.bucket) ?? -1),
    })),
  });
  let sent: FeedOffset = session.startOffset;
  /** When a write was cut off: the batches not sent (undefined when it was cut inside a record's parts). */
  let unsent: FeedBatch[] | undefined = [];
  /** The last batches sent whole (a parked state keeps them: the client may not have read the last few); only kinds that park. */
  const recent: FeedBatch[] = [];
  /** Their sizes (tableBytes), so each is measured once. */
  const recentSizes: number[] = [];
  const keepsRecent = plan.kind !== "raw" && !req.durable;
  let recentBytes = 0;
  await sink.start(schema, at("start", 0, sent), signal);
  while (!signal.aborted) {
    // Refusals by name (a record ClickHouse does not hold whole, too much history) go out as they are.
    if (readError instanceof ApiError || readError instanceof QueryError) throw readError;
    if (readError !== undefined) throw new ApiError("UNAVAILABLE", `feed ${plan.fingerprint}: reading the WAL failed (${readError.message}); resume with from = the last offset received`);
    const wholes = session.drain();
    for (let w = 0; w < wholes.length && !writeSignal.aborted; w++) {
      const parts = [...splitBatch(wholes[w]!, FEED_MESSAGE_BYTES, tableBytes)];
      for (let k = 0; k < parts.length; k++) {
        if (writeSignal.aborted) {
          unsent = k === 0 ? wholes.slice(w) : undefined;
          break;
        }
        const b = parts[k]!;
        const [rb] = toRecordBatches(b.table, raw, Infinity);
        await sink.batch(presentBatch(rb!, schema), at(b.kind, b.table.rows, b.offset), writeSignal);
        sent = b.offset;
        if (keepsRecent && k === parts.length - 1) {
          const size = tableBytes(wholes[w]!.table);
          recent.push(wholes[w]!);
          recentSizes.push(size);
          recentBytes += size;
          while (recent.length > RECENT_SENT || (recentBytes > RECENT_SENT_BYTES && recent.length > 1)) {
            recent.shift();
            recentBytes -= recentSizes.shift()!;
          }
        }
      }
      if (writeSignal.aborted && unsent !== undefined && unsent.length === 0) unsent = wholes.slice(w + 1);
    }
    const r = room;
    room = undefined;
    r?.();
    if (session.overflowed) {
      // Stateless (raw) feeds resume from the WAL alone; a state built from compacted history read back is not parked (the resume reads it again).
      const state = session.overflowReason === "consumer" && plan.kind !== "raw" && !req.durable && gaps.length === 0 && unsent !== undefined && sent.part === undefined ? session.parkable(unsent) : undefined;
      if (state !== undefined) ctx.parkedFeeds?.park({ tenant, fingerprint: plan.fingerprint, tables, at: sent, recent, ...state });
      const why =
        session.overflowReason === "durable"
          ? `${maxBuffer} messages wait for their shard's persisted LSN (P), which has not advanced (is ClickHouse or the sink down?)`
          : `the consumer read too slowly and the subscription's buffer of ${maxBuffer} messages is full`;
      throw new ApiError(
        "RESOURCE_EXHAUSTED",
        `feed ${plan.fingerprint}: ${why}; nothing is lost: subscribe again with from = "${encodeOffset(sent)}" (the offset of the last message sent)${plan.kind === "lastBy" || plan.kind === "bars" ? ", or set conflate to get the latest state instead" : ""}`,
      );
    }
    if (session.buffered === 0 && readError === undefined) {
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        wake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
  }
  throw signal.reason;
}

/**
 * Why the feed may differ from the batch query at its start: the WAL below its
 * first sequence was trimmed, by a limit or a hand purge (the stream's first
 * sequence) or by compaction (a shard's floor in px_compaction: the stream's
 * anchor record keeps its first sequence in place, so only the floors show it).
 * A raw feed resuming from an offset below a compaction floor, and a stateful
 * feed (last-by, bars, rolling, as-of: they fold the WAL from its first
 * record), get `gaps`: the purged records of each table, which ClickHouse
 * holds (compaction purges only what the sink persisted), are read from there.
 */
async function walNotes(
  ctx: ApiContext,
  jsm: JetStreamManager,
  tenant: string,
  plan: FeedPlan,
  from: FeedFrom,
  shards: readonly { table: string; bucket: number }[],
  readFrom: number,
): Promise<{ notes: string[]; gaps: { spec: TableSpec; gaps: WalGap[] }[] }> {
  const [streamFirst, ...floors] = await Promise.all([
    jsm.streams
      .info(walStream(tenant))
      .then((i) => i.state.first_seq)
      .catch(() => 1),
    ...shards.map((s) => compactionFloor(jsm, { tenant, table: s.table, bucket: s.bucket }).catch(() => 0)),
  ]);
  const first = Math.max(streamFirst, ...floors);
  if (first <= readFrom) return { notes: [], gaps: [] };
  const rawResume = plan.kind === "raw" && typeof from === "object" && !isStartTime(from);
  const stateful = plan.kind !== "raw";
  if (stateful && (streamFirst > readFrom || ctx.walHistory === undefined)) {
    const why = streamFirst > readFrom ? "records below it were removed from the stream itself (a limit or a purge), not by compaction" : "the older records were compacted and this node has no ClickHouse to read them from";
    return { notes: [`the WAL starts at LSN ${first}: the feed's state is built from there (older rows are not in it: ${why})`], gaps: [] };
  }
  if (!rawResume && !stateful) return { notes: [`the WAL starts at LSN ${first}: the feed sends what it holds from there (older rows are not in it)`], gaps: [] };
  const refuse = (why: string): never => {
    throw new ApiError("FAILED_PRECONDITION", `feed ${plan.fingerprint}: the offset needs WAL records from LSN ${readFrom}, but the WAL now starts at ${first}; ${why}: start from "now" or "snapshot" and read the gap with a range query`);
  };
  // Records gone by a stream limit or a hand purge may never have reached ClickHouse.
  if (streamFirst > readFrom) refuse(`records below ${streamFirst} were removed from the stream itself (a limit or a purge), not by compaction, so ClickHouse may not hold them`);
  if (ctx.walHistory === undefined) refuse("the older records were compacted and this node has no ClickHouse to read them from");
  const byTable = new Map<string, WalGap[]>();
  shards.forEach((s, i) => {
    // A stateful feed folds every record from the first: its state needs the whole compacted history.
    const after = rawResume ? ((from as FeedOffset).lsn[shardKey(s.table, s.bucket)] ?? 0) : readFrom - 1;
    const below = floors[i]!;
    if (below > after + 1) byTable.set(s.table, [...(byTable.get(s.table) ?? []), { bucket: s.bucket, after, below }]);
  });
  return { notes: [], gaps: feedTables(plan).flatMap((spec) => (byTable.has(spec.name) ? [{ spec, gaps: byTable.get(spec.name)! }] : [])) };
}
