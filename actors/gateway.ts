// Gateway actor: validates ingest batches, plans their WAL appends and acks
// them once JetStream stored every record. IO is injected: `source` (the ingest
// subscription, which also sends replies), `wal` (JetStream appends) and
// `catalog` (spec watcher) are provided by the runtime or by test fakes, and so
// is the pool the WAL records' buffers come from (input `recordPool`).
//
// The context only holds values: a batch waiting for the WAL travels with its
// append command (`AppendRef`) and comes back in the wal actor's answer, so the
// table of pending batches is the wal actor's (one closure per append), and the
// machine counts them (`inFlight`) for back-pressure. No per-batch Map copy on
// the ingest hot path, and every `assign` returns new values.
import { assign, enqueueActions, fromCallback, sendTo, setup } from "xstate";
import type { IngestErrorBody, IngestReply, WalAppend } from "../protocols/ingest.js";
import { BatchRejected } from "../src/codec/arrow.js";
import type { BytePool } from "../src/codec/pool.js";
import { EMPTY_CATALOG, lookupTable, tenantQuotas } from "../src/catalog.js";
import type { Catalog } from "../src/catalog.js";
import { prepareBatch } from "../src/ingest/prepare.js";
import type { PreparedBatch, Producer, WalAppendPlan } from "../src/ingest/prepare.js";
import { decodeTickBatch } from "../src/codec/arrow.js";
import { NO_INGEST_STATE, charge, precheck, wantsSymbols, withPeers, withUsage } from "../src/quota/index.js";
import type { IngestQuotaState, PeerRates, PeerUsage, QuotaRefusal, TenantUsage } from "../src/quota/index.js";

/** One received batch; `id` is the source's handle for replying. */
export interface IngestRequest {
  readonly id: number;
  readonly tenant: string;
  readonly table: string;
  readonly payload: Uint8Array;
  readonly producer: Producer | undefined;
  /** Set when the envelope (headers) was malformed: the batch is rejected with this message. */
  readonly envelopeError?: string;
  /** false for plain publishes: failures go to the error subject instead. */
  readonly wantsReply: boolean;
  /** When the batch arrived (ms, monotonic; stamped by the source): the clock of the tenant's ingest quotas. */
  readonly atMs?: number;
}

/** A batch on its way through the WAL: what its reply needs, carried by the append and its answer. */
export interface AppendRef {
  readonly id: number;
  readonly tenant: string;
  readonly table: string;
  readonly wantsReply: boolean;
  readonly rows: number;
  /** The client sent no producer pair (the node minted one): its own resend is a new batch. */
  readonly minted?: boolean;
}

export type GatewayEvent =
  | { type: "ingest"; request: IngestRequest }
  | { type: "appended"; batch: AppendRef; appends: readonly WalAppend[] }
  /** `walFull`: the WAL refused the records because it is full (the cause, named in RESOURCE_EXHAUSTED). */
  | { type: "appendFailed"; batch: AppendRef; message: string; walFull?: string | undefined }
  /**
   * The wal actor refused the batch before appending it (a producer pair reused
   * for other data, a record over the server's max_payload): the client's error,
   * not the WAL's, so the gateway stays ready. `code` defaults to INVALID_ARGUMENT.
   */
  | { type: "appendRefused"; batch: AppendRef; message: string; code?: "INVALID_ARGUMENT" | "RESOURCE_EXHAUSTED" | undefined }
  | { type: "catalog"; catalog: Catalog }
  /** The node's measure of each quota'd tenant's shards on it: hot bytes and symbols (the hotBytes and symbols quotas). */
  | { type: "usage"; usage: ReadonlyMap<string, TenantUsage> }
  /**
   * What the other nodes admit of each tenant's rate quotas and use of its
   * hotBytes and symbols (src/quota/share.ts, cluster.ts): this one grants the rest. `atMs`: when, on the clock of
   * the ingest requests' `atMs`.
   */
  | { type: "peers"; peers: ReadonlyMap<string, PeerRates>; usage?: ReadonlyMap<string, PeerUsage>; atMs?: number };

