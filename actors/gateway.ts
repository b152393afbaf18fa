// Gateway actor: validates ingest batches, plans their WAL appends and acks
// them once JetStream stored every record. IO is injected: `source` (the ingest
// subscription, which also sends replies), `wal` (JetStream appends) and
// `catalog` (spec watcher) are provided by the runtime or by test fakes.
import { assign, enqueueActions, fromCallback, sendTo, setup } from "xstate";
import type { IngestErrorBody, IngestReply, WalAppend } from "../protocols/ingest.js";
import { BatchRejected } from "../src/codec/arrow.js";
import { EMPTY_CATALOG, lookupTable } from "../src/catalog.js";
import type { Catalog } from "../src/catalog.js";
import { prepareBatch } from "../src/ingest/prepare.js";
import type { PreparedBatch, Producer, WalAppendPlan } from "../src/ingest/prepare.js";

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
}

export type GatewayEvent =
  | { type: "ingest"; request: IngestRequest }
  | { type: "appended"; id: number; appends: readonly WalAppend[] }
  | { type: "appendFailed"; id: number; message: string }
  | { type: "catalog"; catalog: Catalog };

/** Sent to the source actor. */
export type SourceCommand = { type: "reply"; id: number; tenant: string; table: string; wantsReply: boolean; reply: IngestReply };
/** Sent to the wal actor. */
export type WalCommand = { type: "append"; id: number; plans: readonly WalAppendPlan[] };

interface Pending {
  readonly request: IngestRequest;
  readonly prepared: PreparedBatch;
}

export interface GatewayStats {
  acceptedBatches: number;
  acceptedRows: number;
  rejectedBatches: number;
  failedAppends: number;
  throttledBatches: number;
}

export interface GatewayContext {
  catalog: Catalog;
  maxInFlight: number;
  pending: Map<number, Pending>;
  stats: GatewayStats;
}

export interface GatewayInput {
  readonly maxInFlight?: number;
  /** A known catalog skips the loading state (tests). */
  readonly catalog?: Catalog;
}

