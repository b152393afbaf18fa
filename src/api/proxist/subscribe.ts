// proxist.v1.ProxistFeeds/Subscribe: an ad-hoc feed living with the call
// (../feedstream.ts runs it). Each message is a FeedMessage holding one
// complete Arrow IPC stream: first "start" (the schema, the start offset),
// then "snapshot" and "update" batches, each with its offset and shards.
import { create } from "@bufbuild/protobuf";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { FeedMessageSchema } from "../../../protocols/gen/proxist/v1/feed_pb.js";
import type { FeedMessage, SubscribeRequest } from "../../../protocols/gen/proxist/v1/feed_pb.js";
import { batchToIpc, schemaToIpc } from "../arrowout.js";
import { authenticate, authorize } from "../auth.js";
import { controlCall, writeFlowing } from "../callctl.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import { runFeed } from "../feedstream.js";
import type { FeedAt } from "../feedstream.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";

const message = (at: FeedAt, ipc: Uint8Array): FeedMessage =>
  create(FeedMessageSchema, {
    kind: at.kind,
    arrowIpc: ipc,
    rows: at.rows,
    offset: at.offset,
    feed: at.feed,
    shards: at.shards.map((s) => ({ table: s.table, bucket: s.bucket, lsn: BigInt(s.lsn), persistedLsn: BigInt(s.persistedLsn), horizonMicros: BigInt(s.horizonMicros) })),
  });

export function subscribeHandler(ctx: ApiContext) {
  return (call: ServerWritableStream<Decoded<SubscribeRequest>, FeedMessage>): void => {
    const ctl = controlCall(call);
    const stops: (() => void)[] = [];
    void (async () => {
      const principal = await authenticate(ctx.tokens, call.metadata);
      authorize(principal, "query");
      const req = unwrap(call.request);
      await runFeed(ctx, principal, req, ctl.signal, {
        start: (schema, at, signal) => writeFlowing(call, message(at, schemaToIpc(schema)), signal),
        batch: (batch, at, signal) => writeFlowing(call, message(at, batchToIpc(batch)), signal),
      }, stops);
    })()
      .catch((e: unknown) => failCall(ctx, call, e))
      .finally(() => {
        for (const s of stops) s();
        ctl.dispose();
      });
  };
}
