// The arrow.flight.protocol.FlightService implementation: wires each Flight
// RPC to its handler. The actions are Flight SQL's prepared statements
// (./sql); DoExchange subscribes to a feed (./doexchange.ts).
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import type { ApiContext } from "../context.js";
import { doExchangeHandler } from "./doexchange.js";
import { doGetHandler } from "./doget.js";
import { doPutHandler } from "./doput.js";
import { handshakeHandler } from "./handshake.js";
import { doActionHandler, listActionsHandler } from "./sql/index.js";
import { getFlightInfoHandler, getSchemaHandler, listFlightsHandler, pollFlightInfoHandler } from "./info.js";

export function flightService(ctx: ApiContext): UntypedServiceImplementation {
  return {
    handshake: handshakeHandler(ctx),
    listFlights: listFlightsHandler(ctx),
    getFlightInfo: getFlightInfoHandler(ctx),
    pollFlightInfo: pollFlightInfoHandler(ctx),
    getSchema: getSchemaHandler(ctx),
    doGet: doGetHandler(ctx),
    doPut: doPutHandler(ctx),
    doExchange: doExchangeHandler(ctx),
    doAction: doActionHandler(ctx),
    listActions: listActionsHandler(ctx),
  } as UntypedServiceImplementation;
}
