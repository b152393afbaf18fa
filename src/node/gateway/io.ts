// Real NATS IO for the gateway actor: the ingest subscription (and its replies)
// and JetStream appends. Each is a callback actor that returns its cleanup; the
// catalog actor is in ./catalog.ts.
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { MsgHdrs } from "@nats-io/transport-node";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { JetStreamClient } from "@nats-io/jetstream";
import { fromCallback } from "xstate";
import type { GatewayEvent, IngestRequest, SourceCommand, WalCommand } from "../../../actors/gateway.js";
import type { IngestReply, WalAppend } from "../../../protocols/ingest.js";
import type { BytePool } from "../../codec/pool.js";
import type { Producer, WalAppendPlan } from "../../ingest/prepare.js";
import { HDR_BATCH_DIGEST, HDR_BATCH_RECORDS, HDR_MSG_ID, HDR_PRODUCER_ID, HDR_PRODUCER_SEQ, INGEST_WILDCARD, ingestErrorSubject, parseIngestSubject } from "../../../protocols/subjects.js";
import { parseProducer } from "../../ingest/headers.js";
import { replyMux } from "../../ingest/replymux.js";
import { TaggedError } from "../../../protocols/tagged.js";
import { PairReusedError, pairMsgId, pairReused, recordsDigest } from "./pairs.js";
import type { DigestAt } from "./pairs.js";
import type { Meter } from "../meter.js";
import type { BatchSpans } from "./spans.js";
import { TRACEPARENT } from "../obs/index.js";
import { walFullCause } from "../../wal/index.js";
import { oversizeRecord } from "../../ingest/recordlimit.js";
import type { ProducerMint } from "./mint.js";

const encoder = new TextEncoder();

export interface SourceStats {
  fireAndForgetFailures: number;
}

/**
 * In-process ingest (gRPC, Arrow Flight): batches enter the same gateway actor
 * as NATS ones and get the same validation, back-pressure and acks.
 */
export class LocalIngress {
  nextId = -1;
  readonly waiting = new Map<number, (reply: IngestReply) => void>();
  send: ((e: GatewayEvent) => void) | undefined;
  /** Set by the source actor: arrival times for the ack-latency histogram. */
  meter: { readonly started: Map<number, number>; readonly meter: Meter } | undefined;
  /** Set by the source actor: the batches' spans (tracing on). */
  spans: BatchSpans | undefined;
  /** Makes up a producer pair for a batch that came without one (undefined: such batches have none, the tests' negative control). */
  mint: ProducerMint | undefined;

  /** A batch from the gRPC or Flight API; `traceparent` is the call's trace context. */
  submit({ traceparent, ...r }: Omit<IngestRequest, "id" | "wantsReply"> & { readonly traceparent?: string | undefined }): Promise<IngestReply> {
    const send = this.send;
    if (!send) return Promise.reject(new Error("the gateway is not running"));
    // Negative ids never collide with the NATS source's positive ones.
    const id = this.nextId--;
    this.spans?.begin(id, r.tenant, r.table, r.payload.byteLength, traceparent);
    if (this.meter !== undefined) {
      this.meter.started.set(id, performance.now());
      this.meter.meter.ingestReceived(r.tenant, r.table, r.payload.byteLength);
    }
    const producer = r.producer ?? this.mint?.next();
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      send({ type: "ingest", request: { ...r, producer, id, wantsReply: true, atMs: performance.now() } });
    });
  }
}

