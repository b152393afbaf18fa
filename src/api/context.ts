// What every handler shares: the node, the token verifier, the query engine,
// the limits and the log; and how a handler ends a call with an error.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { sendUnaryData } from "@grpc/grpc-js";
import type { TokenCheck } from "./auth.js";
import { classify, toStatus } from "./errors.js";
import type { ApiNode } from "./ingest.js";
import type { ApiLimits } from "./limits.js";
import type { QueryEngine } from "./queryengine.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { GapReader, ParkedFeeds, SubscriptionHolds } from "../feed/index.js";
import type { CredsInfo, MintedCreds } from "../auth/index.js";
import type { NatsRole } from "../../protocols/index.js";

export interface ApiContext {
  readonly node: ApiNode;
  readonly tokens: TokenCheck;
  readonly engine: QueryEngine;
  readonly limits: ApiLimits;
  readonly log: (line: string) => void;
  /** JetStream management on the node's connection (created once, on first use). */
  readonly jsm: () => Promise<JetStreamManager>;
  /** H of a shard this node hosts (feeds report it with each message); undefined when not hosted here. */
  readonly horizon?: (tenant: string, table: string, bucket: number) => number | undefined;
  /**
   * Rows of a table by WAL position from ClickHouse (a raw feed resuming below the WAL's start reads the compacted
   * records there); absent on a node without ClickHouse.
   */
  readonly walHistory?: (tenant: string, spec: TableSpec) => GapReader;
  /** Where open subscriptions register what they still need of the WAL (the node's compaction holds it). */
  readonly subscriptions?: SubscriptionHolds;
  /** States of stateful subscriptions that ended for a slow consumer, waiting for their resume (src/feed/parked.ts). */
  readonly parkedFeeds?: ParkedFeeds;
  /** Mints and revokes NATS credentials (a node started with PX_AUTH_DIR provides it); absent: those calls are FAILED_PRECONDITION. */
  readonly creds?: CredsIssuer;
}

/**
 * NATS credentials issued and revoked with the deployment's identity. The node
 * provides it (src/runtime/natscreds.ts, the sequence pxctl runs too); the
 * admin service has checked the caller's role, tenant and grants before.
 */
export interface CredsIssuer {
  /** Bad options are CredsOptionsError. */
  issue(o: { readonly role: NatsRole; readonly tenant: string; readonly tables?: readonly string[]; readonly ttlSeconds?: number; readonly note: string }): Promise<{ readonly minted: MintedCreds; readonly info: CredsInfo }>;
  /** Credentials of another tenant read as unknown (TokenNotFoundError). */
  revoke(id: string, tenant: string): Promise<void>;
}

interface ErrorEmitter {
  emit(event: "error", error: unknown): boolean;
}

/** Ends a streaming call with the status of `e` (grpc-js sends it as the call's trailer). */
export function failCall(ctx: ApiContext, call: ErrorEmitter, e: unknown): void {
  call.emit("error", toStatus(classify(e, ctx.log)));
}

export function failUnary<T>(ctx: ApiContext, callback: sendUnaryData<T>, e: unknown): void {
  callback(toStatus(classify(e, ctx.log)));
}
