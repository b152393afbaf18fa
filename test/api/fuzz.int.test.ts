// Fuzzing the API with mutated input against a real server: Arrow IPC payloads
// and FlightData messages with bit flips, truncation and huge length fields,
// and raw protobuf frames mutated the same way. Every call must end with a
// client-error status (never INTERNAL or UNKNOWN), the server must keep
// serving, and memory must stay bounded.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import type { ClientDuplexStream, ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import { FlightDataSchema, FlightDescriptorSchema, FlightService, TicketSchema } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { PutResult } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { IngestBatchSchema, Proxist, QueryRequestSchema } from "../../protocols/gen/proxist/v1/api_pb.js";
import { Status, apiFixture, bidi, flightDataOf, ingest, lsnOf, md, pathDescriptor, query, rawClient, tradesIpc } from "./fixture.js";
import type { ApiFixture, CallError, ServiceClient } from "./fixture.js";

/** Deterministic PRNG (mulberry32): a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Mutation = "flip" | "truncate" | "hugeLength" | "splice";

function mutate(base: Uint8Array, r: () => number): { bytes: Uint8Array; how: Mutation } {
  const bytes = Uint8Array.from(base);
  const how = (["flip", "truncate", "hugeLength", "splice"] as const)[Math.floor(r() * 4)]!;
  const view = new DataView(bytes.buffer);
  switch (how) {
    case "flip":
      for (let i = 0, n = 1 + Math.floor(r() * 8); i < n; i++) bytes[Math.floor(r() * bytes.length)]! ^= 1 << Math.floor(r() * 8);
      return { bytes, how };
    case "truncate":
      return { bytes: bytes.subarray(0, Math.floor(r() * bytes.length)), how };
    case "hugeLength": {
      // A 4- or 8-byte length-like field at an aligned offset set to a huge value.
      const at = Math.floor((r() * (bytes.length - 8)) / 4) * 4;
      if (r() < 0.5) view.setInt32(at, 0x7fffff00 + Math.floor(r() * 255), true);
      else view.setBigInt64(at, (1n << 40n) + BigInt(Math.floor(r() * 1e6)), true);
      return { bytes, how };
    }
    case "splice": {
      const at = Math.floor(r() * bytes.length);
      const junk = Uint8Array.from({ length: 1 + Math.floor(r() * 32) }, () => Math.floor(r() * 256));
      const out = new Uint8Array(bytes.length + junk.length);
      out.set(bytes.subarray(0, at));
      out.set(junk, at);
      out.set(bytes.subarray(at), at + junk.length);
      return { bytes: out, how };
    }
  }
}

/** Statuses a malformed request may legitimately get; anything else is a server bug. */
const CLIENT_ERRORS = new Set([Status.OK, Status.INVALID_ARGUMENT, Status.RESOURCE_EXHAUSTED, Status.NOT_FOUND, Status.PERMISSION_DENIED]);

let f: ApiFixture;
let grpc: ServiceClient;
let flight: ServiceClient;
let rawProxist: ServiceClient;
let rawFlight: ServiceClient;
let writer: string;
const seen = new Map<string, number>();
const record = (what: string, e: CallError | undefined) => {
  const code = e?.code ?? Status.OK;
  const key = `${what.split(" #")[0]} ${Status[code]}`;
  seen.set(key, (seen.get(key) ?? 0) + 1);
  if (!CLIENT_ERRORS.has(code)) throw new Error(`${what}: status ${Status[code]}: ${e?.details}`);
};

beforeAll(async () => {
  f = await apiFixture({ limits: { maxMessageBytes: 4 << 20 } });
  grpc = f.proxist();
  flight = f.flight();
  rawProxist = rawClient(f.address, Proxist);
  rawFlight = rawClient(f.address, FlightService);
  writer = await f.token("alpha", "writer");
});
afterAll(async () => {
  rawProxist?.close();
  rawFlight?.close();
  await f?.close();
});

function rawBidi(client: ServiceClient, method: string, frames: readonly Buffer[]): Promise<CallError | undefined> {
  return new Promise((resolve) => {
    const call = client[method]!(md(writer)) as ClientDuplexStream<Buffer, Buffer>;
    call.on("data", () => {});
    call.on("error", (e: ServiceError) => resolve({ code: e.code, details: e.details }));
    call.on("end", () => resolve(undefined));
    for (const fr of frames) call.write(fr);
    call.end();
  });
}

