// FeedSubscriber: a TypeScript consumer of a Proxist feed over gRPC
// (proxist.v1.ProxistFeeds/Subscribe). It remembers the offset of the last
// message it handed over and, when the call ends for a retryable reason
// (server restart, slow-consumer overflow, network), subscribes again from
// that offset: the messages continue exactly, no gap and no duplicate.
import { create } from "@bufbuild/protobuf";
import { status as Status } from "@grpc/grpc-js";
import type { ChannelCredentials, ClientReadableStream, ServiceClientConstructor, ServiceError } from "@grpc/grpc-js";
import { tableFromIPC } from "apache-arrow";
import type { Table } from "apache-arrow";
import { SubscribeRequestSchema } from "../../protocols/gen/proxist/v1/feed_pb.js";
import type { FeedMessage } from "../../protocols/gen/proxist/v1/feed_pb.js";
import { FeedsClient, bearer, channelCredentials } from "../api/index.js";

export interface FeedSubscriberOptions {
  /** `host:port` of any Proxist node's gRPC API. */
  readonly address: string;
  readonly token: string;
  /** The feed's standing query (query JSON), e.g. {op:"rolling", table:"trades", window:"1m", aggregates:[...]}. */
  readonly feed: Record<string, unknown>;
  /** "now" (default), "snapshot", an offset token from an earlier update, or {time: µs} (from the first WAL record holding a tick at or after it). */
  readonly from?: string | { readonly time: number };
  readonly durable?: boolean;
  readonly maxBuffer?: number;
  readonly conflate?: boolean;
  readonly lateness?: string;
  /** Subscribe again after a retryable end (default true). */
  readonly reconnect?: boolean;
  /** First reconnect delay (default 100 ms), doubled up to `maxBackoffMs` (default 5 s), with jitter. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly credentials?: ChannelCredentials;
  /** Without `credentials`: TLS trusting this CA certificate file (PX_TLS_CA), else plaintext. */
  readonly tlsCa?: string;
  /** Bytes the server may send ahead of what this client has read (HTTP/2 flow-control window; default 8 MiB). */
  readonly flowControlWindow?: number;
}

/** The HTTP/2 window a FeedSubscriber opens: a couple of seconds of a busy feed. */
export const DEFAULT_FLOW_CONTROL_WINDOW = 8 << 20;

export interface FeedUpdate {
  readonly kind: "snapshot" | "update";
  readonly table: Table;
  /** Resume token: subscribe with from = offset to continue right after this update. */
  readonly offset: string;
  /** Per shard: LSN covered, persisted LSN (P) and horizon (H, -1 unknown). */
  readonly shards: readonly { table: string; bucket: number; lsn: number; persistedLsn: number; horizonMicros: number }[];
}

/** Statuses after which subscribing again can succeed; the rest (bad input, auth) are the caller's to fix. */
const RETRYABLE = new Set<number>([Status.UNAVAILABLE, Status.RESOURCE_EXHAUSTED, Status.INTERNAL, Status.UNKNOWN, Status.ABORTED, Status.DEADLINE_EXCEEDED]);

export class FeedSubscriber {
  /** The offset of the last update handed over (or of the subscription's start): where a reconnect resumes. */
  offset: string | undefined;
  /** Subscriptions made after the first (reconnects). */
  reconnects = 0;
  private readonly client: InstanceType<ServiceClientConstructor>;
  private call: ClientReadableStream<FeedMessage> | undefined;
  private closed = false;

  constructor(private readonly o: FeedSubscriberOptions) {
    // grpc-js's default HTTP/2 window is 64 KiB: a feed of ~4 MB/s then needs ~60 window updates a second from this
    // process, and whenever either side's event loop is slow for a moment the server's writes wait, its buffer
    // overflows and the call ends (bench:feeds: 13-16 resumes in 10 s at 100 k ticks/s with the default, none with 8 MiB).
    this.client = new FeedsClient(o.address, o.credentials ?? channelCredentials(o.tlsCa), { "grpc-node.flow_control_window": o.flowControlWindow ?? DEFAULT_FLOW_CONTROL_WINDOW });
    if (typeof o.from === "string" && o.from !== "now" && o.from !== "snapshot") this.offset = o.from;
  }

  /** The feed's updates, in order, across reconnects; ends when `close()` is called; throws a non-retryable status. */
  async *updates(): AsyncGenerator<FeedUpdate> {
    let delay = this.o.backoffMs ?? 100;
    while (!this.closed) {
      const from = this.offset ?? (typeof this.o.from === "object" ? JSON.stringify(this.o.from) : (this.o.from ?? "now"));
      const call = this.client.subscribe!(
        create(SubscribeRequestSchema, { feedJson: JSON.stringify(this.o.feed), from, durable: this.o.durable ?? false, maxBuffer: this.o.maxBuffer ?? 0, conflate: this.o.conflate ?? false, lateness: this.o.lateness ?? "" }),
        bearer(this.o.token),
      ) as ClientReadableStream<FeedMessage>;
      this.call = call;
      try {
        for await (const m of call as AsyncIterable<FeedMessage>) {
          delay = this.o.backoffMs ?? 100;
          // The start message: where this subscription begins (a reconnect before any update resumes there, not at a new "now").
          // From a time, the start is not a position yet (LSN 0): until an update arrives, a reconnect asks for the time again.
          if (m.kind === "start") {
            if (typeof this.o.from !== "object") this.offset ??= m.offset;
            continue;
          }
          this.offset = m.offset;
          yield {
            kind: m.kind === "snapshot" ? "snapshot" : "update",
            table: tableFromIPC(m.arrowIpc),
            offset: m.offset,
            shards: m.shards.map((s) => ({ table: s.table, bucket: s.bucket, lsn: Number(s.lsn), persistedLsn: Number(s.persistedLsn), horizonMicros: Number(s.horizonMicros) })),
          };
          if (this.closed) return;
        }
      } catch (e) {
        const code = (e as ServiceError).code;
        if (this.closed || code === Status.CANCELLED) return;
        if (this.o.reconnect === false || !RETRYABLE.has(code)) throw e;
      } finally {
        call.cancel();
      }
      if (this.closed || this.o.reconnect === false) return;
      await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
      delay = Math.min(delay * 2, this.o.maxBackoffMs ?? 5_000);
      this.reconnects++;
    }
  }

  /** Ends the subscription (the generator returns) and the channel. */
  close(): void {
    this.closed = true;
    this.call?.cancel();
    this.client.close();
  }
}