export function natsIngestSource(nc: NatsConnection, stats: SourceStats, local: LocalIngress = new LocalIngress(), queue = "px-gateway", meter?: Meter, spans?: BatchSpans) {
  return fromCallback<SourceCommand>(({ sendBack, receive }) => {
    const waiting = new Map<number, Msg>();
    // Arrival time per batch (only with metrics on): the ack-latency histogram's start.
    const started = new Map<number, number>();
    let nextId = 1;
    local.send = sendBack;
    local.meter = meter === undefined ? undefined : { started, meter };
    local.spans = spans;
    const sub: Subscription = nc.subscribe(INGEST_WILDCARD, {
      queue,
      callback: (err, msg) => {
        if (err) return;
        const addr = parseIngestSubject(msg.subject);
        if (!addr) return;
        const id = nextId++;
        if (meter !== undefined) {
          started.set(id, performance.now());
          meter.ingestReceived(addr.tenant, addr.table, msg.data.byteLength);
        }
        const h = msg.headers;
        spans?.begin(id, addr.tenant, addr.table, msg.data.byteLength, h?.get(TRACEPARENT) || undefined);
        const producer = parseProducer(h?.get(HDR_PRODUCER_ID) || undefined, h?.get(HDR_PRODUCER_SEQ) || undefined);
        const request: IngestRequest = {
          id,
          tenant: addr.tenant,
          table: addr.table,
          payload: msg.data,
          producer: producer.ok ? (producer.producer ?? local.mint?.next()) : undefined,
          wantsReply: Boolean(msg.reply),
          atMs: performance.now(),
          ...(producer.ok ? {} : { envelopeError: producer.message }),
        };
        if (msg.reply) waiting.set(id, msg);
        sendBack({ type: "ingest", request } satisfies GatewayEvent);
      },
    });
    receive((cmd) => {
      if (meter !== undefined) {
        const t0 = started.get(cmd.id);
        started.delete(cmd.id);
        if (t0 !== undefined) meter.ingestReplied(cmd.tenant, cmd.table, (performance.now() - t0) / 1000, cmd.reply.ok ? undefined : cmd.reply.error.code);
      }
      spans?.end(cmd.id, cmd.reply.ok ? undefined : cmd.reply.error.code);
      const resolve = local.waiting.get(cmd.id);
      if (resolve) {
        local.waiting.delete(cmd.id);
        resolve(cmd.reply);
        return;
      }
      const msg = waiting.get(cmd.id);
      waiting.delete(cmd.id);
      if (msg) {
        msg.respond(encoder.encode(JSON.stringify(cmd.reply)));
      } else if (!cmd.reply.ok) {
        // Fire-and-forget publisher: nobody to answer, so count it and publish it where operators look.
        stats.fireAndForgetFailures++;
        nc.publish(ingestErrorSubject(cmd.tenant, cmd.table), encoder.encode(JSON.stringify(cmd.reply)));
      }
    });
    return () => {
      local.send = undefined;
      local.meter = undefined;
      local.spans = undefined;
      sub.unsubscribe();
    };
  });
}

const decoder = new TextDecoder();

