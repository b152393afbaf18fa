// TypeScript ingest client. A TickPublisher sends batches of one table to the
// gateway with a producer id and sequence, retries idempotently (same seq, so
// the WAL stores a batch once), and applies back-pressure when too many batches
// are unacknowledged. `write(row)` batches rows; `publish(batch)` sends one batch.
import { randomBytes } from "node:crypto";
import { headers } from "@nats-io/transport-node";
import type { MsgHdrs } from "@nats-io/transport-node";
import { SpanKind, SpanStatusCode, context, propagation, trace } from "@opentelemetry/api";
import type { NatsConnection } from "@nats-io/transport-node";
import type { IngestAck, IngestReply } from "../../protocols/ingest.js";
import { HDR_PRODUCER_ID, HDR_PRODUCER_SEQ, ingestSubject } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { tickBatchToIpc } from "../codec/arrow.js";
import { encodeTickIpcByBucket } from "../codec/ipcwrite.js";
import { replyMux } from "../ingest/replymux.js";
import { BytePool } from "../codec/pool.js";
import { allocValueArray, selectRows } from "../codec/tickbatch.js";
import type { TickBatch, ValueArray } from "../codec/tickbatch.js";
import { TaggedError } from "../../protocols/tagged.js";
import { resumeFrom } from "./ingeststatus.js";
import type { Resume } from "./ingeststatus.js";

export class IngestRejectedError extends TaggedError("IngestRejectedError") {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface PublisherOptions {
  readonly tenant: string;
  readonly spec: TableSpec;
  readonly producerId?: string;
  /** First sequence number; a restarted producer must continue past its last acked seq. */
  readonly firstSeq?: bigint;
  readonly maxInFlight?: number;
  readonly timeoutMs?: number;
  readonly maxAttempts?: number;
  /** Rows buffered by write() before a batch is sent. */
  readonly batchRows?: number;
  /** Longest a written row waits before its batch is sent. */
  readonly lingerMs?: number;
  /**
   * Group a batch's rows by shard bucket before sending (default true): still
   * one request and one ack per batch, but the gateway can then forward each
   * bucket's bytes to the WAL as they are instead of decoding and re-encoding
   * the batch. Row order within a bucket (a symbol's order) is kept.
   */
  readonly splitByBucket?: boolean;
}

export type Row = Record<string, string | number | boolean | bigint>;

const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class TickPublisher {
  readonly producerId: string;
  private seq: bigint;
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly subject: string;
  private buffer: Row[] = [];
  private lingerTimer: NodeJS.Timeout | undefined;
  private readonly flushes = new Set<Promise<unknown>>();
  private flushError: unknown;
  private readonly pool = new BytePool();
  private readonly alloc = (n: number): Uint8Array => this.pool.acquire(n);

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: PublisherOptions,
  ) {
    this.producerId = o.producerId ?? `ts-${randomBytes(6).toString("hex")}`;
    this.seq = o.firstSeq ?? 1n;
    this.subject = ingestSubject(o.tenant, o.spec.name);
  }

  get pending(): number {
    return this.inFlight;
  }

  /**
   * A publisher that continues `o.producerId` exactly after the highest seq
   * the WAL holds (src/client/ingeststatus.ts): after an outage longer than
   * the WAL's 2-minute duplicate window, resending an unacked batch could store
   * it twice; this asks first. Its `resumed` lists the seqs below that the WAL
   * lacks or holds in part (resend those rows; see Resume).
   */
  static async resume(nc: NatsConnection, o: PublisherOptions & { readonly producerId: string }): Promise<TickPublisher> {
    const r = await resumeFrom(nc, o.tenant, o.producerId, o.timeoutMs);
    const p = new TickPublisher(nc, { ...o, firstSeq: r.nextSeq });
    p.resumed = r;
    return p;
  }

  /** Set by resume(): where the WAL stood for this producer. */
  resumed: Resume | undefined;

  /**
   * Sends one batch; resolves with the ack once the WAL stored it. A batch over
   * the table's maxBatchRows or the server's max_payload goes out as several
   * requests (one seq each, in order, each acked before the next is sent) and
   * the ack covers them all.
   */
  async publish(batch: TickBatch): Promise<IngestAck> {
    const spec = this.o.spec;
    if (batch.rows > spec.maxBatchRows) return this.publishParts(batch, Math.ceil(batch.rows / spec.maxBatchRows));
    const pooled = this.o.splitByBucket !== false;
    const payload = pooled ? encodeTickIpcByBucket(spec, batch, spec.shards, this.alloc) : tickBatchToIpc(spec, batch);
    const limit = this.maxRequestBytes();
    if (payload.length > limit && batch.rows > 1) {
      if (pooled) this.pool.release(payload.buffer);
      // Parts a little under the limit: per-part schema and dictionary overhead.
      return this.publishParts(batch, Math.ceil((payload.length / limit) * 1.1));
    }
    const ack = await this.publishIpc(payload);
    // Acknowledged: the connection wrote every attempt out before this reply came, so the bytes can be reused.
    if (pooled) this.pool.release(payload.buffer);
    return ack;
  }

  /** The largest request body the server accepts (its max_payload), less room for the headers. */
  private maxRequestBytes(): number {
    const serverMax = this.nc.info?.max_payload ?? 1024 * 1024;
    return Math.max(64 * 1024, serverMax - 8 * 1024);
  }

  /** `batch` as `parts` consecutive row ranges, published one after the other (WAL order = row order). */
  private async publishParts(batch: TickBatch, parts: number): Promise<IngestAck> {
    const acks: IngestAck[] = [];
    const size = Math.ceil(batch.rows / parts);
    for (let from = 0; from < batch.rows; from += size) {
      const to = Math.min(batch.rows, from + size);
      const idx = new Uint32Array(to - from);
      for (let i = 0; i < idx.length; i++) idx[i] = from + i;
      acks.push(await this.publish(selectRows(batch, idx)));
    }
    return mergeAcks(acks);
  }

