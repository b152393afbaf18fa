// The DoExchange command of a feed subscription: a FlightDescriptor CMD whose
// JSON is proxist.v1.SubscribeRequest in its JSON form, with the feed's query
// given as an object under "feed" (or as a string under "feedJson"):
//   {"feed": {"op":"lastBy","table":"trades"}, "from": "snapshot", "durable": false,
//    "maxBuffer": 1024, "conflate": false, "lateness": "60s"}
// "from" may also be an object, {"time": µs} or {"offset": token}. It is read
// into the same request gRPC Subscribe gets, so both are checked alike.
import { fromJson } from "@bufbuild/protobuf";
import type { JsonValue } from "@bufbuild/protobuf";
import { FlightDescriptor_DescriptorType } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightDescriptor } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { SubscribeRequestSchema } from "../../../protocols/gen/proxist/v1/feed_pb.js";
import type { SubscribeRequest } from "../../../protocols/gen/proxist/v1/feed_pb.js";
import { ApiError } from "../errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const EXAMPLE = `{"feed":{"op":"lastBy","table":"trades"},"from":"snapshot"}`;

function refuse(why: string): ApiError {
  return new ApiError("INVALID_ARGUMENT", `DoExchange: ${why}; send a FlightDescriptor command with the subscription as JSON, e.g. ${EXAMPLE}`);
}

export function exchangeRequest(d: FlightDescriptor | undefined): SubscribeRequest {
  if (d === undefined) throw refuse("the first FlightData carries no FlightDescriptor");
  if (d.type !== FlightDescriptor_DescriptorType.CMD) throw refuse("the descriptor is not a command (a path names no feed)");
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(d.cmd));
  } catch (e) {
    throw refuse(`the command is not JSON text (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw refuse("the command must be a JSON object");
  const { feed, ...rest } = json as Record<string, unknown>;
  if (feed !== undefined) {
    if ("feedJson" in rest || "feed_json" in rest) throw refuse(`give the feed's query once, as "feed" (an object) or "feedJson" (a string), not both`);
    if (typeof feed !== "object" || feed === null || Array.isArray(feed)) throw refuse(`"feed" must be the feed's query as a JSON object, e.g. {"op":"range","table":"trades"}`);
    rest.feedJson = JSON.stringify(feed);
  } else if (!("feedJson" in rest) && !("feed_json" in rest)) throw refuse(`the command has no "feed"`);
  // from as an object ({"time": µs} or {"offset": token}) travels as its JSON text, as in Subscribe's string field.
  if (typeof rest.from === "object" && rest.from !== null) rest.from = JSON.stringify(rest.from);
  try {
    return fromJson(SubscribeRequestSchema, rest as JsonValue);
  } catch (e) {
    throw refuse((e as Error).message);
  }
}
