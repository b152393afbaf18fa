// Client constructors for both services (grpc-js generic clients over the
// generated descriptors), for pxctl, benchmarks and tests. Pass the token with
// bearer(token) as call metadata.
import { create, fromBinary } from "@bufbuild/protobuf";
import { Metadata, makeGenericClientConstructor } from "@grpc/grpc-js";
import type { ServiceClientConstructor } from "@grpc/grpc-js";
import { FlightDataSchema, FlightService } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { Proxist } from "../../protocols/gen/proxist/v1/api_pb.js";
import { ProxistFeeds } from "../../protocols/gen/proxist/v1/feed_pb.js";
import { readFlightData } from "./flight/wire.js";
import { clientDefinition } from "./grpcdef.js";

/** new ProxistClient(`host:port`, credentials.createInsecure()); methods: ingest, query, status. */
export const ProxistClient: ServiceClientConstructor = makeGenericClientConstructor(clientDefinition(Proxist), Proxist.typeName);

/** new FeedsClient(`host:port`, credentials.createInsecure()); method: subscribe (see src/client/feeds.ts for a resuming subscriber). */
export const FeedsClient: ServiceClientConstructor = makeGenericClientConstructor(clientDefinition(ProxistFeeds), ProxistFeeds.typeName);

const generic = clientDefinition(FlightService);
const flightDefinition = {
  ...generic,
  // DoGet replies are read as views into the received message (no copy of the Arrow body); anything unusual goes through protobuf-es.
  doGet: {
    ...generic.doGet!,
    responseDeserialize: (b: Buffer) => {
      const f = readFlightData(b);
      return f === undefined ? fromBinary(FlightDataSchema, b) : create(FlightDataSchema, f);
    },
  },
};

/** new FlightClient(`host:port`, credentials.createInsecure()); methods: handshake, doGet, doPut, .... */
export const FlightClient: ServiceClientConstructor = makeGenericClientConstructor(flightDefinition, FlightService.typeName);

/**
 * Channel options for reading large results: a 16 MiB HTTP/2 receive window
 * (grpc-js keeps the 64 KiB default otherwise, and a client then waits a round
 * trip for every 64 KiB of a DoGet). Pass as the third constructor argument.
 */
export const LARGE_READS = { "grpc-node.flow_control_window": 16 << 20 } as const;

export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}
