// Serves px.<t>.ingest._status: per producer, the highest producer seq the
// tenant's WAL holds (src/ingest/status.ts). Each node answers from its own
// index, fed by reading the WAL's record headers (headers only, not payloads)
// from where it stopped the last time up to the WAL's end at the request, so
// the answer is exact whatever happened to any node, and a restarted node
// rebuilds it on the first request. One scan per tenant at a time.
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { DeliverPolicy } from "@nats-io/jetstream";
import { HDR_BATCH_RECORDS, HDR_MSG_ID, INGEST_STATUS_WILDCARD, parseIngestStatusSubject, walStream } from "../../protocols/subjects.js";
import type { IngestErrorBody, IngestStatusReply, IngestStatusRequest } from "../../protocols/ingest.js";
import { ProducerIndex } from "../ingest/status.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const PRODUCER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** No record for this long while scanning: the server has none left in the range. */
const IDLE_MS = 5_000;

class StatusRequestError extends Error {
  constructor(readonly body: IngestErrorBody) {
    super(body.message);
  }
}

function parseRequest(tenant: string, data: Uint8Array): IngestStatusRequest {
  const text = decoder.decode(data).trim();
  if (text === "") return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new StatusRequestError({ code: "INVALID_ARGUMENT", message: `tenant ${tenant}: the ingest status request must be JSON {"producerId":"p1"} or empty (every producer); got "${text.slice(0, 80)}"`, retryable: false });
  }
  const id = (body as { producerId?: unknown } | null)?.producerId;
  if (id === undefined) return {};
  if (typeof id !== "string" || !PRODUCER_ID.test(id)) {
    throw new StatusRequestError({ code: "INVALID_ARGUMENT", message: `tenant ${tenant}: the ingest status request's producerId ${JSON.stringify(id).slice(0, 80)} must be 1-64 characters of A-Z a-z 0-9 _ - (the Px-Producer-Id the batches were sent with)`, retryable: false });
  }
  return { producerId: id };
}

export class IngestStatusServer {
  private readonly indexes = new Map<string, ProducerIndex>();
  /** The scan running per tenant: requests of a tenant wait for it, then read on from where it ended. */
  private readonly scans = new Map<string, Promise<unknown>>();
  private sub: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly log: (line: string) => void,
  ) {}

  start(): this {
    this.sub = this.nc.subscribe(INGEST_STATUS_WILDCARD, { queue: "px-ingest-status", callback: (err, msg) => (err ? undefined : void this.answer(msg)) });
    return this;
  }

  stop(): void {
    this.sub?.unsubscribe();
  }

  /** The status of one tenant's producers (all of them without `producerId`). */
  async status(tenant: string, request: IngestStatusRequest): Promise<IngestStatusReply> {
    const info = await this.jsm.streams.info(walStream(tenant)).catch((e: unknown) => {
      if (/stream not found/i.test((e as Error).message)) throw new StatusRequestError({ code: "NOT_FOUND", message: `tenant ${tenant} has no WAL stream (no such tenant, or nothing applied yet); check the tenant name`, retryable: false });
      throw e;
    });
    const index = await this.scanTo(tenant, info.state.first_seq, info.state.last_seq);
    const found = request.producerId === undefined ? index.all() : [index.status(request.producerId)].filter((p) => p !== undefined);
    return { v: 1, ok: true, tenant, producers: found, walFirstLsn: info.state.first_seq, walLastLsn: info.state.last_seq };
  }

  private scanTo(tenant: string, firstSeq: number, lastSeq: number): Promise<ProducerIndex> {
    const prev = this.scans.get(tenant) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(() => this.scan(tenant, firstSeq, lastSeq));
    this.scans.set(tenant, next);
    return next;
  }

  private async scan(tenant: string, firstSeq: number, lastSeq: number): Promise<ProducerIndex> {
    let index = this.indexes.get(tenant);
    if (index === undefined) this.indexes.set(tenant, (index = new ProducerIndex()));
    if (index.scannedTo >= lastSeq) return index;
    const from = Math.max(index.scannedTo + 1, firstSeq, 1);
    const consumer = await this.js.consumers.get(walStream(tenant), { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from, headers_only: true });
    const messages = await consumer.consume({ max_messages: 4096 });
    // The records up to lastSeq may all be purged (compaction): then nothing comes, and nothing is missed by stopping.
    let idle = setTimeout(() => void messages.close(), IDLE_MS);
    try {
      for await (const m of messages) {
        clearTimeout(idle);
        idle = setTimeout(() => void messages.close(), IDLE_MS);
        const h = m.headers;
        const records = Number(h?.get(HDR_BATCH_RECORDS) || NaN);
        index.add(m.seq, h?.get(HDR_MSG_ID) || undefined, Number.isSafeInteger(records) ? records : undefined);
        // The last record at the request is read (records stored since wait for the next request).
        if (m.seq >= lastSeq || m.info.pending === 0) break;
      }
    } finally {
      clearTimeout(idle);
      await messages.close().catch(() => undefined);
    }
    // Read to the end (or nothing more came): no record up to lastSeq is left unread.
    index.scannedTo = Math.max(index.scannedTo, lastSeq);
    return index;
  }

  private async answer(msg: Msg): Promise<void> {
    const tenant = parseIngestStatusSubject(msg.subject);
    if (tenant === undefined || !msg.reply) return;
    let reply: IngestStatusReply;
    try {
      reply = await this.status(tenant, parseRequest(tenant, msg.data));
    } catch (e) {
      const body: IngestErrorBody = e instanceof StatusRequestError ? e.body : { code: "UNAVAILABLE", message: `tenant ${tenant}: the WAL could not be read for the ingest status (${(e as Error).message}); retry in a moment`, retryable: true };
      if (!(e instanceof StatusRequestError)) this.log(`ingest status of tenant ${tenant}: ${(e as Error).message}`);
      reply = { v: 1, ok: false, tenant, error: body };
    }
    msg.respond(encoder.encode(JSON.stringify(reply)));
  }
}
