// Flight DoGet: the ticket is a JSON query (Flight SQL statements hand out the
// same tickets) or a Flight SQL metadata command, answered with the table it
// asks for. The stream is the schema message,
// then per result batch its dictionary (when it changed) and the record batch,
// as FlightData (data_header = flatbuffer Message, data_body = body) written
// as protobuf bytes (wire.ts). Cancel and deadline stop the engine.
import type { ServerWritableStream } from "@grpc/grpc-js";
import type { Ticket } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { chunkRows, conform, resultSchema, schemaMessage } from "../arrowout.js";
import { authenticate, authorize } from "../auth.js";
import { controlCall, writeFlowing } from "../callctl.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";
import { ticketQuery } from "./descriptor.js";
import { flightSqlCommand, isMetadata, metadataBatch, sqlQuery } from "./sql/index.js";
import { FlightBatchWriter, flightDataBytes } from "./wire.js";

export function doGetHandler(ctx: ApiContext) {
  return (call: ServerWritableStream<Decoded<Ticket>, Uint8Array>): void => {
    const ctl = controlCall(call);
    void (async () => {
      const principal = await authenticate(ctx.tokens, call.metadata);
      authorize(principal, "query");
      const bytes = unwrap(call.request).ticket;
      const sql = flightSqlCommand(bytes, "the ticket");
      const writer = new FlightBatchWriter();
      if (sql !== undefined && isMetadata(sql)) {
        const table = await metadataBatch(ctx, principal, sql);
        const head = schemaMessage(table.schema);
        await writeFlowing(call, flightDataBytes(head.header, head.body), ctl.signal);
        for (const m of writer.messages(table, ctx.limits.maxChunkRows)) await writeFlowing(call, m, ctl.signal);
        call.end();
        return;
      }
      const query = sql === undefined ? ticketQuery(principal, bytes) : sqlQuery(ctx, principal, sql);
      const declared = await ctx.engine.schema(principal.tenant, query);
      const batches = ctx.engine.run(principal.tenant, query, ctl.signal, `flight DoGet, token ${principal.tokenId}, peer ${call.getPeer()}`)[Symbol.asyncIterator]();
      // The schema message goes out with the first batch, so it carries the result's metadata (proxist.complete, notes).
      let next = await batches.next();
      const first = schemaMessage(next.done ? declared : resultSchema(declared, next.value.schema.metadata));
      await writeFlowing(call, flightDataBytes(first.header, first.body), ctl.signal);
      try {
        for (; !next.done; next = await batches.next()) {
          for (const bytes of writer.messages(conform(declared, next.value), chunkRows(next.value, ctx.limits.maxChunkRows, ctx.limits.maxChunkBytes))) {
            if (ctl.signal.aborted) break;
            await writeFlowing(call, bytes, ctl.signal);
          }
          if (ctl.signal.aborted) break;
        }
      } finally {
        await batches.return?.();
      }
      if (ctl.signal.aborted) throw ctl.signal.reason;
      call.end();
    })()
      .catch((e: unknown) => failCall(ctx, call, e))
      .finally(() => ctl.dispose());
  };
}
