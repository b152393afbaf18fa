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
import { HDR_BATCH_DIGEST, HDR_MSG_ID, HDR_PRODUCER_ID, HDR_PRODUCER_SEQ, INGEST_WILDCARD, ingestErrorSubject, parseIngestSubject } from "../../../protocols/subjects.js";
import { parseProducer } from "../../ingest/headers.js";
import { replyMux } from "../../ingest/replymux.js";
import { PairReusedError, pairMsgId, pairReused, recordsDigest } from "./pairs.js";
import type { DigestAt } from "./pairs.js";
import type { Meter } from "../meter.js";
import type { BatchSpans } from "./spans.js";
import { TRACEPARENT } from "../obs/index.js";
import { walFullCause } from "../../wal/index.js";

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
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      send({ type: "ingest", request: { ...r, id, wantsReply: true, atMs: performance.now() } });
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
          producer: producer.ok ? producer.producer : undefined,
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
}

/**
 * JetStream appends as plain publishes whose replies (the PubAcks) come back on
 * one shared inbox subscription: what `js.publish` does, without its per-call
 * request machinery. Falls back to `js.publish` for a client without a connection.
 */
function walAppender(js: JetStreamClient, timeoutMs: number): (plan: WalAppendPlan, pair?: PairMark, traceparent?: string) => Promise<Stored> {
  const headersOf = (plan: WalAppendPlan, pair: PairMark | undefined, traceparent?: string): MsgHdrs | undefined => {
    const msgId = pair?.msgId ?? plan.msgId;
    if (msgId === undefined && traceparent === undefined) return undefined;
    const h = natsHeaders();
    if (msgId !== undefined) h.set(HDR_MSG_ID, msgId);
    // Traced batches only: the shard and the sink continue the trace from the record.
    if (traceparent !== undefined) h.set(TRACEPARENT, traceparent);
    if (pair !== undefined) h.set(HDR_BATCH_DIGEST, pair.digest);
    return h;
  };
  const nc = (js as unknown as { nc?: NatsConnection }).nc;
  if (!nc || typeof nc.publish !== "function") {
    return async (plan, pair, traceparent) => {
      const h = headersOf(plan, pair, traceparent);
      const ack = await js.publish(plan.subject, plan.record, { timeout: timeoutMs, ...(h === undefined ? {} : { headers: h }) });
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
    return { bucket: plan.bucket, lsn: ack.seq, rows: plan.rows, duplicate: ack.duplicate === true, stream: ack.stream };
  };
}

/** Test seam: runs after JetStream stored every record of a batch, before the gateway hears of it. */
export type AfterAppend = (cmd: WalCommand) => void;

const acked = ({ bucket, lsn, rows, duplicate }: Stored): WalAppend => ({ bucket, lsn, rows, duplicate });

/**
 * The gateway's `wal` actor: each append command is answered exactly once
 * (`appended`, `appendRefused` or `appendFailed`, with the command's batch), and
 * the batch's record buffers go back to `recordPool` once JetStream acked them.
 * With `digestAt` (the producer-pair check, ./pairs.ts) a batch with a pair
 * goes out first record first; without it (tests' negative control) every
 * record at once under its per-bucket id.
 */
export function jetstreamWal(js: JetStreamClient, recordPool?: BytePool, o: { timeoutMs?: number; afterAppend?: AfterAppend; digestAt?: DigestAt; meter?: Meter | undefined; spans?: BatchSpans | undefined } = {}) {
  return fromCallback<WalCommand>(({ sendBack, receive }) => {
    let stopped = false;
    const append = walAppender(js, o.timeoutMs ?? 10_000);
    const digestAt = o.digestAt;
    const release = (cmd: WalCommand): void => {
      if (recordPool !== undefined) for (const plan of cmd.plans) recordPool.release(plan.record.buffer);
    };
    const withPair = async (cmd: WalCommand, producer: Producer, check: DigestAt, tp: string | undefined): Promise<Stored[]> => {
      const [first, ...rest] = cmd.plans;
      const digest = recordsDigest(cmd.plans);
      const head = await append(first!, { msgId: pairMsgId(producer), digest }, tp);
      if (head.duplicate) {
        const held = await check(head.stream, head.lsn);
        if (held === undefined) throw new Error(`producer ${producer.id} seq ${producer.seq}: the batch first stored under this pair (LSN ${head.lsn}) can no longer be read to compare; retry later or use a new Px-Producer-Seq`);
        if (held !== digest) throw pairReused(cmd.batch.tenant, cmd.batch.table, producer);
      }
      return [head, ...(await Promise.all(rest.map((plan) => append(plan, undefined, tp))))];
    };
    const meter = o.meter;
    receive((cmd) => {
      const t0 = meter === undefined ? 0 : performance.now();
      const tp = o.spans?.walStart(cmd.batch.id, cmd.plans.length);
      const stored = digestAt !== undefined && cmd.producer !== undefined && cmd.plans.length > 0 ? withPair(cmd, cmd.producer, digestAt, tp) : Promise.all(cmd.plans.map((plan) => append(plan, undefined, tp)));
      stored.then(
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
