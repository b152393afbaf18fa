// gRPC service definitions built from the generated protobuf descriptors (no
// proto-loader). Server-side request decoding never throws: grpc-js would turn
// a throwing deserializer into INTERNAL, but a malformed or oversized request
// is the client's fault, so handlers get a Decoded value and answer
// INVALID_ARGUMENT or RESOURCE_EXHAUSTED themselves.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, DescService, MessageShape } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { ApiError } from "./errors.js";
import { LimitExceeded } from "./limits.js";

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: Error };

/** The request, or the reason it could not be decoded (thrown for the handler's error path). */
export function unwrap<T>(d: Decoded<T>): T {
  if (!d.ok) throw d.error;
  return d.value;
}

const asBuffer = (u8: Uint8Array): Buffer => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

function decodeSafely<D extends DescMessage>(schema: D, bytes: Buffer, maxMessageBytes: number): Decoded<MessageShape<D>> {
  if (bytes.length > maxMessageBytes) {
    return { ok: false, error: new LimitExceeded("maxMessageBytes", `a ${schema.name} message`, bytes.length, maxMessageBytes, "send smaller messages (split batches)") };
  }
  try {
    return { ok: true, value: fromBinary(schema, bytes, { readUnknownFields: false }) };
  } catch (e) {
    return { ok: false, error: new ApiError("INVALID_ARGUMENT", `the ${schema.typeName} message is not valid protobuf (${(e as Error).message}); check the client's .proto matches the server's`) };
  }
}

const streams = (m: DescMethod) => ({
  requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
  responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
});

/** Server definition: handlers receive `Decoded<Request>` and write response messages. */
export function serverDefinition(service: DescService, maxMessageBytes: number): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    def[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      ...streams(m),
      originalName: m.localName,
      requestSerialize: (v) => asBuffer(toBinary(m.input, v as MessageShape<typeof m.input>)),
      requestDeserialize: (b: Buffer) => decodeSafely(m.input, b, maxMessageBytes),
      // A handler may write a response it encoded itself (DoGet's FlightData): bytes pass through.
      responseSerialize: (v) => (v instanceof Uint8Array ? asBuffer(v) : asBuffer(toBinary(m.output, v as MessageShape<typeof m.output>))),
      responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
    };
  }
  return def;
}

/** Client definition (plain decoding), for grpc.makeGenericClientConstructor. */
export function clientDefinition(service: DescService): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    def[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      ...streams(m),
      originalName: m.localName,
      requestSerialize: (v) => asBuffer(toBinary(m.input, v as MessageShape<typeof m.input>)),
      requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
      responseSerialize: (v) => asBuffer(toBinary(m.output, v as MessageShape<typeof m.output>)),
      responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
    };
  }
  return def;
}
