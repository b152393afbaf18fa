// The API server: one grpc-js server carrying proxist.v1.Proxist and
// arrow.flight.protocol.FlightService on one port. Started by the node (or a
// test) with its token verifier and query engine; stop() lets calls finish for
// a grace period, then cuts them.
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import { FlightService } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { Proxist } from "../../protocols/gen/proxist/v1/api_pb.js";
import { ProxistFeeds } from "../../protocols/gen/proxist/v1/feed_pb.js";
import { ProxistAdmin } from "../../protocols/gen/proxist/v1/admin_pb.js";
import type { TokenCheck } from "./auth.js";
import type { ApiContext } from "./context.js";
import { flightService } from "./flight/service.js";
import { serverDefinition } from "./grpcdef.js";
import type { ApiNode } from "./ingest.js";
import { registerZstd } from "./ipc/index.js";
import { resolveLimits } from "./limits.js";
import type { ApiLimits } from "./limits.js";
import { adminRpcs, feedsService, proxistService } from "./proxist/service.js";
import type { QueryEngine } from "./queryengine.js";
import { ParkedFeeds } from "../feed/index.js";
import type { SubscriptionHolds } from "../feed/index.js";
import { presentingEngine } from "./presentation.js";

export interface ApiServerOptions {
  readonly node: ApiNode;
  readonly tokens: TokenCheck;
  readonly queryEngine: QueryEngine;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Interface to listen on; default 127.0.0.1 in plaintext, all (0.0.0.0) with TLS credentials. */
  readonly host?: string;
  readonly limits?: Partial<ApiLimits>;
  /** Default: plaintext on loopback (pass ServerCredentials.createSsl(...) for TLS). */
  readonly credentials?: ServerCredentials;
  readonly log?: (line: string) => void;
  /** H of a shard this node hosts, for feed messages (absent: reported as unknown, -1). */
  readonly horizon?: (tenant: string, table: string, bucket: number) => number | undefined;
  /** ClickHouse rows by WAL position, for raw feeds resuming below the WAL's start (absent: refused). */
  readonly walHistory?: ApiContext["walHistory"];
  /** Open subscriptions' WAL needs, for the node's compaction (absent: they hold nothing). */
  readonly subscriptions?: SubscriptionHolds;
  /** The NATS identity for the admin credentials calls (absent: they are FAILED_PRECONDITION). */
  readonly creds?: ApiContext["creds"];
}

export interface ApiServer {
  readonly port: number;
  readonly limits: ApiLimits;
  /** Stops accepting calls; running calls get `graceMs` to finish. */
  stop(graceMs?: number): Promise<void>;
}

/** Slack over maxMessageBytes for grpc-js's own hard cap, so our check (which names the limit) runs first. */
const TRANSPORT_SLACK_BYTES = 64 * 1024;

export async function startApiServer(o: ApiServerOptions): Promise<ApiServer> {
  const limits = resolveLimits(o.limits);
  const log = o.log ?? ((line: string) => console.log(line));
  registerZstd();
  let jsm: Promise<JetStreamManager> | undefined;
  const ctx: ApiContext = {
    node: o.node,
    tokens: o.tokens,
    // Time columns leave as Arrow timestamps (or int64 on request): see presentation.ts.
    engine: presentingEngine(o.queryEngine),
    limits,
    log,
    jsm: () => (jsm ??= jetstreamManager(o.node.nc)),
    ...(o.horizon === undefined ? {} : { horizon: o.horizon }),
    ...(o.subscriptions === undefined ? {} : { subscriptions: o.subscriptions }),
    // A parked state holds the WAL its resume reads, as the subscription did.
    parkedFeeds: new ParkedFeeds({ hold: (tenant, tables, needs) => o.subscriptions?.add({ tenant, tables, needs: () => needs }) ?? (() => {}) }),
    ...(o.walHistory === undefined ? {} : { walHistory: o.walHistory }),
    ...(o.creds === undefined ? {} : { creds: o.creds }),
  };
  const server = new Server({
    "grpc.max_receive_message_length": limits.maxMessageBytes + TRANSPORT_SLACK_BYTES,
    "grpc.max_send_message_length": -1,
  });
  server.addService(serverDefinition(Proxist, limits.maxMessageBytes), proxistService(ctx));
  server.addService(serverDefinition(FlightService, limits.maxMessageBytes), flightService(ctx));
  server.addService(serverDefinition(ProxistFeeds, limits.maxMessageBytes), feedsService(ctx));
  server.addService(serverDefinition(ProxistAdmin, limits.maxMessageBytes), adminRpcs(ctx));
  const credentials = o.credentials ?? ServerCredentials.createInsecure();
  const tls = credentials._isSecure();
  // Plaintext stays on loopback unless the caller names an interface: tokens would cross the network in the clear.
  const host = o.host ?? (tls ? "0.0.0.0" : "127.0.0.1");
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:${o.port ?? 0}`, credentials, (err, p) => (err ? reject(err) : resolve(p))));
  log(`api: gRPC + Arrow Flight on ${host}:${port}${tls ? " (TLS)" : " (plaintext)"}`);
  return {
    port,
    limits,
    stop: (graceMs = 5_000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
