// One ingest batch from gRPC Ingest or Flight DoPut: scope and limit checks,
// then the node's gateway (same validation, back-pressure and WAL acks as NATS
// ingest). Nacks become typed errors. The gateway is called synchronously, so
// batches of one call reach it in the order they arrived.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Principal } from "../auth/index.js";
import type { Catalog } from "../catalog.js";
import type { IngestAck, IngestReply } from "../../protocols/ingest.js";
import { ApiError } from "./errors.js";
import { checkIngestPayload, decompressPayload } from "./ipc/index.js";
import type { ApiLimits } from "./limits.js";
import { tableSpec } from "./scope.js";

export interface Producer {
  readonly id: string;
  readonly seq: bigint;
}

/** What the API needs of a Proxist node (src/node ProxistNode satisfies it). */
export interface ApiNode {
  readonly nodeId: string;
  readonly nc: NatsConnection;
  /** `traceparent`: the client's W3C trace context (the call's metadata), continued by the gateway's spans. */
  ingest(request: { tenant: string; table: string; payload: Uint8Array; producer: Producer | undefined; traceparent?: string | undefined }): Promise<IngestReply>;
  catalog(): Catalog;
  state(): string;
}

const PRODUCER_ID = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_SEQ = 0xffffffffffffffffn;

/** Producer from request fields; an empty id means no dedup. */
export function producerOf(id: string, seq: bigint): Producer | undefined {
  if (id === "") return undefined;
  if (!PRODUCER_ID.test(id)) {
    throw new ApiError("INVALID_ARGUMENT", `producer id "${id.slice(0, 80)}" must be 1-64 characters of A-Z a-z 0-9 _ -; pick another producer id`);
  }
  if (seq < 0n || seq > MAX_SEQ) throw new ApiError("INVALID_ARGUMENT", `producer seq ${seq} must be an unsigned 64-bit integer`);
  return { id, seq };
}

export interface IngestInput {
  readonly principal: Principal;
  readonly table: string;
  readonly payload: Uint8Array;
  readonly producer: Producer | undefined;
  /** Set when the payload was already checked message by message (DoPut): whether it is compressed. */
  readonly checked: { readonly compressed: boolean } | undefined;
  readonly traceparent?: string | undefined;
}

export function ingestBatch(node: ApiNode, limits: ApiLimits, input: IngestInput): Promise<IngestAck> {
  const { principal, table } = input;
  const what = `table ${table}`;
  let payload = input.payload;
  try {
    tableSpec(node.catalog(), principal, table);
    const { compressed } = input.checked ?? checkIngestPayload(payload, limits, what);
    if (compressed) payload = decompressPayload(payload, limits, what);
  } catch (e) {
    return Promise.reject(e);
  }
  return node.ingest({ tenant: principal.tenant, table, payload, producer: input.producer, traceparent: input.traceparent }).then(
    (reply) => {
      if (reply.ok) return reply;
      throw new ApiError(reply.error.code, reply.error.message);
    },
    (e: unknown) => {
      // The gateway itself is down (node starting or stopping): another node, or a retry, can take the batch.
      throw new ApiError("UNAVAILABLE", `this node cannot store batches right now (${(e as Error).message}); retry, or send to another node`, { cause: e });
    },
  );
}
