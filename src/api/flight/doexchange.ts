// Flight DoExchange: an ad-hoc feed subscription over Arrow Flight, in the
// spirit of Deephaven's Barrage. The client's first FlightData names the feed
// (./exchangecmd.ts); the server streams the schema, a metadata-only "start"
// message, then the snapshot (from "snapshot") and the deltas, each record
// batch with app_metadata = JSON {kind, feed, offset, rows, shards:[{table,
// bucket, lsn, persistedLsn, horizonMicros}]} (FeedAt in ../feedstream.ts).
// The client may half-close at once; cancelling ends the subscription.
import { create } from "@bufbuild/protobuf";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import { FlightDataSchema } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightData } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { batchMessages, schemaMessage } from "../arrowout.js";
import { authenticate, authorize } from "../auth.js";
import { controlCall, writeFlowing } from "../callctl.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import { ApiError } from "../errors.js";
import { runFeed } from "../feedstream.js";
import type { FeedAt } from "../feedstream.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";
import { exchangeRequest } from "./exchangecmd.js";

const encoder = new TextEncoder();
const metadataOf = (at: FeedAt): Uint8Array => encoder.encode(JSON.stringify(at));

export function doExchangeHandler(ctx: ApiContext) {
  return (call: ServerDuplexStream<Decoded<FlightData>, FlightData>): void => {
    const ctl = controlCall(call);
    const stops: (() => void)[] = [];
    const abort = new AbortController();
    const signal = AbortSignal.any([ctl.signal, abort.signal]);
    // The first message names the feed; later ones may only be metadata (the feed takes no data from the client).
    let failed: Error | undefined;
    let seen = false;
    let named: ((d: Decoded<FlightData>) => void) | undefined;
    call.on("data", (d: Decoded<FlightData>) => {
      if (!seen) {
        seen = true;
        named?.(d);
      } else if (!d.ok || d.value.dataHeader.length > 0) {
        failed ??= d.ok ? new ApiError("INVALID_ARGUMENT", "DoExchange: a feed subscription reads no data from the client after its descriptor; send only the descriptor, then half-close or keep the stream open") : d.error;
        abort.abort(failed);
      }
    });
    const first = new Promise<Decoded<FlightData>>((resolve, reject) => {
      named = resolve;
      const noDescriptor = (): void => reject(new ApiError("INVALID_ARGUMENT", "DoExchange: the client half-closed before sending the FlightDescriptor; send it in the first FlightData"));
      call.on("end", () => {
        if (!seen) noDescriptor();
      });
      signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
    });
    // Awaited only after authentication: a call refused before that must not leave it unhandled.
    first.catch(() => undefined);
    void (async () => {
      const principal = await authenticate(ctx.tokens, call.metadata);
      authorize(principal, "query");
      const req = exchangeRequest(unwrap(await first).flightDescriptor);
      await runFeed(ctx, principal, req, signal, {
        start: async (schema, at, s) => {
          const head = schemaMessage(schema);
          await writeFlowing(call, create(FlightDataSchema, { dataHeader: head.header, dataBody: head.body }), s);
          await writeFlowing(call, create(FlightDataSchema, { appMetadata: metadataOf(at) }), s);
        },
        batch: async (batch, at, s) => {
          const ms = batchMessages(batch);
          for (const [i, m] of ms.entries()) {
            await writeFlowing(call, create(FlightDataSchema, { dataHeader: m.header, dataBody: m.body, ...(i === ms.length - 1 ? { appMetadata: metadataOf(at) } : {}) }), s);
          }
        },
      }, stops);
    })()
      .catch((e: unknown) => failCall(ctx, call, failed ?? e))
      .finally(() => {
        for (const s of stops) s();
        ctl.dispose();
      });
  };
}
