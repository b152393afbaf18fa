// Tenant isolation, by every call: a token of tenant alpha cannot read or
// write tenant beta's tables through gRPC or Flight (PERMISSION_DENIED when it
// names beta, NOT_FOUND without revealing beta's tables otherwise), and data
// written under one tenant never shows up under the other.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { CriteriaSchema } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightData, FlightInfo, PutResult } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { walStream } from "../../protocols/subjects.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import type { PutAck } from "../../src/api/index.js";
import {
  Status,
  apiFixture,
  bidi,
  cmdDescriptor,
  flightDataOf,
  ingest,
  lsnOf,
  pathDescriptor,
  query,
  serverStream,
  status,
  tableOf,
  tableOfFlight,
  ticket,
  trades,
  tradesIpc,
  unary,
} from "./fixture.js";
import type { ApiFixture, CallError, ServiceClient } from "./fixture.js";
import { havePython, pyFlight } from "./python.js";

let f: ApiFixture;
let grpc: ServiceClient;
let flight: ServiceClient;
let alphaAdmin: string;
let alphaWriter: string;
let betaWriter: string;
let betaReader: string;
/** LSNs of beta's WAL the queries wait for (read-after-write). */
let betaLsn = 0;
const fxIpc = () => tickBatchToIpc(tableOf("beta", "fx"), { rows: 2, symbols: ["EURUSD"], symbolIndex: Uint32Array.of(0, 0), ts: Float64Array.of(1.75e15 + 1, 1.75e15 + 2), values: [Float64Array.of(1.1, 1.2)] });

const walRecords = async (tenant: string): Promise<number> => (await (await jetstreamManager(f.nats.nc)).streams.info(walStream(tenant))).state.messages;

beforeAll(async () => {
  f = await apiFixture();
  grpc = f.proxist();
  flight = f.flight();
  alphaAdmin = await f.token("alpha", "admin");
  alphaWriter = await f.token("alpha", "writer");
  betaWriter = await f.token("beta", "writer");
  betaReader = await f.token("beta", "reader");
  // beta has data in both of its tables
  const put = await ingest(grpc, betaWriter, [
    { table: "trades", arrowIpc: tradesIpc(10, 1_700_000_000_000_000) },
    { table: "fx", arrowIpc: fxIpc() },
  ]);
  expect(put.error).toBeUndefined();
  betaLsn = lsnOf(put.acks);
});
afterAll(async () => {
  await f?.close();
});

// The API refuses a foreign tenant it can see in the request (ingest target, Flight path, a query's "tenant");
// a foreign table inside a query is refused by the query engine, in its words.
const denied = (e: CallError | undefined) => {
  expect(e?.code).toBe(Status.PERMISSION_DENIED);
  expect(e?.details).toMatch(/not this token's tenant \(alpha\)|belongs to tenant beta, not alpha; a query reaches only its own tenant's tables/);
};
const notFoundWithoutLeak = (e: CallError | undefined) => {
  expect(e?.code).toBe(Status.NOT_FOUND);
  expect(e?.details).toContain("tenant alpha has no table fx (its tables: quotes, trades)");
};

describe("tenant isolation over gRPC", () => {
  it("isolation - Ingest into beta's tables is refused and beta's WAL is untouched", async () => {
    const before = await walRecords("beta");
    denied((await ingest(grpc, alphaAdmin, [{ table: "beta.trades", arrowIpc: tradesIpc(5) }])).error);
    notFoundWithoutLeak((await ingest(grpc, alphaAdmin, [{ table: "fx", arrowIpc: fxIpc() }])).error);
    expect(await walRecords("beta")).toBe(before);
  });

  it("isolation - Query of beta's tables is refused", async () => {
    denied((await query(grpc, alphaAdmin, { table: "beta.trades" })).error);
    denied((await query(grpc, alphaAdmin, { tenant: "beta", table: "trades" })).error);
    expect((await query(grpc, alphaAdmin, { table: "fx" })).error?.code).toBe(Status.NOT_FOUND);
  });

  it("isolation - the same table name holds each tenant's own rows", async () => {
    const put = await ingest(grpc, alphaWriter, [{ table: "trades", arrowIpc: tradesIpc(3, 1_750_000_000_000_000) }]);
    const alpha = await query(grpc, alphaAdmin, { table: "trades", minLsn: lsnOf(put.acks), tsType: "int64" });
    const beta = await query(grpc, betaReader, { table: "trades", minLsn: betaLsn });
    expect(alpha.rows).toBe(3);
    expect(beta.rows).toBe(10);
    expect(alpha.tables.flatMap((t) => t.toArray().map((r) => Number(r.ts))).sort()).toEqual([0, 1, 2].map((i) => 1_750_000_000_000_000 + i));
  });

  it("isolation - Status shows only the caller's tenant", async () => {
    const a = await status(grpc, alphaAdmin);
    const b = await status(grpc, betaReader);
    expect(a.reply!.tenant).toBe("alpha");
    expect(a.reply!.tables.map((t) => t.name)).toEqual(["quotes", "trades"]);
    expect(b.reply!.tables.map((t) => t.name)).toEqual(["fx", "trades"]);
  });
});

