// proxist.v1.Proxist/Query: runs one query and streams its result as Arrow IPC
// chunks. Client cancel and the deadline abort the engine's signal; the
// engine's iterator is closed as soon as the loop leaves it.
import { create } from "@bufbuild/protobuf";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { QueryChunkSchema } from "../../../protocols/gen/proxist/v1/api_pb.js";
import type { QueryChunk, QueryRequest } from "../../../protocols/gen/proxist/v1/api_pb.js";
import { batchToIpc, chunkRows, chunks, conform, resultSchema, schemaToIpc } from "../arrowout.js";
import { authenticate, authorize } from "../auth.js";
import { controlCall, writeFlowing } from "../callctl.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";
import { parseQuery } from "../queryjson.js";

export function queryHandler(ctx: ApiContext) {
  return (call: ServerWritableStream<Decoded<QueryRequest>, QueryChunk>): void => {
    const ctl = controlCall(call);
    void (async () => {
      const principal = await authenticate(ctx.tokens, call.metadata);
      authorize(principal, "query");
      const req = unwrap(call.request);
      const query = parseQuery(principal, req.queryJson, "query_json");
      const maxRows = req.maxChunkRows === 0 ? ctx.limits.maxChunkRows : Math.min(req.maxChunkRows, ctx.limits.maxChunkRows);
      const schema = await ctx.engine.schema(principal.tenant, query);
      let sent = 0;
      let answered = schema;
      for await (const batch of ctx.engine.run(principal.tenant, query, ctl.signal, `grpc Query, token ${principal.tokenId}, peer ${call.getPeer()}`)) {
        answered = resultSchema(schema, batch.schema.metadata);
        for (const chunk of chunks(conform(schema, batch), chunkRows(batch, maxRows, ctx.limits.maxChunkBytes))) {
          if (ctl.signal.aborted) break;
          if (chunk.numRows === 0) continue;
          await writeFlowing(call, create(QueryChunkSchema, { arrowIpc: batchToIpc(chunk), rows: chunk.numRows }), ctl.signal);
          sent++;
        }
        if (ctl.signal.aborted) break;
      }
      if (ctl.signal.aborted) throw ctl.signal.reason;
      if (sent === 0) call.write(create(QueryChunkSchema, { arrowIpc: schemaToIpc(answered), rows: 0 }));
      call.end();
    })()
      .catch((e: unknown) => failCall(ctx, call, e))
      .finally(() => ctl.dispose());
  };
}
