// Flight Handshake, the flow pyarrow's authenticate_basic_token() expects: the
// client sends `authorization: Basic base64(user:password)`, the server
// answers with `authorization: Bearer <token>` in its response headers. The
// password is the Proxist token (any user name), or the user is `px_<id>` and
// the password the secret. A call that already carries a bearer token is
// verified and echoed. The bearer is the token itself: every node can verify
// it, so there is no session state to share.
import { Metadata } from "@grpc/grpc-js";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { HandshakeRequest, HandshakeResponse } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { formatToken, parseToken } from "../../auth/index.js";
import { basicOf, bearerOf } from "../auth.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import type { Decoded } from "../grpcdef.js";

function tokenOf(md: Metadata): string | undefined {
  const basic = basicOf(md);
  if (!basic) return bearerOf(md);
  if (parseToken(basic.password)) return basic.password;
  if (basic.user.startsWith("px_")) return formatToken(basic.user.slice(3), basic.password);
  // Let verify() explain what a token looks like.
  return basic.password;
}

export function handshakeHandler(ctx: ApiContext) {
  return (call: ServerDuplexStream<Decoded<HandshakeRequest>, HandshakeResponse>): void => {
    void (async () => {
      const token = tokenOf(call.metadata);
      await ctx.tokens.verify(token);
      const headers = new Metadata();
      headers.set("authorization", `Bearer ${token}`);
      call.sendMetadata(headers);
      // The client half-closes once it has sent its (empty) requests; finish then.
      call.on("data", () => {});
      call.on("end", () => call.end());
    })().catch((e: unknown) => failCall(ctx, call, e));
  };
}