  /** Sends pre-encoded Arrow IPC bytes (any schema the table accepts). */
  async publishIpc(payload: Uint8Array): Promise<IngestAck> {
    const seq = this.seq++;
    await this.acquire();
    try {
      return await this.sendWithRetry(payload, seq);
    } finally {
      this.release();
    }
  }

  /** Buffers a row; a batch goes out at batchRows rows or after lingerMs. */
  write(row: Row): void {
    if (this.flushError) throw this.flushError;
    this.buffer.push(row);
    if (this.buffer.length >= (this.o.batchRows ?? 1000)) this.startFlush();
    else this.lingerTimer ??= setTimeout(() => this.startFlush(), this.o.lingerMs ?? 5);
  }

  /** Sends what write() buffered and waits for every outstanding batch. */
  async flush(): Promise<void> {
    this.startFlush();
    while (this.flushes.size > 0) await Promise.allSettled([...this.flushes]);
    if (this.flushError) {
      const e = this.flushError;
      this.flushError = undefined;
      throw e;
    }
  }

  private startFlush(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.buffer.length === 0) return;
    const rows = this.buffer;
    this.buffer = [];
    const p = this.publish(rowsToBatch(this.o.spec, rows)).then(
      () => {},
      (e: unknown) => {
        this.flushError ??= e;
      },
    );
    this.flushes.add(p);
    void p.finally(() => this.flushes.delete(p));
  }

  private async sendWithRetry(payload: Uint8Array, seq: bigint): Promise<IngestAck> {
    const h = headers();
    h.set(HDR_PRODUCER_ID, this.producerId);
    h.set(HDR_PRODUCER_SEQ, String(seq));
    // Without a registered tracer provider this span is a no-op and nothing is injected.
    const span = trace.getTracer("proxist").startSpan("px.publish", { kind: SpanKind.PRODUCER, attributes: { "px.tenant": this.o.tenant, "px.bytes": payload.byteLength } });
    if (span.isRecording()) propagation.inject(trace.setSpan(context.active(), span), h, { set: (c, k, v) => c.set(k, v) });
    try {
      return await this.sendAttempts(payload, h);
    } catch (e) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
      throw e;
    } finally {
      span.end();
    }
  }

  private async sendAttempts(payload: Uint8Array, h: MsgHdrs): Promise<IngestAck> {
    const attempts = this.o.maxAttempts ?? 8;
    const mux = replyMux(this.nc);
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      // A tenant quota's refusal says when a retry could pass: wait at least that (issue 13).
      let notBeforeMs = 0;
      try {
        const msg = await mux.request(this.subject, payload, this.o.timeoutMs ?? 5000, h);
        const reply = JSON.parse(decoder.decode(msg.data)) as IngestReply;
        if (reply.ok) return reply;
        if (!reply.error.retryable) throw new IngestRejectedError(reply.error.code, reply.error.message);
        lastError = new IngestRejectedError(reply.error.code, reply.error.message);
        notBeforeMs = reply.error.retryAfterMs ?? 0;
      } catch (e) {
        if (e instanceof IngestRejectedError && e !== lastError) throw e;
        lastError ??= e;
        if (!(e instanceof IngestRejectedError)) lastError = e; // timeout / no responders: retry with the same seq
      }
      // Exponential backoff with full jitter: retries from many producers must not synchronise.
      if (attempt < attempts) await sleep(notBeforeMs + Math.random() * Math.min(2000, 20 * 2 ** attempt));
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  private async acquire(): Promise<void> {
    const max = this.o.maxInFlight ?? 64;
    while (this.inFlight >= max) await new Promise<void>((r) => this.slotWaiters.push(r));
    this.inFlight++;
  }

  private release(): void {
    this.inFlight--;
    this.slotWaiters.shift()?.();
  }
}

/** One ack for the parts of a batch that was split: every append, the LSN range they span. */
export function mergeAcks(acks: readonly IngestAck[]): IngestAck {
  const first = acks[0]!;
  return {
    v: 1,
    ok: true,
    tenant: first.tenant,
    table: first.table,
    rows: acks.reduce((n, a) => n + a.rows, 0),
    firstLsn: Math.min(...acks.map((a) => a.firstLsn)),
    lastLsn: Math.max(...acks.map((a) => a.lastLsn)),
    appends: acks.flatMap((a) => a.appends),
  };
}

/** Row objects -> TickBatch (checks only what it needs to build columns; the gateway validates). */
export function rowsToBatch(spec: TableSpec, rows: readonly Row[]): TickBatch {
  const n = rows.length;
  const symbols: string[] = [];
  const ids = new Map<string, number>();
  const symbolIndex = new Uint32Array(n);
  const ts = new Float64Array(n);
  const values: ValueArray[] = spec.columns.map((c) => allocValueArray(c.type, n));
  for (let i = 0; i < n; i++) {
    const row = rows[i]!;
    const sym = String(row[spec.symbolColumn]);
    let id = ids.get(sym);
    if (id === undefined) {
      id = symbols.length;
      ids.set(sym, id);
      symbols.push(sym);
    }
    symbolIndex[i] = id;
    ts[i] = Number(row[spec.timeColumn]);
    for (let c = 0; c < spec.columns.length; c++) {
      const v = row[spec.columns[c]!.name];
      if (v === undefined) throw new IngestRejectedError("INVALID_ARGUMENT", `row ${i}: column ${spec.columns[c]!.name} is missing; give every row every column`);
      values[c]![i] = Number(v);
    }
  }
  return { rows: n, symbols, symbolIndex, ts, values };
}