/** Sent to the source actor. */
export type SourceCommand = { type: "reply"; id: number; tenant: string; table: string; wantsReply: boolean; reply: IngestReply };
/**
 * Sent to the wal actor, which answers each with exactly one `appended` or
 * `appendFailed` carrying the same `batch`, and gives the records' buffers
 * back to the record pool once nothing reads them any more.
 */
export type WalCommand = { type: "append"; batch: AppendRef; plans: readonly WalAppendPlan[]; producer?: Producer | undefined };

export interface GatewayStats {
  readonly acceptedBatches: number;
  readonly acceptedRows: number;
  readonly rejectedBatches: number;
  readonly failedAppends: number;
  readonly throttledBatches: number;
  /** Batches refused for a tenant quota (RESOURCE_EXHAUSTED naming it). */
  readonly quotaRefusedBatches: number;
}

export interface GatewayContext {
  readonly catalog: Catalog;
  readonly maxInFlight: number;
  /** Batches sent to the wal actor and not yet answered. */
  readonly inFlight: number;
  readonly stats: GatewayStats;
  /** Where WAL record buffers come from (undefined: fresh allocations). */
  readonly recordPool: BytePool | undefined;
  /** Why the WAL is full, since the last append it refused as full (cleared by the next stored batch). */
  readonly walFull: string | undefined;
  /** The tenants' ingest quota state (rate buckets, reported usage); no entry for a tenant without quotas. */
  readonly quota: IngestQuotaState;
}

export interface GatewayInput {
  readonly maxInFlight?: number;
  /** A known catalog skips the loading state (tests). */
  readonly catalog?: Catalog;
  /** Pool of WAL record buffers, shared with the wal actor that releases them (the runtime's). */
  readonly recordPool?: BytePool;
}

/** How an admitted batch ends before the WAL: rejected (with its reply), empty (acked at once) or to append. */
type Admission =
  | { readonly kind: "reply"; readonly reply: SourceCommand; readonly rejected: boolean; readonly quotaRefused?: boolean }
  | { readonly kind: "append"; readonly append: WalCommand; readonly quota: IngestQuotaState };

const count = (stats: GatewayStats, key: keyof GatewayStats, by = 1): GatewayStats => ({ ...stats, [key]: stats[key] + by });

/** The refusal while the WAL is full: retryable, naming the cause and what frees space. Nothing stored is dropped. */
const walFullError = (tenant: string, table: string, cause: string): IngestErrorBody => ({
  code: "RESOURCE_EXHAUSTED",
  message: `tenant ${tenant} table ${table}: the WAL is full (${cause}); this batch was not acknowledged and nothing already acknowledged was dropped; retry it unchanged once WAL compaction frees space (pxctl compact), or raise the limit (PX_WAL_MAX_BYTES)`,
  retryable: true,
});

/** The refusal of a batch for a tenant quota: RESOURCE_EXHAUSTED naming it (retryable for rates and hot bytes: publishers back off). */
const quotaNack = (request: IngestRequest, r: QuotaRefusal): Admission => ({
  kind: "reply",
  rejected: false,
  quotaRefused: true,
  reply: nack(request, { code: "RESOURCE_EXHAUSTED", message: `${r.message} (table ${request.table})`, retryable: r.retryable, ...(r.retryAfterMs === undefined ? {} : { retryAfterMs: r.retryAfterMs }) }),
});

