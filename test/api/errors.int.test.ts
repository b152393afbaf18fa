// Every error class of the API, over gRPC and Flight, against a real server:
// UNAUTHENTICATED (missing, malformed, unknown, expired, revoked token),
// PERMISSION_DENIED (role), INVALID_ARGUMENT (bad query, bad Arrow, bad
// envelope), RESOURCE_EXHAUSTED (each limit, named). The server keeps serving
// after each, and no error message contains a token.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { Float64, Utf8 } from "apache-arrow";
import { CriteriaSchema, FlightDataSchema, HandshakeRequestSchema, TicketSchema } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightData, FlightInfo, PutResult } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { createToken, formatToken, revokeToken } from "../../src/auth/index.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { ipcOf } from "../helpers/arrow.js";
import {
  Status,
  apiFixture,
  bidi,
  flightDataOf,
  ingest,
  pathDescriptor,
  query,
  serverStream,
  status,
  tableOf,
  ticket,
  trades,
  tradesIpc,
  unary,
} from "./fixture.js";
import type { ApiFixture, CallError, ServiceClient } from "./fixture.js";

const LIMITS = { maxMessageBytes: 1 << 20, maxBatchRows: 1000, maxColumns: 8, maxDictionaryEntries: 100 };

let f: ApiFixture;
let grpc: ServiceClient;
let flight: ServiceClient;
let writer: string;
let reader: string;
const tokensSeen: string[] = [];
const details: string[] = [];

const expectCode = (e: CallError | undefined, code: Status, text?: RegExp | string) => {
  expect(e, `expected ${Status[code]}`).toBeDefined();
  details.push(e!.details);
  expect(Status[e!.code]).toBe(Status[code]);
  if (text !== undefined) expect(e!.details).toMatch(text);
};

/** One call of each kind with `token`; all must fail with `code`. */
async function everyCall(token: string | undefined, code: Status, text?: RegExp | string): Promise<void> {
  expectCode((await ingest(grpc, token, [{ table: "trades", arrowIpc: tradesIpc(2) }])).error, code, text);
  expectCode((await query(grpc, token, { table: "trades" })).error, code, text);
  expectCode((await status(grpc, token)).error, code, text);
  expectCode((await serverStream<FlightData>(flight, "doGet", ticket({ table: "trades" }), token)).error, code, text);
  expectCode((await bidi<PutResult>(flight, "doPut", flightDataOf(tradesIpc(2), pathDescriptor("trades")), token)).error, code, text);
  expectCode((await unary(flight, "getFlightInfo", pathDescriptor("trades"), token)).error, code, text);
  expectCode((await unary(flight, "getSchema", pathDescriptor("trades"), token)).error, code, text);
  expectCode((await serverStream<FlightInfo>(flight, "listFlights", create(CriteriaSchema, {}), token)).error, code, text);
}

async function stillServing(): Promise<void> {
  const put = await ingest(grpc, writer, [{ table: "trades", arrowIpc: tradesIpc(3) }]);
  expect(put.error).toBeUndefined();
  expect(put.acks[0]!.rows).toBe(3);
  const got = await query(grpc, reader, { table: "quotes" });
  expect(got.error).toBeUndefined();
}

beforeAll(async () => {
  f = await apiFixture({ limits: LIMITS, cacheTtlMs: 3_000 });
  grpc = f.proxist();
  flight = f.flight();
  writer = await f.token("alpha", "writer");
  reader = await f.token("alpha", "reader");
  tokensSeen.push(writer, reader);
});
afterAll(async () => {
  await f?.close();
});