function rawServerStream(client: ServiceClient, method: string, frame: Buffer): Promise<CallError | undefined> {
  return new Promise((resolve) => {
    const call = client[method]!(frame, md(writer)) as ClientReadableStream<Buffer>;
    call.on("data", () => {});
    call.on("error", (e: ServiceError) => resolve({ code: e.code, details: e.details }));
    call.on("end", () => resolve(undefined));
  });
}

describe("fuzz", () => {
  const rss0 = process.memoryUsage().rss;

  it("fuzz - mutated Arrow IPC payloads over gRPC Ingest", async () => {
    const base = tradesIpc(64);
    const r = rng(1);
    for (let i = 0; i < 400; i++) {
      const { bytes, how } = mutate(base, r);
      const { error } = await ingest(grpc, writer, [{ table: "trades", arrowIpc: bytes }]);
      record(`ingest/${how} #${i}`, error);
    }
  });

  it("fuzz - mutated FlightData headers and bodies over DoPut", async () => {
    const frames = flightDataOf(tradesIpc(64), pathDescriptor("trades"));
    const r = rng(2);
    for (let i = 0; i < 300; i++) {
      const k = Math.floor(r() * frames.length);
      const target = frames[k]!;
      const useHeader = r() < 0.6 || target.dataBody.length === 0;
      const { bytes, how } = mutate(useHeader ? target.dataHeader : target.dataBody, r);
      const mutated = frames.map((fd, j) =>
        j !== k ? fd : create(FlightDataSchema, { ...fd, ...(useHeader ? { dataHeader: bytes } : { dataBody: bytes }) }),
      );
      const { error } = await bidi<PutResult>(flight, "doPut", mutated, writer);
      record(`doPut/${useHeader ? "header" : "body"}/${how} #${i}`, error);
    }
  });

  it("fuzz - mutated protobuf frames to Ingest, DoPut, DoGet and Query", async () => {
    const ingestFrame = Buffer.from(toBinary(IngestBatchSchema, create(IngestBatchSchema, { table: "trades", producerId: "fz", producerSeq: 3n, arrowIpc: tradesIpc(16) })));
    const putFrames = flightDataOf(tradesIpc(16), create(FlightDescriptorSchema, { type: 1, path: ["trades"] })).map((d) => Buffer.from(toBinary(FlightDataSchema, d)));
    const ticketFrame = Buffer.from(toBinary(TicketSchema, create(TicketSchema, { ticket: new TextEncoder().encode(JSON.stringify({ table: "trades", t0: 0, t1: 5 })) })));
    const queryFrame = Buffer.from(toBinary(QueryRequestSchema, create(QueryRequestSchema, { queryJson: JSON.stringify({ table: "quotes", t0: 0, t1: 5 }) })));
    const r = rng(3);
    for (let i = 0; i < 150; i++) {
      const m = (b: Buffer) => Buffer.from(mutate(b, r).bytes);
      record(`raw ingest #${i}`, await rawBidi(rawProxist, "ingest", [m(ingestFrame)]));
      const k = Math.floor(r() * putFrames.length);
      record(`raw doPut #${i}`, await rawBidi(rawFlight, "doPut", putFrames.map((fr, j) => (j === k ? m(fr) : fr))));
      record(`raw doGet #${i}`, await rawServerStream(rawFlight, "doGet", m(ticketFrame)));
      record(`raw query #${i}`, await rawServerStream(rawProxist, "query", m(queryFrame)));
    }
  });

  it("fuzz - the server still serves and memory stayed bounded", async () => {
    const put = await ingest(grpc, writer, [{ table: "trades", arrowIpc: tradesIpc(10, 1_744_500_000_000_000) }]);
    expect(put.error).toBeUndefined();
    const got = await query(grpc, writer, { table: "trades", t0: 1_744_500_000_000_000, t1: 1_744_500_000_000_010, minLsn: lsnOf(put.acks) });
    expect(got.rows).toBe(10);
    const grownMb = (process.memoryUsage().rss - rss0) / 2 ** 20;
    expect(grownMb).toBeLessThan(512);
    // Both client-error classes were actually exercised.
    const codes = [...seen.keys()].map((k) => k.split(" ").at(-1));
    expect(codes).toContain("INVALID_ARGUMENT");
    expect(codes).toContain("RESOURCE_EXHAUSTED");
  });
});