/** Validates and plans one batch: a pure decision over the catalog and the quota state (the record pool only lends buffers). */
function admission(context: GatewayContext, request: IngestRequest): Admission {
  if (request.envelopeError !== undefined) {
    return { kind: "reply", rejected: true, reply: nack(request, { code: "INVALID_ARGUMENT", message: `tenant ${request.tenant} table ${request.table}: ${request.envelopeError}`, retryable: false }) };
  }
  const found = lookupTable(context.catalog, request.tenant, request.table);
  if (!found.ok) return { kind: "reply", rejected: true, reply: nack(request, { code: "NOT_FOUND", message: found.message, retryable: false }) };
  // Quotas before decoding: a tenant flooding past its rate costs a lookup per batch, not a decode.
  const quotas = tenantQuotas(context.catalog, request.tenant);
  const nowMs = request.atMs ?? 0;
  const early = precheck(context.quota, quotas, request.tenant, nowMs);
  if (early !== undefined) return quotaNack(request, early);
  let prepared: PreparedBatch;
  let symbols: readonly string[] | undefined;
  try {
    prepared = prepareBatch(request.tenant, found.spec, request.payload, request.producer, context.recordPool);
    // The symbols quota needs the batch's symbols: decoded for such tenants only.
    if (wantsSymbols(quotas)) symbols = decodeTickBatch(found.spec, request.payload, `tenant ${request.tenant} table ${request.table}`).symbols;
  } catch (e) {
    if (!(e instanceof BatchRejected)) throw e;
    return { kind: "reply", rejected: true, reply: nack(request, { code: e.code, message: e.message, retryable: false }) };
  }
  const charged = charge(context.quota, quotas, request.tenant, request.table, prepared.rows, request.payload.byteLength, symbols, nowMs, found.spec.shards);
  if (!charged.ok) {
    // Nothing reads the planned records now: their buffers go back to the pool.
    if (context.recordPool !== undefined) for (const plan of prepared.appends) context.recordPool.release(plan.record.buffer);
    return quotaNack(request, charged.refusal);
  }
  const batch: AppendRef = { id: request.id, tenant: request.tenant, table: request.table, wantsReply: request.wantsReply, rows: prepared.rows, ...(request.producer?.generated === true ? { minted: true } : {}) };
  return { kind: "append", append: { type: "append", batch, plans: prepared.appends, producer: request.producer }, quota: charged.state };
}

/** The ack of a batch the WAL stored, with its LSN range. */
function ackOf(batch: AppendRef, appends: readonly WalAppend[]): SourceCommand {
  let firstLsn = Infinity;
  let lastLsn = -Infinity;
  for (const a of appends) {
    if (a.lsn < firstLsn) firstLsn = a.lsn;
    if (a.lsn > lastLsn) lastLsn = a.lsn;
  }
  return {
    type: "reply",
    id: batch.id,
    tenant: batch.tenant,
    table: batch.table,
    wantsReply: batch.wantsReply,
    reply: { v: 1, ok: true, tenant: batch.tenant, table: batch.table, rows: batch.rows, firstLsn, lastLsn, appends },
  };
}

/** The refusal of a batch (before or after its appends), as the reply command for the source. */
const nack = (request: Pick<IngestRequest, "id" | "tenant" | "table" | "wantsReply">, error: IngestErrorBody): SourceCommand => ({
  type: "reply",
  id: request.id,
  tenant: request.tenant,
  table: request.table,
  wantsReply: request.wantsReply,
  reply: { v: 1, ok: false, tenant: request.tenant, table: request.table, error },
});