describe("UNAUTHENTICATED", () => {
  it("errors - a missing token, by every call", async () => {
    await everyCall(undefined, Status.UNAUTHENTICATED, /no token/);
    await stillServing();
  });

  it("errors - a malformed token and a non-Bearer header", async () => {
    await everyCall("px_not-a-token", Status.UNAUTHENTICATED, /malformed token/);
    const md = new Metadata();
    md.set("authorization", `Token ${writer}`);
    const e = await new Promise<CallError>((resolve) => grpc.status!({}, md, (err: CallError) => resolve(err)));
    expectCode(e, Status.UNAUTHENTICATED, /Bearer/);
  });

  it("errors - a well-formed token that does not exist, or a wrong secret", async () => {
    const unknown = formatToken("0123456789abcdef0123", "A".repeat(43));
    tokensSeen.push(unknown);
    await everyCall(unknown, Status.UNAUTHENTICATED, /not valid/);
    const wrongSecret = `${writer.slice(0, writer.indexOf("."))}.${"B".repeat(43)}`;
    tokensSeen.push(wrongSecret);
    expectCode((await status(grpc, wrongSecret)).error, Status.UNAUTHENTICATED, /not valid/);
  });

  it("errors - an expired token", async () => {
    const expired = await createToken(f.nats.nc, { tenant: "alpha", role: "admin", ttlSeconds: 1, nowMs: Date.now() - 60_000 });
    tokensSeen.push(expired);
    await everyCall(expired, Status.UNAUTHENTICATED, /expired at/);
  });

  it("errors - a revoked token is refused within seconds", async () => {
    const t = await f.token("alpha", "writer");
    tokensSeen.push(t);
    expect((await status(grpc, t)).error).toBeUndefined();
    await revokeToken(f.nats.nc, t);
    await expect.poll(async () => (await status(grpc, t)).error?.code, { timeout: 5_000, interval: 100 }).toBe(Status.UNAUTHENTICATED);
    await everyCall(t, Status.UNAUTHENTICATED, /revoked at/);
    await stillServing();
  });

  it("errors - a Flight handshake with bad basic credentials", async () => {
    const md = new Metadata();
    md.set("authorization", `Basic ${Buffer.from("proxist:not-a-token").toString("base64")}`);
    const e = await new Promise<CallError>((resolve) => {
      const call = flight.handshake!(md) as ClientDuplexStream<unknown, unknown>;
      call.on("error", (err: CallError) => resolve(err));
      call.on("data", () => {});
      call.write(create(HandshakeRequestSchema, {}));
      call.end();
    });
    expectCode(e, Status.UNAUTHENTICATED, /malformed token/);
  });
});

describe("PERMISSION_DENIED", () => {
  it("errors - a reader may not ingest, by gRPC or Flight", async () => {
    expectCode((await ingest(grpc, reader, [{ table: "trades", arrowIpc: tradesIpc(2) }])).error, Status.PERMISSION_DENIED, /role reader may not ingest data; ask an admin for a writer token/);
    expectCode((await bidi<PutResult>(flight, "doPut", flightDataOf(tradesIpc(2), pathDescriptor("trades")), reader)).error, Status.PERMISSION_DENIED, /role reader/);
    await stillServing();
  });
});

describe("INVALID_ARGUMENT", () => {
  it("errors - bad query JSON, an invalid query, a bad ticket", async () => {
    expectCode((await query(grpc, reader, undefined, { raw: "{not json" })).error, Status.INVALID_ARGUMENT, /query_json is not valid JSON/);
    expectCode((await query(grpc, reader, undefined, { raw: "[1,2]" })).error, Status.INVALID_ARGUMENT, /must be a JSON object/);
    expectCode((await query(grpc, reader, { table: "trades", t0: 10, t1: 5 })).error, Status.INVALID_ARGUMENT, /t1 5 is before t0 10/);
    expectCode((await query(grpc, reader, { table: "trades", bogus: 1 })).error, Status.INVALID_ARGUMENT, /excess property at \["bogus"\]/);
    expectCode((await serverStream<FlightData>(flight, "doGet", ticket(""), reader)).error, Status.INVALID_ARGUMENT, /ticket is empty/);
    expectCode((await serverStream<FlightData>(flight, "doGet", create(TicketSchema, { ticket: Uint8Array.of(0xff, 0xfe) }), reader)).error, Status.INVALID_ARGUMENT, /not UTF-8/);
    await stillServing();
  });

  it("errors - bad Arrow data names the problem", async () => {
    expectCode((await ingest(grpc, writer, [{ table: "trades", arrowIpc: Uint8Array.of(1, 2, 3, 4, 5) }])).error, Status.INVALID_ARGUMENT, /IPC/);
    expectCode((await ingest(grpc, writer, [{ table: "trades", arrowIpc: new Uint8Array(0) }])).error, Status.INVALID_ARGUMENT, /payload is empty/);
    const wrongType = ipcOf({ sym: { values: ["A"], type: new Utf8() }, ts: BigInt64Array.of(1n), price: { values: ["x"], type: new Utf8() }, size: { values: [1], type: new Float64() } });
    expectCode((await ingest(grpc, writer, [{ table: "trades", arrowIpc: wrongType }])).error, Status.INVALID_ARGUMENT, /column price must be float64/);
    const truncated = tradesIpc(10).subarray(0, 200);
    expectCode((await ingest(grpc, writer, [{ table: "trades", arrowIpc: truncated }])).error, Status.INVALID_ARGUMENT, /truncated/);
    await stillServing();
  });

  it("errors - a bad envelope: producer id, table name, DoPut without descriptor or schema", async () => {
    expectCode((await ingest(grpc, writer, [{ table: "trades", producerId: "bad id!", arrowIpc: tradesIpc(1) }])).error, Status.INVALID_ARGUMENT, /producer id/);
    expectCode((await ingest(grpc, writer, [{ table: "Trades!", arrowIpc: tradesIpc(1) }])).error, Status.INVALID_ARGUMENT, /is not a table name/);
    const [schemaMsg, ...rest] = flightDataOf(tradesIpc(2), pathDescriptor("trades"));
    const noDescriptor = create(FlightDataSchema, { dataHeader: schemaMsg!.dataHeader });
    expectCode((await bidi<PutResult>(flight, "doPut", [noDescriptor, ...rest], writer)).error, Status.INVALID_ARGUMENT, /needs a FlightDescriptor/);
    const batchFirst = [create(FlightDataSchema, { flightDescriptor: pathDescriptor("trades") }), ...rest];
    expectCode((await bidi<PutResult>(flight, "doPut", batchFirst, writer)).error, Status.INVALID_ARGUMENT, /before the schema/);
    await stillServing();
  });

  it("errors - a failing batch ends Ingest after acking the batches before it", async () => {
    const { acks, error } = await ingest(grpc, writer, [
      { table: "trades", arrowIpc: tradesIpc(2) },
      { table: "trades", arrowIpc: tradesIpc(2) },
      { table: "trades", arrowIpc: Uint8Array.of(9, 9, 9) },
      { table: "trades", arrowIpc: tradesIpc(2) },
    ]);
    expect(acks.map((a) => a.batchIndex)).toEqual([0n, 1n]);
    expectCode(error, Status.INVALID_ARGUMENT);
  });
});

