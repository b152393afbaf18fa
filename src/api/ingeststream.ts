// One streamed ingest call (gRPC Ingest, Flight DoPut): authenticate a writer,
// store each incoming message's batch through `store`, write the replies in
// arrival order with up to maxInFlightBatches being stored at once (beyond that
// the call stops reading: HTTP/2 flow control pushes back on the client), and
// end the call with the first failure, after the replies of the batches before it.
// The token is checked again every second while the stream is open: a revoked
// or expired token ends it with UNAUTHENTICATED within seconds.
import type { ServerDuplexStream } from "@grpc/grpc-js";
import { AuthError } from "../auth/index.js";
import type { Principal } from "../auth/index.js";
import { authenticate, authorize, bearerOf } from "./auth.js";
import { failCall } from "./context.js";
import type { ApiContext } from "./context.js";
import { unwrap } from "./grpcdef.js";
import type { Decoded } from "./grpcdef.js";
import { OrderedPipeline } from "./pipeline.js";

/**
 * Per message: the promise of its reply once its batch is stored, or undefined
 * when the message completes no batch (a DoPut schema or dictionary message).
 * May throw for a malformed message; the call then fails in order.
 */
export type StoreMessage<In, Out> = (message: In) => Promise<Out> | undefined;

/**
 * Serves `call`; `open` runs once the writer is known and returns the call's
 * per-message step (it keeps the call's state). It also gets the call's W3C
 * `traceparent` metadata, if any: the gateway continues that trace.
 */
export function serveIngestStream<In, Out>(ctx: ApiContext, call: ServerDuplexStream<Decoded<In>, Out>, open: (principal: Principal, traceparent: string | undefined) => StoreMessage<In, Out>): void {
  void (async () => {
    const principal = await authenticate(ctx.tokens, call.metadata);
    authorize(principal, "ingest");
    const tp = call.metadata.get("traceparent")[0];
    const store = open(principal, typeof tp === "string" && tp !== "" ? tp : undefined);
    let revoked = false;
    const pipeline = new OrderedPipeline<Out>(
      ctx.limits.maxInFlightBatches,
      (reply) => call.write(reply),
      (e) => failCall(ctx, call, e),
    );
    const token = bearerOf(call.metadata);
    const reauth = setInterval(() => {
      ctx.tokens.verify(token).then(
        () => undefined,
        (e: unknown) => {
          // Only a definite "no" ends the stream; a token store hiccup does not.
          if (!(e instanceof AuthError) || revoked) return;
          revoked = true;
          clearInterval(reauth);
          pipeline.abandon();
          failCall(ctx, call, new AuthError("UNAUTHENTICATED", `the stream's token is no longer valid (${e.message}); batches acked before this were stored, later ones were not`));
        },
      );
    }, Math.min(ctx.limits.streamReauthMs, 2 ** 31 - 1)); // setInterval treats longer delays as 1 ms
    reauth.unref();
    const stop = (): void => clearInterval(reauth);
    call.on("cancelled", () => {
      stop();
      pipeline.abandon();
    });
    call.on("error", stop);
    call.on("finish", stop);
    call.on("close", stop);
    call.on("data", (d: Decoded<In>) => {
      if (pipeline.hasFailed || revoked) return;
      try {
        const work = store(unwrap(d));
        if (work !== undefined) pipeline.submit(work);
      } catch (e) {
        pipeline.reject(e);
      }
      if (pipeline.isFull) {
        call.pause();
        void pipeline.whenSpace().then(() => call.resume());
      }
    });
    call.on("end", () => {
      void pipeline.finished().then(() => {
        stop();
        if (!pipeline.hasFailed && !revoked) call.end();
      });
    });
  })().catch((e: unknown) => failCall(ctx, call, e));
}
