// Client constructors for both services (grpc-js generic clients over the
// generated descriptors), for pxctl, benchmarks and tests. Pass the token with
// bearer(token) as call metadata.
import { Metadata, makeGenericClientConstructor } from "@grpc/grpc-js";
import type { ServiceClientConstructor } from "@grpc/grpc-js";
import { FlightService } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { Proxist } from "../../protocols/gen/proxist/v1/api_pb.js";
import { clientDefinition } from "./grpcdef.js";

/** new ProxistClient(`host:port`, credentials.createInsecure()); methods: ingest, query, status. */
export const ProxistClient: ServiceClientConstructor = makeGenericClientConstructor(clientDefinition(Proxist), Proxist.typeName);

/** new FlightClient(`host:port`, credentials.createInsecure()); methods: handshake, doGet, doPut, ... */
export const FlightClient: ServiceClientConstructor = makeGenericClientConstructor(clientDefinition(FlightService), FlightService.typeName);

export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}
