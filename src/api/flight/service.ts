// The arrow.flight.protocol.FlightService implementation: wires each Flight
// RPC to its handler. The actions are Flight SQL's prepared statements
// (./sql); DoExchange is not offered.
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { authenticate } from "../auth.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import { ApiError } from "../errors.js";
import { doGetHandler } from "./doget.js";
import { doPutHandler } from "./doput.js";
import { handshakeHandler } from "./handshake.js";
import { doActionHandler, listActionsHandler } from "./sql/index.js";
import { getFlightInfoHandler, getSchemaHandler, listFlightsHandler, pollFlightInfoHandler } from "./info.js";

interface StreamCall {
  readonly metadata: Parameters<typeof authenticate>[1];
  emit(event: "error", error: unknown): boolean;
  end(): void;
}

const unimplemented = (ctx: ApiContext, what: string) => (call: StreamCall) => {
  void authenticate(ctx.tokens, call.metadata)
    .then(() => {
      throw new ApiError("UNIMPLEMENTED", `${what} is not offered by Proxist; use DoGet for queries and DoPut for ingest`);
    })
    .catch((e: unknown) => failCall(ctx, call, e));
};

export function flightService(ctx: ApiContext): UntypedServiceImplementation {
  return {
    handshake: handshakeHandler(ctx),
    listFlights: listFlightsHandler(ctx),
    getFlightInfo: getFlightInfoHandler(ctx),
    pollFlightInfo: pollFlightInfoHandler(ctx),
    getSchema: getSchemaHandler(ctx),
    doGet: doGetHandler(ctx),
    doPut: doPutHandler(ctx),
    doExchange: unimplemented(ctx, "DoExchange"),
    doAction: doActionHandler(ctx),
    listActions: listActionsHandler(ctx),
  } as UntypedServiceImplementation;
}