const nack = (request: IngestRequest, error: IngestErrorBody): SourceCommand => ({
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
    full: ({ context }) => context.pending.size >= context.maxInFlight,
    drained: ({ context }) => context.pending.size <= context.maxInFlight / 2,
  },
  actions: {
    setCatalog: assign({ catalog: (_, params: { catalog: Catalog }) => params.catalog }),
    admit: enqueueActions(({ context, enqueue }, params: { request: IngestRequest }) => {
      const { request } = params;
      if (request.envelopeError !== undefined) {
        context.stats.rejectedBatches++;
        enqueue.sendTo("source", nack(request, { code: "INVALID_ARGUMENT", message: `tenant ${request.tenant} table ${request.table}: ${request.envelopeError}`, retryable: false }));
        return;
      }
      const found = lookupTable(context.catalog, request.tenant, request.table);
      if (!found.ok) {
        context.stats.rejectedBatches++;
        enqueue.sendTo("source", nack(request, { code: "NOT_FOUND", message: found.message, retryable: false }));
        return;
      }
      let prepared: PreparedBatch;
      try {
        prepared = prepareBatch(request.tenant, found.spec, request.payload, request.producer);
      } catch (e) {
        if (!(e instanceof BatchRejected)) throw e;
        context.stats.rejectedBatches++;
        enqueue.sendTo("source", nack(request, { code: e.code, message: e.message, retryable: false }));
        return;
      }
      if (prepared.appends.length === 0) {
        enqueue.sendTo("source", {
          type: "reply",
          id: request.id,
          tenant: request.tenant,
          table: request.table,
          wantsReply: request.wantsReply,
          reply: { v: 1, ok: true, tenant: request.tenant, table: request.table, rows: 0, firstLsn: 0, lastLsn: 0, appends: [] },
        } satisfies SourceCommand);
        return;
      }
      context.pending.set(request.id, { request, prepared });
      enqueue.sendTo("wal", { type: "append", id: request.id, plans: prepared.appends } satisfies WalCommand);
    }),
    throttle: enqueueActions(({ context, enqueue }, params: { request: IngestRequest }) => {
      context.stats.throttledBatches++;
      enqueue.sendTo(
        "source",
        nack(params.request, {
          code: "RESOURCE_EXHAUSTED",
          message: `tenant ${params.request.tenant} table ${params.request.table}: the gateway has ${context.pending.size} batches waiting for the WAL (limit ${context.maxInFlight}); retry after a short backoff`,
          retryable: true,
        }),
      );
    }),
    ack: enqueueActions(({ context, enqueue }, params: { id: number; appends: readonly WalAppend[] }) => {
      const p = context.pending.get(params.id);
      if (!p) return; // already answered (e.g. a late ack after a failure reply)
      context.pending.delete(params.id);
      context.stats.acceptedBatches++;
      context.stats.acceptedRows += p.prepared.rows;
      const lsns = params.appends.map((a) => a.lsn);
      enqueue.sendTo("source", {
        type: "reply",
        id: params.id,
        tenant: p.request.tenant,
        table: p.request.table,
        wantsReply: p.request.wantsReply,
        reply: {
          v: 1,
          ok: true,
          tenant: p.request.tenant,
          table: p.request.table,
          rows: p.prepared.rows,
          firstLsn: Math.min(...lsns),
          lastLsn: Math.max(...lsns),
          appends: params.appends,
        },
      } satisfies SourceCommand);
    }),
    failAppend: enqueueActions(({ context, enqueue }, params: { id: number; message: string }) => {
      const p = context.pending.get(params.id);
      if (!p) return;
      context.pending.delete(params.id);
      context.stats.failedAppends++;
      // Part of the batch may be stored: the client retries with the same producer seq and dedup stores it once.
      enqueue.sendTo(
        "source",
        nack(p.request, {
          code: "UNAVAILABLE",
          message: `tenant ${p.request.tenant} table ${p.request.table}: the WAL did not store the batch (${params.message}); retry it unchanged (same producer id and seq) and it is stored once`,
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
    pending: new Map(),
    stats: { acceptedBatches: 0, acceptedRows: 0, rejectedBatches: 0, failedAppends: 0, throttledBatches: 0 },
  }),
  invoke: [
    { id: "source", src: "source" },
    { id: "wal", src: "wal" },
    { id: "catalog", src: "catalog" },
  ],
  on: {
    catalog: { actions: { type: "setCatalog", params: ({ event }) => ({ catalog: event.catalog }) } },
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
        appended: { actions: { type: "ack", params: ({ event }) => ({ id: event.id, appends: event.appends }) } },
        appendFailed: {
          target: "degraded",
          actions: { type: "failAppend", params: ({ event }) => ({ id: event.id, message: event.message }) },
        },
      },
    },
    // Back-pressure: too many batches wait for the WAL; new ones are refused as retryable.
    throttled: {
      always: { guard: "drained", target: "ready" },
      on: {
        ingest: { actions: { type: "throttle", params: ({ event }) => ({ request: event.request }) } },
        appended: { actions: { type: "ack", params: ({ event }) => ({ id: event.id, appends: event.appends }) } },
        appendFailed: {
          target: "degraded",
          actions: { type: "failAppend", params: ({ event }) => ({ id: event.id, message: event.message }) },
        },
      },
    },
    // The WAL failed an append: refuse new batches for a moment, then try again.
    degraded: {
      after: { probeAfter: "ready" },
      on: {
        ingest: {
          actions: enqueueActions(({ enqueue, event }) => {
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
        appended: { actions: { type: "ack", params: ({ event }) => ({ id: event.id, appends: event.appends }) } },
        appendFailed: { actions: { type: "failAppend", params: ({ event }) => ({ id: event.id, message: event.message }) } },
      },
    },
  },
});

export { sendTo };
