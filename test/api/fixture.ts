// API integration fixture: a real nats-server, a Proxist node serving tenants
// alpha and beta with every shard hosted, tokens for each role, and the node's
// own API (startNodeApi: ProxistQueryEngine over the node's shards, gRPC +
// Flight on a free port); plus promise-shaped client calls.
import { credentials, makeGenericClientConstructor, status as Status } from "@grpc/grpc-js";
import type { ClientDuplexStream, ClientReadableStream, Metadata, MethodDefinition, ServiceClientConstructor, ServiceError } from "@grpc/grpc-js";
import type { DescService } from "@bufbuild/protobuf";
import { clientDefinition } from "../../src/api/grpcdef.js";
import { joinIpcStream, splitOwnIpcStream } from "../../src/api/ipc/index.js";
import { FlightDataSchema, FlightDescriptorSchema, FlightDescriptor_DescriptorType, TicketSchema } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightData } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";

export type ServiceClient = InstanceType<ServiceClientConstructor>;
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { tableFromIPC } from "apache-arrow";
import type { Table } from "apache-arrow";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { IngestBatchSchema, QueryRequestSchema, StatusRequestSchema } from "../../protocols/gen/proxist/v1/api_pb.js";
import type { IngestAck, QueryChunk, StatusReply } from "../../protocols/gen/proxist/v1/api_pb.js";
import { createToken } from "../../src/auth/index.js";
import type { Role } from "../../src/auth/index.js";
import { FlightClient, ProxistClient, bearer } from "../../src/api/index.js";
import type { ApiLimits, ApiServer } from "../../src/api/index.js";
import { startNodeApi } from "../../src/node/api.js";
import { credsIssuer } from "../../src/runtime/natscreds.js";
import type { NodeApi } from "../../src/node/api.js";
import type { NodeOptions, ProxistNode } from "../../src/node/node.js";
import type { ProxistQueryEngine } from "../../src/query/index.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";

export const SPEC = parseClusterSpec({
  tenants: [
    {
      name: "alpha",
      tables: [
        { name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] },
        { name: "quotes", columns: [{ name: "bid", type: "float64" }, { name: "ask", type: "float64" }] },
      ],
    },
    {
      name: "beta",
      tables: [
        { name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] },
        { name: "fx", columns: [{ name: "rate", type: "float64" }] },
      ],
    },
  ],
});

export const tableOf = (tenant: string, table: string) => SPEC.tenants.find((t) => t.name === tenant)!.tables.find((t) => t.name === table)!;

export interface ApiFixture {
  readonly nats: NatsFixture;
  readonly node: ProxistNode;
  readonly nodeApi: NodeApi;
  readonly api: ApiServer;
  /** The node API's engine (what every query of these tests runs on). */
  readonly engine: ProxistQueryEngine;
  readonly address: string;
  /** `tables`: the token's table grants (omitted: every table of the tenant). */
  token(tenant: string, role: Role, ttlSeconds?: number, tables?: readonly string[]): Promise<string>;
  proxist(): ServiceClient;
  flight(): ServiceClient;
  close(): Promise<void>;
}

/** Every shard of SPEC, as the node hosts them with `shards: "all"`. */
const SHARDS = SPEC.tenants.reduce((n, t) => n + t.tables.reduce((m, table) => m + table.shards, 0), 0);

/**
 * `node`: options of the node under the API (e.g. test seams); `natsIdentity`: the API gets the test NATS identity
 * (as a node started with PX_AUTH_DIR), so the admin credentials calls work.
 */
