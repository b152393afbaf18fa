// A TypeScript DoExchange feed reader for the tests: opens the call with the
// subscription command, rebuilds each record batch (schema + its dictionary +
// the batch) as a table, and pairs it with its app_metadata (FeedAt JSON).
import { create } from "@bufbuild/protobuf";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { tableFromIPC } from "apache-arrow";
import type { Table } from "apache-arrow";
import { FlightDataSchema, FlightDescriptorSchema, FlightDescriptor_DescriptorType } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightData, FlightDescriptor } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FeedAt } from "../../src/api/feedstream.js";
import { joinIpcStream } from "../../src/api/ipc/index.js";
import { cmdDescriptor, md } from "../api/fixture.js";
import type { CallError, ServiceClient } from "../api/fixture.js";

export interface ExchangeBatch {
  readonly at: FeedAt;
  readonly table: Table;
}

export interface Exchange {
  readonly call: ClientDuplexStream<FlightData, FlightData>;
  /** The metadata-only start message. */
  readonly started: Promise<FeedAt>;
  readonly batches: ExchangeBatch[];
  /** Resolves when the call ends: undefined for a clean end, else its status. */
  readonly ended: Promise<CallError | undefined>;
  /** Called with each batch as it arrives. */
  onBatch?: (b: ExchangeBatch) => void;
}

const decoder = new TextDecoder();
const isDescriptor = (c: unknown): c is FlightDescriptor => typeof c === "object" && c !== null && (c as { $typeName?: string }).$typeName === FlightDescriptorSchema.typeName;

/** Opens DoExchange with `command` (JSON; a string as is; or a FlightDescriptor) as the descriptor, and half-closes. */
export function exchange(flight: ServiceClient, token: string | undefined, command: unknown, o: { halfClose?: boolean } = {}): Exchange {
  const call = (flight.doExchange as (m: ReturnType<typeof md>) => ClientDuplexStream<FlightData, FlightData>)(md(token));
  const batches: ExchangeBatch[] = [];
  let schema: FlightData | undefined;
  let pending: FlightData[] = [];
  let onStart: (at: FeedAt) => void = () => {};
  const started = new Promise<FeedAt>((r) => (onStart = r));
  const ex: Exchange = {
    call,
    started,
    batches,
    ended: new Promise((resolve) => {
      call.on("error", (e: CallError) => resolve({ code: e.code, details: e.details }));
      call.on("end", () => resolve(undefined));
    }),
  };
  call.on("data", (d: FlightData) => {
    if (schema === undefined) {
      schema = d;
      return;
    }
    if (d.dataHeader.length > 0) pending.push(d);
    if (d.appMetadata.length === 0) return;
    const at = JSON.parse(decoder.decode(d.appMetadata)) as FeedAt;
    if (at.kind === "start") return onStart(at);
    const table = tableFromIPC(joinIpcStream([schema, ...pending].map((m) => ({ header: m.dataHeader, body: m.dataBody }))));
    pending = [];
    const b = { at, table };
    batches.push(b);
    ex.onBatch?.(b);
  });
  // A string is sent as the command's bytes as is (to send text that is not JSON).
  const descriptor = isDescriptor(command) ? command : typeof command === "string" ? create(FlightDescriptorSchema, { type: FlightDescriptor_DescriptorType.CMD, cmd: new TextEncoder().encode(command) }) : cmdDescriptor(command);
  call.write(create(FlightDataSchema, { flightDescriptor: descriptor }));
  if (o.halfClose !== false) call.end();
  return ex;
}