export const gatewayMachine = setup({
  types: {
    context: {} as GatewayContext,
    events: {} as GatewayEvent,
    input: {} as GatewayInput,
  },
  actors: {
    // Placeholders: the runtime provides the real ones with machine.provide().
    source: fromCallback<SourceCommand>(() => () => {}),
    wal: fromCallback<WalCommand>(() => () => {}),
    catalog: fromCallback(() => () => {}),
  },
  guards: {
    full: ({ context }) => context.inFlight >= context.maxInFlight,
    drained: ({ context }) => context.inFlight <= context.maxInFlight / 2,
  },
  actions: {
    setCatalog: assign({ catalog: (_, params: { catalog: Catalog }) => params.catalog }),
    setUsage: assign({ quota: ({ context }, params: { usage: ReadonlyMap<string, TenantUsage> }) => withUsage(context.quota, params.usage) }),
    setPeers: assign({ quota: ({ context }, params: { peers: ReadonlyMap<string, PeerRates>; usage: ReadonlyMap<string, PeerUsage> | undefined; atMs: number | undefined }) => withPeers(context.quota, params.peers, params.usage, params.atMs) }),
    // The record pool only lends memory: what is decided does not depend on it.
    admit: enqueueActions(({ context, enqueue }, params: { request: IngestRequest }) => {
      const a = admission(context, params.request);
      if (a.kind === "reply") {
        if (a.rejected) enqueue.assign({ stats: count(context.stats, "rejectedBatches") });
        if (a.quotaRefused === true) enqueue.assign({ stats: count(context.stats, "quotaRefusedBatches") });
        enqueue.sendTo("source", a.reply);
        return;
      }
      enqueue.assign(a.quota === context.quota ? { inFlight: context.inFlight + 1 } : { inFlight: context.inFlight + 1, quota: a.quota });
      enqueue.sendTo("wal", a.append);
    }),
    throttle: enqueueActions(({ context, enqueue }, params: { request: IngestRequest }) => {
      enqueue.assign({ stats: count(context.stats, "throttledBatches") });
      enqueue.sendTo(
        "source",
        nack(params.request, {
          code: "RESOURCE_EXHAUSTED",
          message: `tenant ${params.request.tenant} table ${params.request.table}: the gateway has ${context.inFlight} batches waiting for the WAL (limit ${context.maxInFlight}); retry after a short backoff`,
          retryable: true,
        }),
      );
    }),
    ack: enqueueActions(({ context, enqueue }, params: { batch: AppendRef; appends: readonly WalAppend[] }) => {
      const { acceptedBatches, acceptedRows } = context.stats;
      enqueue.assign({ inFlight: context.inFlight - 1, walFull: undefined, stats: { ...context.stats, acceptedBatches: acceptedBatches + 1, acceptedRows: acceptedRows + params.batch.rows } });
      enqueue.sendTo("source", ackOf(params.batch, params.appends));
    }),
    refuseAppend: enqueueActions(({ context, enqueue }, params: { batch: AppendRef; message: string; code?: "INVALID_ARGUMENT" | "RESOURCE_EXHAUSTED" | undefined }) => {
      const b = params.batch;
      enqueue.assign({ inFlight: context.inFlight - 1, stats: count(context.stats, "rejectedBatches") });
      enqueue.sendTo("source", nack(b, { code: params.code ?? "INVALID_ARGUMENT", message: params.message, retryable: false }));
    }),
    failAppend: enqueueActions(({ context, enqueue }, params: { batch: AppendRef; message: string; walFull?: string | undefined }) => {
      const b = params.batch;
      enqueue.assign({ inFlight: context.inFlight - 1, walFull: params.walFull, stats: count(context.stats, "failedAppends") });
      if (params.walFull !== undefined) {
        enqueue.sendTo("source", nack(b, walFullError(b.tenant, b.table, params.walFull)));
        return;
      }
      // Part of the batch may be stored: the client retries with the same producer seq and dedup stores it once.
      const how = b.minted
        ? "retry it; it came without a producer pair, so records already stored may be stored again by a resend: send Px-Producer-Id and Px-Producer-Seq (gRPC producer_id/producer_seq) to make retries safe"
        : "retry it unchanged (same producer id and seq) and it is stored once";
      enqueue.sendTo(
        "source",
        nack(b, {
          code: "UNAVAILABLE",
          message: `tenant ${b.tenant} table ${b.table}: the WAL did not store the batch (${params.message}); ${how}`,
          retryable: true,
        }),
      );
    }),
  },
  delays: {
    probeAfter: 500,
  },
}).createMachine({
  id: "gateway",
  context: ({ input }) => ({
    catalog: input.catalog ?? EMPTY_CATALOG,
    maxInFlight: input.maxInFlight ?? 256,
    inFlight: 0,
    stats: { acceptedBatches: 0, acceptedRows: 0, rejectedBatches: 0, failedAppends: 0, throttledBatches: 0, quotaRefusedBatches: 0 },
    recordPool: input.recordPool,
    walFull: undefined,
    quota: NO_INGEST_STATE,
  }),
  invoke: [
    { id: "source", src: "source" },
    { id: "wal", src: "wal" },
    { id: "catalog", src: "catalog" },
  ],
  on: {
    catalog: { actions: { type: "setCatalog", params: ({ event }) => ({ catalog: event.catalog }) } },
    usage: { actions: { type: "setUsage", params: ({ event }) => ({ usage: event.usage }) } },
    peers: { actions: { type: "setPeers", params: ({ event }) => ({ peers: event.peers, usage: event.usage, atMs: event.atMs }) } },
  },
  initial: "loading",
  states: {
    // Until the first catalog arrives every table would look unknown: refuse as retryable instead.
    loading: {
      on: {
        catalog: { target: "ready", actions: { type: "setCatalog", params: ({ event }) => ({ catalog: event.catalog }) } },
        ingest: {
          actions: enqueueActions(({ enqueue, event }) => {
            enqueue.sendTo(
              "source",
              nack(event.request, { code: "UNAVAILABLE", message: `tenant ${event.request.tenant} table ${event.request.table}: the node is still loading the catalog; retry in a moment`, retryable: true }),
            );
          }),
        },
      },
    },
    ready: {
      always: { guard: "full", target: "throttled" },
      on: {
        ingest: { actions: { type: "admit", params: ({ event }) => ({ request: event.request }) } },
        appended: { actions: { type: "ack", params: ({ event }) => ({ batch: event.batch, appends: event.appends }) } },
        appendRefused: { actions: { type: "refuseAppend", params: ({ event }) => ({ batch: event.batch, message: event.message, code: event.code }) } },
        appendFailed: {
          target: "degraded",
          actions: { type: "failAppend", params: ({ event }) => ({ batch: event.batch, message: event.message, walFull: event.walFull }) },
        },
      },
    },
    // Back-pressure: too many batches wait for the WAL; new ones are refused as retryable.
    throttled: {
      always: { guard: "drained", target: "ready" },
      on: {
        ingest: { actions: { type: "throttle", params: ({ event }) => ({ request: event.request }) } },
        appended: { actions: { type: "ack", params: ({ event }) => ({ batch: event.batch, appends: event.appends }) } },
        appendRefused: { actions: { type: "refuseAppend", params: ({ event }) => ({ batch: event.batch, message: event.message, code: event.code }) } },
        appendFailed: {
          target: "degraded",
          actions: { type: "failAppend", params: ({ event }) => ({ batch: event.batch, message: event.message, walFull: event.walFull }) },
        },
      },
    },
    // The WAL failed an append: refuse new batches for a moment, then try again.
    degraded: {
      after: { probeAfter: "ready" },
      on: {
        ingest: {
          actions: enqueueActions(({ context, enqueue, event }) => {
            const { tenant, table } = event.request;
            if (context.walFull !== undefined) {
              enqueue.sendTo("source", nack(event.request, walFullError(tenant, table, context.walFull)));
              return;
            }
            enqueue.sendTo(
              "source",
              nack(event.request, {
                code: "UNAVAILABLE",
                message: `tenant ${event.request.tenant} table ${event.request.table}: the WAL (JetStream) is failing appends; retry after a short backoff`,
                retryable: true,
              }),
            );
          }),
        },
        appended: { actions: { type: "ack", params: ({ event }) => ({ batch: event.batch, appends: event.appends }) } },
        appendRefused: { actions: { type: "refuseAppend", params: ({ event }) => ({ batch: event.batch, message: event.message, code: event.code }) } },
        appendFailed: { actions: { type: "failAppend", params: ({ event }) => ({ batch: event.batch, message: event.message, walFull: event.walFull }) } },
      },
    },
  },
});

export { sendTo };