export async function apiFixture(o: { limits?: Partial<ApiLimits>; cacheTtlMs?: number; log?: (line: string) => void; node?: Partial<NodeOptions>; natsIdentity?: boolean } = {}): Promise<ApiFixture> {
  const nats = await natsFixture();
  const node = await nodeOn(nats.server, nats.nc, o.node ?? {}, SPEC);
  // The node starts its shards after the catalog loads; a query before that would find no shard to wait on.
  const deadline = Date.now() + 10_000;
  while (node.shards.all().length < SHARDS) {
    if (Date.now() > deadline) throw new Error(`the node hosts ${node.shards.all().length} of ${SHARDS} shards after 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // The API the node itself starts with --grpc-port, on the node's shards and catalog (src/node/node.ts does the same).
  const nodeApi = await startNodeApi({
    nc: node.nc,
    node,
    catalog: () => node.catalog(),
    shards: node.shards,
    clickhouse: undefined,
    grpcPort: 0,
    host: "127.0.0.1",
    replicas: 1,
    log: o.log ?? (() => {}),
    tokenCacheTtlMs: o.cacheTtlMs ?? 2_000,
    subscriptions: node.subscriptions,
    ...(o.limits ? { limits: o.limits } : {}),
    ...(o.natsIdentity ? { creds: credsIssuer(node.nc, { files: nats.server.auth!, servers: [nats.server.url] }) } : {}),
  });
  const api = nodeApi.server;
  const address = `127.0.0.1:${api.port}`;
  const clients: ServiceClient[] = [];
  const track = (c: ServiceClient) => (clients.push(c), c);
  return {
    nats,
    node,
    nodeApi,
    api,
    engine: nodeApi.engine,
    address,
    token: (tenant, role, ttlSeconds, tables) => createToken(nats.nc, { tenant, role, ...(ttlSeconds === undefined ? {} : { ttlSeconds }), ...(tables === undefined ? {} : { tables }) }),
    proxist: () => track(new ProxistClient(address, credentials.createInsecure())),
    flight: () => track(new FlightClient(address, credentials.createInsecure())),
    close: async () => {
      clients.forEach((c) => c.close());
      await nodeApi.stop();
      await node.stop();
      await nats.close();
    },
  };
}

export const md = (token: string | undefined): Metadata => (token === undefined ? bearerless() : bearer(token));
function bearerless(): Metadata {
  const m = bearer("x");
  m.remove("authorization");
  return m;
}

export type CallError = { code: Status; details: string };
const asCallError = (e: unknown): CallError => ({ code: (e as ServiceError).code, details: (e as ServiceError).details });

export function trades(rows: number, t0 = 1_700_000_000_000_000, symbols = ["AAPL", "MSFT", "IBM"]): TickBatch {
  return {
    rows,
    symbols,
    symbolIndex: Uint32Array.from({ length: rows }, (_, i) => i % symbols.length),
    ts: Float64Array.from({ length: rows }, (_, i) => t0 + i),
    values: [Float64Array.from({ length: rows }, (_, i) => 100 + i / 100), Float64Array.from({ length: rows }, (_, i) => i + 1)],
  };
}

export const tradesIpc = (rows: number, t0?: number): Uint8Array => tickBatchToIpc(tableOf("alpha", "trades"), trades(rows, t0));

type IngestInit = MessageInitShape<typeof IngestBatchSchema>;

/** Streams `batches` over Ingest; resolves with the acks and the final error, if any. */
export function ingest(client: ServiceClient, token: string | undefined, batches: readonly IngestInit[]): Promise<{ acks: IngestAck[]; error: CallError | undefined }> {
  return new Promise((resolve) => {
    const acks: IngestAck[] = [];
    const call = client.ingest!(md(token)) as ClientDuplexStream<unknown, IngestAck>;
    call.on("data", (a: IngestAck) => acks.push(a));
    call.on("error", (e) => resolve({ acks, error: asCallError(e) }));
    call.on("end", () => resolve({ acks, error: undefined }));
    for (const b of batches) call.write(create(IngestBatchSchema, b));
    call.end();
  });
}

/** The LSN a query names as minLsn to see every batch of `acks` (read-after-write). */
export const lsnOf = (acks: readonly { lastLsn: bigint | number }[]): number => acks.reduce((m, a) => Math.max(m, Number(a.lastLsn)), 0);

export interface QueryResult {
  readonly chunks: QueryChunk[];
  readonly tables: Table[];
  readonly rows: number;
  readonly error: CallError | undefined;
}

export function query(client: ServiceClient, token: string | undefined, q: unknown, o: { deadline?: number; raw?: string; maxChunkRows?: number } = {}): Promise<QueryResult> {
  return new Promise((resolve) => {
    const chunks: QueryChunk[] = [];
    const req = create(QueryRequestSchema, { queryJson: o.raw ?? JSON.stringify(q), maxChunkRows: o.maxChunkRows ?? 0 });
    const call = client.query!(req, md(token), o.deadline === undefined ? {} : { deadline: Date.now() + o.deadline }) as ClientReadableStream<QueryChunk>;
    const done = (error: CallError | undefined) => {
      const tables = chunks.map((c) => tableFromIPC(c.arrowIpc));
      resolve({ chunks, tables, rows: tables.reduce((n, t) => n + t.numRows, 0), error });
    };
    call.on("data", (c: QueryChunk) => chunks.push(c));
    call.on("error", (e) => done(asCallError(e)));
    call.on("end", () => done(undefined));
  });
}

export function status(client: ServiceClient, token: string | undefined): Promise<{ reply: StatusReply | undefined; error: CallError | undefined }> {
  return new Promise((resolve) => {
    client.status!(create(StatusRequestSchema, {}), md(token), (e: ServiceError | null, reply: StatusReply) => resolve(e ? { reply: undefined, error: asCallError(e) } : { reply, error: undefined }));
  });
}

/** Calls a unary method; resolves with the reply or the error. */
export function unary<T>(client: ServiceClient, method: string, req: unknown, token: string | undefined): Promise<{ reply: T | undefined; error: CallError | undefined }> {
  return new Promise((resolve) => {
    (client[method] as (r: unknown, m: Metadata, cb: (e: ServiceError | null, r: T) => void) => void)(req, md(token), (e, r) =>
      resolve(e ? { reply: undefined, error: asCallError(e) } : { reply: r, error: undefined }),
    );
  });
}

/** Reads a server stream to its end. */
export function serverStream<T>(client: ServiceClient, method: string, req: unknown, token: string | undefined): Promise<{ items: T[]; error: CallError | undefined }> {
  return new Promise((resolve) => {
    const items: T[] = [];
    const call = (client[method] as (r: unknown, m: Metadata) => ClientReadableStream<T>)(req, md(token));
    call.on("data", (x: T) => items.push(x));
    call.on("error", (e) => resolve({ items, error: asCallError(e) }));
    call.on("end", () => resolve({ items, error: undefined }));
  });
}

/** Writes `messages` on a bidi stream, half-closes and collects replies. */
export function bidi<T>(client: ServiceClient, method: string, messages: readonly unknown[], token: string | undefined): Promise<{ items: T[]; error: CallError | undefined }> {
  return new Promise((resolve) => {
    const items: T[] = [];
    const call = (client[method] as (m: Metadata) => ClientDuplexStream<unknown, T>)(md(token));
    call.on("data", (x: T) => items.push(x));
    call.on("error", (e) => resolve({ items, error: asCallError(e) }));
    call.on("end", () => resolve({ items, error: undefined }));
    for (const m of messages) call.write(m);
    call.end();
  });
}

export { Status };

/** A client whose requests are raw bytes (for sending malformed protobuf frames). */
export function rawClient(address: string, service: DescService): ServiceClient {
  const def: Record<string, MethodDefinition<Buffer, Buffer>> = {};
  for (const [name, m] of Object.entries(clientDefinition(service))) {
    def[name] = { ...m, requestSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b };
  }
  const Ctor = makeGenericClientConstructor(def, service.typeName);
  return new Ctor(address, credentials.createInsecure());
}

/** The FlightData messages a Flight client sends for `ipc` under `descriptor`. */
export function flightDataOf(ipc: Uint8Array, descriptor: MessageInitShape<typeof FlightDescriptorSchema>): FlightData[] {
  return splitOwnIpcStream(ipc).map((m, i) =>
    create(FlightDataSchema, { dataHeader: m.header, dataBody: m.body, ...(i === 0 ? { flightDescriptor: descriptor } : {}) }),
  );
}

export const pathDescriptor = (...path: string[]) => create(FlightDescriptorSchema, { type: FlightDescriptor_DescriptorType.PATH, path });
export const cmdDescriptor = (cmd: unknown) => create(FlightDescriptorSchema, { type: FlightDescriptor_DescriptorType.CMD, cmd: new TextEncoder().encode(JSON.stringify(cmd)) });
export const ticket = (q: unknown) => create(TicketSchema, { ticket: new TextEncoder().encode(typeof q === "string" ? q : JSON.stringify(q)) });

/** Reads DoGet FlightData back into a table (schema message first). */
export function tableOfFlight(items: readonly FlightData[]): Table {
  return tableFromIPC(joinIpcStream(items.map((d) => ({ header: d.dataHeader, body: d.dataBody }))));
}