interface PubAckJson {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

/** A stored record: where the WAL put it (its stream, for reading it back) and what the gateway acks. */
type Stored = WalAppend & { readonly stream: string };
/** A batch's first record under its producer pair: the pair-level id and the batch's digest. */
interface PairMark {
  readonly msgId: string;
  readonly digest: string;
  /** WAL records of the batch (Px-Batch-Records: the ingest status tells a batch cut short). */
  readonly records: number;
}

/**
 * JetStream appends as plain publishes whose replies (the PubAcks) come back on
 * one shared inbox subscription: what `js.publish` does, without its per-call
 * request machinery. Falls back to `js.publish` for a client without a connection.
 */
export function walAppender(js: JetStreamClient, timeoutMs: number): (plan: WalAppendPlan, pair?: PairMark, traceparent?: string) => Promise<Stored> {
  const headersOf = (plan: WalAppendPlan, pair: PairMark | undefined, traceparent?: string): MsgHdrs | undefined => {
    const msgId = pair?.msgId ?? plan.msgId;
    if (msgId === undefined && traceparent === undefined) return undefined;
    const h = natsHeaders();
    if (msgId !== undefined) h.set(HDR_MSG_ID, msgId);
    // Traced batches only: the shard and the sink continue the trace from the record.
    if (traceparent !== undefined) h.set(TRACEPARENT, traceparent);
    if (pair !== undefined) {
      h.set(HDR_BATCH_DIGEST, pair.digest);
      h.set(HDR_BATCH_RECORDS, String(pair.records));
    }
    return h;
  };
  const nc = (js as unknown as { nc?: NatsConnection }).nc;
  if (!nc || typeof nc.publish !== "function") {
    return async (plan, pair, traceparent) => {
      const h = headersOf(plan, pair, traceparent);
      const ack = await js.publish(plan.subject, plan.record, { timeout: timeoutMs, ...(h === undefined ? {} : { headers: h }) });
      notStoredCheck(plan.subject, ack.seq, ack.duplicate);
      return { bucket: plan.bucket, lsn: ack.seq, rows: plan.rows, duplicate: ack.duplicate, stream: ack.stream };
    };
  }
  return async (plan, pair, traceparent) => {
    const msg = await replyMux(nc).request(plan.subject, plan.record, timeoutMs, headersOf(plan, pair, traceparent));
    let ack: PubAckJson;
    try {
      ack = JSON.parse(decoder.decode(msg.data)) as PubAckJson;
    } catch {
      throw new Error(`JetStream answered the append to ${plan.subject} with something that is not a PubAck`);
    }
    if (ack.error) throw new Error(`JetStream refused the append to ${plan.subject}: ${ack.error.description ?? "error"} (code ${ack.error.err_code ?? ack.error.code ?? "?"})`);
    if (!ack.stream || typeof ack.seq !== "number") throw new Error(`JetStream answered the append to ${plan.subject} with an invalid PubAck`);
    notStoredCheck(plan.subject, ack.seq, ack.duplicate === true);
    return { bucket: plan.bucket, lsn: ack.seq, rows: plan.rows, duplicate: ack.duplicate === true, stream: ack.stream };
  };
}

/** A PubAck that names no stored message: the record is not in the WAL, and the batch must not be acknowledged. */
export class WalNotStoredError extends TaggedError("WalNotStoredError") {}

/**
 * Stream sequences start at 1: a PubAck with sequence 0 stores nothing. nats-server 2.10 (clustered streams)
 * stages a record's Nats-Msg-Id before the store and keeps it when the store is refused (e.g. max_bytes with
 * discard new), then answers every append of that id within the duplicate window `{"seq":0,"duplicate":true}`
 * (seen with 2.10.27; 2.9.10 refuses again). Taking that 0 as the record's LSN acknowledged rows that were never
 * stored (the fault suite, seed 19: a batch acknowledged at LSNs 369,0,0,0,0,0 after the WAL had been full).
 */
export function notStoredCheck(subject: string, seq: number, duplicate: boolean | undefined): void {
  if (seq >= 1) return;
  throw new WalNotStoredError(
    duplicate === true
      ? `JetStream answered the append to ${subject} as a duplicate of a message it never stored (sequence 0: this record's Nats-Msg-Id is still held from an append it refused, e.g. while the WAL was full); not stored: retry after JetStream's duplicate window (2 minutes)`
      : `JetStream answered the append to ${subject} with sequence ${seq}; not stored: retry`,
  );
}

/** Test seam: runs after JetStream stored every record of a batch, before the gateway hears of it. */
export type AfterAppend = (cmd: WalCommand) => void;
/** Test seam: true makes the wal actor act as if the PubAck of a record JetStream stored was lost (attempt counts from 1). */
export type LoseWalAck = (subject: string, attempt: number) => boolean;

const acked = ({ bucket, lsn, rows, duplicate }: Stored): WalAppend => ({ bucket, lsn, rows, duplicate });

/** Waits before the gateway appends a failed batch again (ms); one entry per retry. */
export const WAL_RETRY_DELAYS_MS: readonly number[] = [200, 1_000];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface JetstreamWalOptions {
  timeoutMs?: number;
  afterAppend?: AfterAppend;
  loseAck?: LoseWalAck;
  digestAt?: DigestAt;
  meter?: Meter | undefined;
  spans?: BatchSpans | undefined;
  retryDelaysMs?: readonly number[];
  /** Test-only negative control: send records over max_payload anyway. */
  skipRecordLimit?: boolean;
}

/**
 * The gateway's `wal` actor: each append command is answered exactly once
 * (`appended`, `appendRefused` or `appendFailed`, with the command's batch), and
 * the batch's record buffers go back to `recordPool` once JetStream acked them.
 * With `digestAt` (the producer-pair check, ./pairs.ts) a batch with a client's
 * pair goes out first record first; without it (tests' negative control) every
 * record at once under its per-bucket id.
 *
 * A record over the server's max_payload refuses the whole batch before any of
 * it is sent (src/ingest/recordlimit.ts). A batch whose every record has a
 * Nats-Msg-Id (a client's pair or a minted one) is appended again after a
 * failure (a lost PubAck, a timeout, a reconnect): JetStream stores what it
 * already has once, so a batch stored in part is completed, not duplicated.
 */
export function jetstreamWal(js: JetStreamClient, recordPool?: BytePool, o: JetstreamWalOptions = {}) {
  return fromCallback<WalCommand>(({ sendBack, receive }) => {
    let stopped = false;
    const send = walAppender(js, o.timeoutMs ?? 10_000);
    const loseAck = o.loseAck;
    const nc = (js as unknown as { nc?: NatsConnection }).nc;
    const digestAt = o.digestAt;
    const retryDelays = o.retryDelaysMs ?? WAL_RETRY_DELAYS_MS;
    const release = (cmd: WalCommand): void => {
      if (recordPool !== undefined) for (const plan of cmd.plans) recordPool.release(plan.record.buffer);
    };
    const withPair = async (cmd: WalCommand, producer: Producer, check: DigestAt, tp: string | undefined, append: typeof send): Promise<Stored[]> => {
      const [first, ...rest] = cmd.plans;
      const digest = recordsDigest(cmd.plans);
      const head = await append(first!, { msgId: pairMsgId(producer), digest, records: cmd.plans.length }, tp);
      if (head.duplicate) {
        const held = await check(head.stream, head.lsn);
        if (held === undefined) throw new Error(`producer ${producer.id} seq ${producer.seq}: the batch first stored under this pair (LSN ${head.lsn}) can no longer be read to compare; retry later or use a new Px-Producer-Seq`);
        if (held !== digest) throw pairReused(cmd.batch.tenant, cmd.batch.table, producer);
      }
      return [head, ...(await Promise.all(rest.map((plan) => append(plan, undefined, tp))))];
    };
    const attempt = (cmd: WalCommand, tp: string | undefined, n: number): Promise<Stored[]> => {
      const append: typeof send =
        loseAck === undefined
          ? send
          : async (plan, pair, traceparent) => {
              const stored = await send(plan, pair, traceparent);
              if (loseAck(plan.subject, n)) throw new Error(`the PubAck of ${plan.subject} (LSN ${stored.lsn}) was lost (test seam)`);
              return stored;
            };
      const producer = cmd.producer;
      // A minted pair is never reused: no pair check needed.
      return digestAt !== undefined && producer !== undefined && producer.generated !== true && cmd.plans.length > 0
        ? withPair(cmd, producer, digestAt, tp, append)
        : Promise.all(cmd.plans.map((plan) => append(plan, undefined, tp)));
    };
    const appendAll = async (cmd: WalCommand, tp: string | undefined): Promise<Stored[]> => {
      // Only records with a Nats-Msg-Id are safe to send again: JetStream drops the copies it has.
      const idempotent = cmd.producer !== undefined || cmd.plans.every((p) => p.msgId !== undefined);
      for (let n = 1; ; n++) {
        try {
          return await attempt(cmd, tp, n);
        } catch (e) {
          const delay = retryDelays[n - 1];
          if (stopped || !idempotent || delay === undefined || e instanceof PairReusedError || walFullCause((e as Error).message) !== undefined) throw e;
          await sleep(delay);
        }
      }
    };
    const meter = o.meter;
    receive((cmd) => {
      const over = o.skipRecordLimit === true ? undefined : oversizeRecord(cmd.batch.tenant, cmd.batch.table, cmd.plans, nc?.info?.max_payload);
      if (over !== undefined) {
        // Refused before anything was sent: nothing of the batch is stored, and the WAL is fine for everyone else.
        release(cmd);
        if (!stopped) sendBack({ type: "appendRefused", batch: cmd.batch, message: over.message, code: "RESOURCE_EXHAUSTED" } satisfies GatewayEvent);
        return;
      }
      const t0 = meter === undefined ? 0 : performance.now();
      const tp = o.spans?.walStart(cmd.batch.id, cmd.plans.length);
      appendAll(cmd, tp).then(
        (appends) => {
          o.spans?.walEnd(cmd.batch.id, appends.map((a) => a.lsn));
          if (meter !== undefined) {
            let duplicates = 0;
            for (const a of appends) if (a.duplicate) duplicates++;
            meter.walAppended(cmd.batch.tenant, cmd.batch.table, (performance.now() - t0) / 1000, appends.length, duplicates);
          }
          o.afterAppend?.(cmd);
          // JetStream acked every record: the connection wrote them out, their buffer can be reused.
          release(cmd);
          if (!stopped) sendBack({ type: "appended", batch: cmd.batch, appends: appends.map(acked) } satisfies GatewayEvent);
        },
        (e: unknown) => {
          o.spans?.walEnd(cmd.batch.id, undefined, (e as Error).message);
          if (e instanceof PairReusedError) {
            // Only the first record was sent, and JetStream acked it (as a duplicate): every buffer is free.
            release(cmd);
            if (!stopped) sendBack({ type: "appendRefused", batch: cmd.batch, message: e.message } satisfies GatewayEvent);
          } else if (!stopped) {
            const message = (e as Error).message;
            sendBack({ type: "appendFailed", batch: cmd.batch, message, walFull: walFullCause(message) } satisfies GatewayEvent);
          }
        },
      );
    });
    return () => {
      stopped = true;
    };
  });
}

export { natsHeaders };
