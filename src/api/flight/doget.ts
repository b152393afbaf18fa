// Flight DoGet: the ticket is a JSON query. The stream is the schema message,
// then per result batch its dictionaries and the record batch, as FlightData
// (data_header = flatbuffer Message, data_body = body). Cancel and deadline
// stop the engine.
import { create } from "@bufbuild/protobuf";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { FlightDataSchema } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightData, Ticket } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { batchMessages, chunks, conform, schemaMessage } from "../arrowout.js";
import { authenticate, authorize } from "../auth.js";
import { controlCall, writeFlowing } from "../callctl.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";
import type { IpcMessage } from "../ipc/index.js";
import { ticketQuery } from "./descriptor.js";

const flightData = (m: IpcMessage): FlightData => create(FlightDataSchema, { dataHeader: m.header, dataBody: m.body });

export function doGetHandler(ctx: ApiContext) {
  return (call: ServerWritableStream<Decoded<Ticket>, FlightData>): void => {
    const ctl = controlCall(call);
    void (async () => {
      const principal = await authenticate(ctx.tokens, call.metadata);
      authorize(principal, "query");
      const query = ticketQuery(principal, unwrap(call.request).ticket);
      const schema = await ctx.engine.schema(principal.tenant, query);
      await writeFlowing(call, flightData(schemaMessage(schema)), ctl.signal);
      for await (const batch of ctx.engine.run(principal.tenant, query, ctl.signal)) {
        for (const chunk of chunks(conform(schema, batch), ctx.limits.maxChunkRows)) {
          if (ctl.signal.aborted || chunk.numRows === 0) continue;
          for (const m of batchMessages(chunk)) await writeFlowing(call, flightData(m), ctl.signal);
        }
        if (ctl.signal.aborted) break;
      }
      if (ctl.signal.aborted) throw ctl.signal.reason;
      call.end();
    })()
      .catch((e: unknown) => failCall(ctx, call, e))
      .finally(() => ctl.dispose());
  };
}