describe("RESOURCE_EXHAUSTED", () => {
  it("errors - rows over maxBatchRows", async () => {
    expectCode((await ingest(grpc, writer, [{ table: "trades", arrowIpc: tradesIpc(1001) }])).error, Status.RESOURCE_EXHAUSTED, /maxBatchRows = 1000/);
    expectCode((await bidi<PutResult>(flight, "doPut", flightDataOf(tradesIpc(1001), pathDescriptor("trades")), writer)).error, Status.RESOURCE_EXHAUSTED, /maxBatchRows = 1000/);
  });

  it("errors - columns over maxColumns", async () => {
    const cols: Record<string, Float64Array> = {};
    for (let i = 0; i < 9; i++) cols[`c${i}`] = Float64Array.of(1);
    expectCode((await ingest(grpc, writer, [{ table: "trades", arrowIpc: ipcOf(cols) }])).error, Status.RESOURCE_EXHAUSTED, /maxColumns = 8/);
  });

  it("errors - dictionary entries over maxDictionaryEntries", async () => {
    const symbols = Array.from({ length: 101 }, (_, i) => `S${i}`);
    const ipc = tickBatchToIpc(tableOf("alpha", "trades"), trades(101, 1, symbols));
    expectCode((await ingest(grpc, writer, [{ table: "trades", arrowIpc: ipc }])).error, Status.RESOURCE_EXHAUSTED, /maxDictionaryEntries = 100/);
  });

  it("errors - a message over maxMessageBytes, and far over it", async () => {
    const big = new Uint8Array((1 << 20) + 1000);
    expectCode((await ingest(grpc, writer, [{ table: "trades", arrowIpc: big }])).error, Status.RESOURCE_EXHAUSTED, /maxMessageBytes = 1048576/);
    const huge = new Uint8Array(4 << 20);
    expectCode((await ingest(grpc, writer, [{ table: "trades", arrowIpc: huge }])).error, Status.RESOURCE_EXHAUSTED);
    const hugeFlight = create(FlightDataSchema, { flightDescriptor: pathDescriptor("trades"), dataBody: huge });
    expectCode((await bidi<PutResult>(flight, "doPut", [hugeFlight], writer)).error, Status.RESOURCE_EXHAUSTED);
    await stillServing();
  });
});

describe("error messages", () => {
  it("errors - no message contains a token or its secret", () => {
    expect(details.length).toBeGreaterThan(40);
    for (const d of details) {
      for (const t of tokensSeen) {
        expect(d).not.toContain(t);
        expect(d).not.toContain(t.slice(t.indexOf(".") + 1));
      }
    }
  });

  it("errors - the node's gateway is still running after all of the above", async () => {
    expect(f.node.state()).not.toMatch(/stopped|error/i);
    await stillServing();
  });
});