describe("tenant isolation over Flight", () => {
  it("isolation - DoPut to beta by path or command is refused", async () => {
    const before = await walRecords("beta");
    denied((await bidi<PutResult>(flight, "doPut", flightDataOf(tradesIpc(5), pathDescriptor("beta", "trades")), alphaAdmin)).error);
    denied((await bidi<PutResult>(flight, "doPut", flightDataOf(tradesIpc(5), cmdDescriptor({ table: "beta.trades" })), alphaAdmin)).error);
    notFoundWithoutLeak((await bidi<PutResult>(flight, "doPut", flightDataOf(fxIpc(), pathDescriptor("fx")), alphaAdmin)).error);
    expect(await walRecords("beta")).toBe(before);
  });

  it("isolation - DoGet of beta's tables is refused", async () => {
    denied((await serverStream<FlightData>(flight, "doGet", ticket({ table: "beta.trades" }), alphaAdmin)).error);
    denied((await serverStream<FlightData>(flight, "doGet", ticket({ tenant: "beta", table: "fx" }), alphaAdmin)).error);
    const own = await serverStream<FlightData>(flight, "doGet", ticket({ table: "fx", minLsn: betaLsn }), betaReader);
    expect(tableOfFlight(own.items).numRows).toBe(2);
  });

  it("isolation - GetFlightInfo, PollFlightInfo and GetSchema of beta's tables are refused", async () => {
    for (const method of ["getFlightInfo", "pollFlightInfo", "getSchema"]) {
      denied((await unary(flight, method, pathDescriptor("beta", "trades"), alphaAdmin)).error);
      denied((await unary(flight, method, cmdDescriptor({ table: "beta.fx" }), alphaAdmin)).error);
      expect((await unary(flight, method, pathDescriptor("fx"), alphaAdmin)).error?.code).toBe(Status.NOT_FOUND);
    }
  });

  it("isolation - ListFlights lists only the caller's tables", async () => {
    const a = await serverStream<FlightInfo>(flight, "listFlights", create(CriteriaSchema, {}), alphaAdmin);
    const b = await serverStream<FlightInfo>(flight, "listFlights", create(CriteriaSchema, {}), betaReader);
    expect(a.items.map((i) => i.flightDescriptor!.path)).toEqual([["quotes"], ["trades"]]);
    expect(b.items.map((i) => i.flightDescriptor!.path)).toEqual([["fx"], ["trades"]]);
  });

  it("isolation - a pyarrow client with alpha's token cannot DoGet or DoPut beta's tables", async () => {
    if (!havePython()) throw new Error("the Python venv is missing: run `bash scripts/setup.sh`");
    const get = await pyFlight("get", { port: f.api.port, token: alphaAdmin, query: JSON.stringify({ table: "beta.fx" }) });
    expect(get.error).toBe("FlightUnauthorizedError");
    const put = await pyFlight("put", { port: f.api.port, token: alphaAdmin, path: "beta/trades", rows: 10 });
    expect(put.error).toBe("FlightUnauthorizedError");
  });
});

describe("tenant isolation of data written by the other tenant", () => {
  it("isolation - beta's rows never appear in alpha's DoGet", async () => {
    const rows = trades(4, 1_760_000_000_000_000, ["BETAONLY"]);
    const put = await bidi<PutResult>(flight, "doPut", flightDataOf(tickBatchToIpc(tableOf("beta", "trades"), rows), pathDescriptor("trades")), betaWriter);
    const acks = put.items.map((r) => JSON.parse(new TextDecoder().decode(r.appMetadata)) as PutAck);
    // beta sees its rows (so they are in the shards), alpha does not.
    const b = await serverStream<FlightData>(flight, "doGet", ticket({ table: "trades", minLsn: lsnOf(acks) }), betaReader);
    expect(tableOfFlight(b.items).toArray().map((r) => String(r.sym))).toContain("BETAONLY");
    const a = await serverStream<FlightData>(flight, "doGet", ticket({ table: "trades" }), alphaAdmin);
    const syms = tableOfFlight(a.items).toArray().map((r) => String(r.sym));
    expect(syms).not.toContain("BETAONLY");
  });
});
