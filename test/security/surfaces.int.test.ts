// Every surface, tried by someone who should not get through: no credentials,
// another tenant's credentials, a weaker role. One line per surface in the
// tables below; each must be refused. The negative control runs the NATS table
// against an open server (no auth) and must find every hole.
//
// NATS oracle: a publish is refused when a witness subscribed to the subject
// sees nothing; a subscription is refused when the witness's publish on the
// subject never reaches the attacker. The witness is a user without any
// permission limits (witnessFile), so it sees every subject the roles do not.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { ActionSchema, CriteriaSchema, FlightDescriptorSchema, FlightDescriptor_DescriptorType, TicketSchema } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { ActionCreatePreparedStatementRequestSchema, CommandGetTablesSchema, CommandStatementQuerySchema } from "../../protocols/gen/arrow/flight/protocol/sql/FlightSql_pb.js";
import { packSql } from "../../src/api/flight/sql/command.js";
import {
  KV_ASSIGN,
  KV_CONFIG,
  KV_TOKENS,
  controlSubject,
  feedSubject,
  ingestSubject,
  tenantInboxPrefix,
  walStream,
  walSubject,
  watermarkSubject,
} from "../../protocols/index.js";
import { createUser, encodeUser, fmtCreds } from "@nats-io/jwt";
import { mintUser, revokeToken } from "../../src/auth/index.js";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { IngestBatchSchema } from "../../protocols/gen/proxist/v1/api_pb.js";
import { ApplyTenantRequestSchema, CreateCredsRequestSchema, CreateTokenRequestSchema, ListCredsRequestSchema, ListTokensRequestSchema, RevokeCredsRequestSchema, RevokeTokenRequestSchema } from "../../protocols/gen/proxist/v1/admin_pb.js";
import { credentials } from "@grpc/grpc-js";
import { AdminClient } from "../../src/api/index.js";
import type { NatsRole } from "../../protocols/index.js";
import { natsCredsOptions } from "../../src/runtime/natsclient.js";
import { startNatsServer } from "../../src/runtime/servers/nats.js";
import type { NatsServer } from "../../src/runtime/servers/nats.js";
import { Status, apiFixture, bidi, flightDataOf, ingest, md, pathDescriptor, query, serverStream, status, ticket, tradesIpc, unary } from "../api/fixture.js";
import type { ApiFixture, CallError, ServiceClient } from "../api/fixture.js";

type Who = "alphaPublisher" | "alphaSubscriber" | "admin" | "service";
interface NatsSurface {
  readonly surface: string;
  readonly who: Who;
  readonly op: "pub" | "sub";
  readonly subject: string;
}

/** Filled in beforeAll: another publisher of alpha (its private inbox must stay private). */
let otherAlphaInbox = "";

const NATS_SURFACES: readonly NatsSurface[] = [
  { surface: "ingest of another tenant", who: "alphaPublisher", op: "pub", subject: ingestSubject("beta", "trades") },
  { surface: "raw WAL publish, own tenant (poison record)", who: "alphaPublisher", op: "pub", subject: walSubject("alpha", "trades", 0) },
  { surface: "raw WAL publish, another tenant", who: "alphaPublisher", op: "pub", subject: walSubject("beta", "trades", 0) },
  { surface: "forged watermark, own tenant", who: "alphaPublisher", op: "pub", subject: watermarkSubject("alpha", "trades", 0) },
  { surface: "control apply", who: "alphaPublisher", op: "pub", subject: controlSubject("apply") },
  { surface: "control apply by a subscriber", who: "alphaSubscriber", op: "pub", subject: controlSubject("apply") },
  { surface: "KV put of an admin token", who: "alphaPublisher", op: "pub", subject: `$KV.${KV_TOKENS}.t.forged` },
  { surface: "KV put of a shard assignment", who: "alphaPublisher", op: "pub", subject: `$KV.${KV_ASSIGN}.alpha.trades.0` },
  { surface: "KV put of a spec", who: "alphaSubscriber", op: "pub", subject: `$KV.${KV_CONFIG}.tenant.alpha` },
  { surface: "JetStream API: delete another tenant's WAL", who: "alphaPublisher", op: "pub", subject: `$JS.API.STREAM.DELETE.${walStream("beta")}` },
  { surface: "JetStream API: delete own WAL", who: "alphaSubscriber", op: "pub", subject: `$JS.API.STREAM.DELETE.${walStream("alpha")}` },
  { surface: "ingest by a subscriber (weaker role)", who: "alphaSubscriber", op: "pub", subject: ingestSubject("alpha", "trades") },
  { surface: "read another tenant's ingest", who: "alphaPublisher", op: "sub", subject: "px.beta.ingest.>" },
  { surface: "read own tenant's ingest (other publishers)", who: "alphaPublisher", op: "sub", subject: "px.alpha.ingest.>" },
  { surface: "read own WAL", who: "alphaPublisher", op: "sub", subject: "px.alpha.wal.>" },
  { surface: "read another tenant's WAL", who: "alphaSubscriber", op: "sub", subject: "px.beta.wal.>" },
  { surface: "read another tenant's feed", who: "alphaSubscriber", op: "sub", subject: feedSubject("beta", "bars") },
  { surface: "read another tenant's watermarks", who: "alphaSubscriber", op: "sub", subject: "px.beta.wm.>" },
  { surface: "read control requests", who: "alphaPublisher", op: "sub", subject: "px.ctl.>" },
  { surface: "read every default inbox (others' replies)", who: "alphaPublisher", op: "sub", subject: "_INBOX.>" },
  { surface: "read another alpha publisher's replies", who: "alphaPublisher", op: "sub", subject: "OTHER_ALPHA_INBOX" },
  { surface: "read the token bucket", who: "alphaSubscriber", op: "sub", subject: `$KV.${KV_TOKENS}.>` },
  { surface: "admin reads tenant ingest", who: "admin", op: "sub", subject: "px.alpha.ingest.>" },
  { surface: "admin publishes to a WAL", who: "admin", op: "pub", subject: walSubject("alpha", "trades", 0) },
  { surface: "admin deletes a WAL stream", who: "admin", op: "pub", subject: `$JS.API.STREAM.DELETE.${walStream("alpha")}` },
  { surface: "admin reads a WAL through a consumer", who: "admin", op: "pub", subject: `$JS.API.CONSUMER.CREATE.${walStream("alpha")}` },
  { surface: "admin puts a shard assignment (moves go through px.ctl)", who: "admin", op: "pub", subject: `$KV.${KV_ASSIGN}.alpha.trades.0` },
  { surface: "admin puts a spec (apply goes through px.ctl)", who: "admin", op: "pub", subject: `$KV.${KV_CONFIG}.tenant.alpha` },
  { surface: "service reads a tenant's private replies", who: "service", op: "sub", subject: "OTHER_ALPHA_INBOX" },
  { surface: "service publishes outside Proxist's namespaces", who: "service", op: "pub", subject: "elsewhere.probe" },
  { surface: "service reads outside Proxist's namespaces", who: "service", op: "sub", subject: "elsewhere.>" },
];

const concrete = (subject: string): string => subject.replace(/>$/, "probe").replaceAll("*", "x");
const settle = (ms = 300): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** true: the attempt got through (a hole). */
async function attempt(s: NatsSurface, witness: NatsConnection, attacker: NatsConnection): Promise<boolean> {
  const subject = s.subject === "OTHER_ALPHA_INBOX" ? `${otherAlphaInbox}.>` : s.subject;
  let seen = 0;
  if (s.op === "pub") {
    const sub = witness.subscribe(subject, {
      callback: () => {
        seen++;
      },
    });
    await witness.flush();
    attacker.publish(subject, "probe");
    await attacker.flush().catch(() => {});
    // One server: it handled the attacker's PUB before its PONG, so a delivered probe is queued to the
    // witness before the witness's own PONG: after this round trip (and a margin) it has arrived or never will.
    await witness.flush();
    await settle(50);
    sub.unsubscribe();
  } else {
    const sub = attacker.subscribe(subject, {
      callback: (err) => {
        if (!err) seen++;
      },
    });
    sub.closed.catch(() => {});
    await attacker.flush().catch(() => {});
    witness.publish(concrete(subject), "probe");
    await witness.flush();
    // As above: the probe, if delivered, reaches the attacker before the PONG of its round trip.
    await attacker.flush().catch(() => {});
    await settle(50);
    sub.unsubscribe();
  }
  return seen > 0;
}

async function mintFile(server: NatsServer, role: NatsRole, tenant: string | undefined, ttlSeconds?: number): Promise<{ path: string; credId: string; publicKey: string }> {
  const m = await mintUser(server.auth!.identity, { role, ...(tenant ? { tenant } : {}), ...(ttlSeconds ? { ttlSeconds } : {}) });
  const path = join(server.dir, `${role}-${tenant ?? "all"}-${m.credId}.creds`);
  writeFileSync(path, m.creds, { mode: 0o600 });
  return { path, credId: m.credId, publicKey: m.publicKey };
}

/**
 * The oracle's witness: a user of the Proxist account with no permissions at
 * all (no role has that), signed here with the account key, so it can watch
 * and publish on every subject an attacker tries.
 */
async function witnessFile(server: NatsServer): Promise<string> {
  const ukp = createUser();
  const jwt = await encodeUser("witness", ukp, server.auth!.identity.accountSeed);
  const path = join(server.dir, "witness.creds");
  writeFileSync(path, new TextDecoder().decode(fmtCreds(jwt, ukp)), { mode: 0o600 });
  return path;
}

let f: ApiFixture;
let witness: NatsConnection;
let grpc: ServiceClient;
let flight: ServiceClient;
let adminRpc: ServiceClient;
const conns: NatsConnection[] = [];
const as: Partial<Record<Who, NatsConnection>> = {};
let alphaReader = "";
let betaWriter = "";

beforeAll(async () => {
  // With the NATS identity, as a node started with PX_AUTH_DIR: the credentials calls in RPC_SURFACES are refused by their auth checks alone.
  f = await apiFixture({ natsIdentity: true });
  grpc = f.proxist();
  adminRpc = new AdminClient(f.address, credentials.createInsecure()) as unknown as ServiceClient;
  flight = f.flight();
  const server = f.nats.server;
  const open = async (path: string): Promise<NatsConnection> => {
    const nc = await connect({ servers: server.url, ...natsCredsOptions(path) });
    conns.push(nc);
    return nc;
  };
  as.alphaPublisher = await open((await mintFile(server, "publisher", "alpha")).path);
  as.alphaSubscriber = await open((await mintFile(server, "subscriber", "alpha")).path);
  as.admin = await open(server.auth!.credsPath("admin"));
  as.service = await open(server.auth!.credsPath("service"));
  witness = await open(await witnessFile(server));
  otherAlphaInbox = tenantInboxPrefix("alpha", (await mintFile(server, "publisher", "alpha")).credId);
  alphaReader = await f.token("alpha", "reader");
  betaWriter = await f.token("beta", "writer");
});
afterAll(async () => {
  adminRpc?.close();
  for (const nc of conns) await nc.close().catch(() => {});
  await f?.close();
});

describe("security - NATS surfaces (locked by default)", () => {
  it("nats - a connection without credentials is refused", async () => {
    await expect(connect({ servers: f.nats.server.url, timeout: 3_000, maxReconnectAttempts: 0 })).rejects.toThrow(/Authorization Violation/i);
  });

  it("nats - every surface in the table is refused", async () => {
    const holes: string[] = [];
    for (const s of NATS_SURFACES) if (await attempt(s, witness, as[s.who]!)) holes.push(`${s.who} ${s.op} ${s.subject}: ${s.surface}`);
    expect(holes).toEqual([]);
  });

  it("nats - a tenant publisher ingests into its own tenant and gets the ack on its private inbox", async () => {
    const { TickPublisher } = await import("../../src/client/publisher.js");
    const { tableOf, trades } = await import("../api/fixture.js");
    const p = new TickPublisher(as.alphaPublisher!, { tenant: "alpha", spec: tableOf("alpha", "trades"), timeoutMs: 10_000 });
    expect((await p.publish(trades(5, 1_700_100_000_000_000))).rows).toBe(5);
  });

  it("nats - negative control: the same table against an open server finds every hole", async () => {
    const server = await startNatsServer({ auth: "open" });
    const witness = await connect({ servers: server.url });
    const attacker = await connect({ servers: server.url });
    try {
      const refused: string[] = [];
      for (const s of NATS_SURFACES) if (!(await attempt(s, witness, attacker))) refused.push(s.surface);
      expect(refused).toEqual([]);
    } finally {
      await attacker.close();
      await witness.close();
      await server.stop();
    }
  });

  it("nats - a publisher with table grants (creds create --tables quotes) ingests quotes; NATS refuses its trades and nothing reaches the WAL; --tables on another role is refused", async () => {
    const { runPxctl } = await import("../../src/cli/commands.js");
    const { TickPublisher } = await import("../../src/client/publisher.js");
    const { tableOf, trades } = await import("../api/fixture.js");
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(`stderr: ${t}`), readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: f.nats.server.auth!.credsPath("admin"), PX_AUTH_DIR: f.nats.server.auth!.dir } };
    const pxctl = (...argv: string[]): Promise<number> => runPxctl(["--nats", f.nats.server.url, "-o", "json", ...argv], io);
    const file = join(f.nats.server.dir, "quotes-pub.creds");
    expect(await pxctl("creds", "create", "--tenant", "alpha", "--role", "publisher", "--tables", "quotes", "--out", file), out.join("\n")).toBe(0);
    expect((JSON.parse(out.pop()!) as { tables: string[] }).tables).toEqual(["quotes"]);
    const nc = await connect({ servers: f.nats.server.url, ...natsCredsOptions(file) });
    conns.push(nc);
    const q = new TickPublisher(nc, { tenant: "alpha", spec: tableOf("alpha", "quotes"), timeoutMs: 10_000 });
    const quote = { rows: 2, symbols: ["AAPL"], symbolIndex: Uint32Array.of(0, 0), ts: Float64Array.of(1_700_200_000_000_000, 1_700_200_000_000_001), values: [Float64Array.of(1, 2), Float64Array.of(1.5, 2.5)] };
    expect((await q.publish(quote)).rows).toBe(2);
    const jsm = await (await import("@nats-io/jetstream")).jetstreamManager(f.nats.nc);
    const before = (await jsm.streams.info("PX_WAL_alpha")).state.messages;
    const t = new TickPublisher(nc, { tenant: "alpha", spec: tableOf("alpha", "trades"), timeoutMs: 2_000, maxAttempts: 1 });
    await expect(t.publish(trades(5, 1_700_200_000_000_000))).rejects.toThrow();
    expect((await jsm.streams.info("PX_WAL_alpha")).state.messages).toBe(before);
    // The unrestricted publisher (negative control) stores trades.
    const all = new TickPublisher(as.alphaPublisher!, { tenant: "alpha", spec: tableOf("alpha", "trades"), timeoutMs: 10_000 });
    expect((await all.publish(trades(5, 1_700_200_000_000_000))).rows).toBe(5);
    out.length = 0;
    expect(await pxctl("creds", "create", "--role", "admin", "--tables", "quotes")).toBe(2);
    expect(out.join("\n")).toMatch(/--tables: table grants apply to publishers \(ingest subjects\) and subscribers/);
    expect(await pxctl("creds", "create", "--tenant", "alpha", "--role", "publisher", "--tables", "Bad-Name")).toBe(2);
    expect(out.join("\n")).toMatch(/creds create --tables: table "Bad-Name" is not a table name/);
  });

  it("nats - pxctl creds create writes a 0600 file, list shows it without secrets, revoke disconnects it", async () => {
    const { runPxctl } = await import("../../src/cli/commands.js");
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(`stderr: ${t}`), readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: f.nats.server.auth!.credsPath("admin"), PX_AUTH_DIR: f.nats.server.auth!.dir } };
    const file = join(f.nats.server.dir, "cli-pub.creds");
    const pxctl = (...argv: string[]): Promise<number> => runPxctl(["--nats", f.nats.server.url, "-o", "json", ...argv], io);
    expect(await pxctl("creds", "create", "--tenant", "alpha", "--role", "publisher", "--ttl", "30d", "--out", file)).toBe(0);
    const made = JSON.parse(out.pop()!) as { id: string; file: string; inboxPrefix: string };
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(made.inboxPrefix).toBe(tenantInboxPrefix("alpha", made.id));
    const seed = /SU[A-Z0-9]{56}/.exec(readFileSync(file, "utf8"))![0];
    expect(await pxctl("creds", "list", "--tenant", "alpha")).toBe(0);
    const listed = out.pop()!;
    expect(listed).toContain(made.id);
    expect(listed).not.toContain(seed);
    const kvDump = JSON.stringify(await (await import("../../src/auth/index.js")).listCreds(f.nats.nc));
    expect(kvDump).not.toContain(seed);
    const nc = await connect({ servers: f.nats.server.url, maxReconnectAttempts: 0, ...natsCredsOptions(file) });
    const closed = nc.closed().then(() => "closed");
    out.length = 0;
    expect([await pxctl("creds", "revoke", made.id), out.join("\n")]).toEqual([0, expect.stringContaining(made.id)]);
    expect(await Promise.race([closed, settle(5_000).then(() => "open")])).toBe("closed");
    await expect(connect({ servers: f.nats.server.url, timeout: 3_000, maxReconnectAttempts: 0, ...natsCredsOptions(file) })).rejects.toThrow(/Authorization|revoked/i);
    expect(await pxctl("creds", "list")).toBe(0);
    expect((JSON.parse(out.pop()!) as { id: string; revokedAtMs: number | null }[]).find((c) => c.id === made.id)?.revokedAtMs).toBeGreaterThan(0);
  });

  it("nats - an expired user is disconnected by nats-server", async () => {
    const short = await mintFile(f.nats.server, "publisher", "alpha", 2);
    const nc = await connect({ servers: f.nats.server.url, maxReconnectAttempts: 0, ...natsCredsOptions(short.path) });
    const closed = await Promise.race([nc.closed().then(() => "closed"), settle(10_000).then(() => "open")]);
    expect(closed).toBe("closed");
  });
});

// gRPC / Flight: `undefined` token = none; alphaReader = weaker role (ingest needs writer); betaWriter = another tenant.
type Token = "none" | "alphaReader" | "betaWriter";
interface RpcSurface {
  readonly surface: string;
  readonly token: Token;
  readonly call: (token: string | undefined) => Promise<CallError | undefined>;
  /** The refusal expected (default UNAUTHENTICATED without a token, PERMISSION_DENIED otherwise). */
  readonly code?: Status;
}
const RPC_SURFACES: readonly RpcSurface[] = [
  { surface: "gRPC Ingest", token: "none", call: async (t) => (await ingest(grpc, t, [{ table: "trades", arrowIpc: tradesIpc(2) }])).error },
  { surface: "gRPC Ingest by a reader", token: "alphaReader", call: async (t) => (await ingest(grpc, t, [{ table: "trades", arrowIpc: tradesIpc(2) }])).error },
  { surface: "gRPC Ingest into another tenant", token: "betaWriter", call: async (t) => (await ingest(grpc, t, [{ table: "alpha.trades", arrowIpc: tradesIpc(2) }])).error },
  { surface: "gRPC Query", token: "none", call: async (t) => (await query(grpc, t, { table: "trades" })).error },
  { surface: "gRPC Query of another tenant", token: "betaWriter", call: async (t) => (await query(grpc, t, { table: "alpha.quotes" })).error },
  { surface: "gRPC Status", token: "none", call: async (t) => (await status(grpc, t)).error },
  { surface: "Flight DoPut", token: "none", call: async (t) => (await bidi(flight, "doPut", flightDataOf(tradesIpc(2), pathDescriptor("trades")), t)).error },
  { surface: "Flight DoPut by a reader", token: "alphaReader", call: async (t) => (await bidi(flight, "doPut", flightDataOf(tradesIpc(2), pathDescriptor("trades")), t)).error },
  { surface: "Flight DoPut into another tenant", token: "betaWriter", call: async (t) => (await bidi(flight, "doPut", flightDataOf(tradesIpc(2), pathDescriptor("alpha", "trades")), t)).error },
  { surface: "Flight DoGet", token: "none", call: async (t) => (await serverStream(flight, "doGet", ticket({ table: "trades" }), t)).error },
  { surface: "Flight DoGet of another tenant", token: "betaWriter", call: async (t) => (await serverStream(flight, "doGet", ticket({ table: "alpha.quotes" }), t)).error },
  { surface: "Flight GetFlightInfo", token: "none", call: async (t) => (await unary(flight, "getFlightInfo", pathDescriptor("trades"), t)).error },
  { surface: "Flight GetSchema", token: "none", call: async (t) => (await unary(flight, "getSchema", pathDescriptor("trades"), t)).error },
  { surface: "Flight ListFlights", token: "none", call: async (t) => (await serverStream(flight, "listFlights", create(CriteriaSchema, {}), t)).error },
  { surface: "Flight SQL statement", token: "none", call: async (t) => (await unary(flight, "getFlightInfo", sqlStatement("SELECT * FROM trades"), t)).error },
  { surface: "Flight SQL statement on another tenant", token: "betaWriter", call: async (t) => (await unary(flight, "getFlightInfo", sqlStatement("SELECT * FROM alpha.quotes"), t)).error },
  { surface: "Flight SQL GetTables ticket", token: "none", call: async (t) => (await serverStream(flight, "doGet", create(TicketSchema, { ticket: packSql(CommandGetTablesSchema, create(CommandGetTablesSchema, { includeSchema: true })) }), t)).error },
  { surface: "Flight SQL CreatePreparedStatement", token: "none", call: async (t) => (await serverStream(flight, "doAction", sqlPrepare("SELECT * FROM trades"), t)).error },
  { surface: "Admin ApplyTenant", token: "none", call: async (t) => (await unary(adminRpc, "applyTenant", create(ApplyTenantRequestSchema, { tenantSpecJson: "{}", dryRun: true }), t)).error },
  { surface: "Admin ApplyTenant by a reader", token: "alphaReader", call: async (t) => (await unary(adminRpc, "applyTenant", create(ApplyTenantRequestSchema, { tenantSpecJson: "{}", dryRun: true }), t)).error },
  { surface: "Admin CreateToken by a writer", token: "betaWriter", call: async (t) => (await unary(adminRpc, "createToken", create(CreateTokenRequestSchema, { role: "admin" }), t)).error },
  { surface: "Admin ListTokens", token: "none", call: async (t) => (await unary(adminRpc, "listTokens", create(ListTokensRequestSchema, {}), t)).error },
  { surface: "Admin RevokeToken by a reader", token: "alphaReader", call: async (t) => (await unary(adminRpc, "revokeToken", create(RevokeTokenRequestSchema, { id: "x" }), t)).error },
  { surface: "Admin CreateCreds", token: "none", call: async (t) => (await unary(adminRpc, "createCreds", create(CreateCredsRequestSchema, { role: "publisher" }), t)).error },
  { surface: "Admin ListCreds by a reader", token: "alphaReader", call: async (t) => (await unary(adminRpc, "listCreds", create(ListCredsRequestSchema, {}), t)).error },
  { surface: "Admin RevokeCreds by a writer", token: "betaWriter", call: async (t) => (await unary(adminRpc, "revokeCreds", create(RevokeCredsRequestSchema, { id: "0123456789ab" }), t)).error },
  { surface: "Flight SQL CreatePreparedStatement on another tenant", token: "betaWriter", call: async (t) => (await serverStream(flight, "doAction", sqlPrepare("SELECT * FROM alpha.trades"), t)).error },
];

function sqlStatement(sql: string) {
  return create(FlightDescriptorSchema, { type: FlightDescriptor_DescriptorType.CMD, cmd: packSql(CommandStatementQuerySchema, create(CommandStatementQuerySchema, { query: sql })) });
}
function sqlPrepare(sql: string) {
  return create(ActionSchema, { type: "CreatePreparedStatement", body: packSql(ActionCreatePreparedStatementRequestSchema, create(ActionCreatePreparedStatementRequestSchema, { query: sql })) });
}

// HTTP: admin routes need an admin token, query and ingest a token of the tenant with the role; health, readiness and metrics stay open (loopback only).
const HTTP_SURFACES: readonly { surface: string; path: string; method: string; token: Token | "alphaWriter"; status: number; body?: string }[] = [
  { surface: "snapshot without a token", path: "/v1/snapshot", method: "POST", token: "none", status: 401 },
  { surface: "snapshot with a reader token", path: "/v1/snapshot", method: "POST", token: "alphaReader", status: 403 },
  { surface: "snapshot with a writer token", path: "/v1/snapshot", method: "POST", token: "alphaWriter", status: 403 },
  { surface: "HTTP query without a token", path: "/v1/query", method: "POST", token: "none", status: 401 },
  { surface: "HTTP query of another tenant", path: "/v1/query", method: "POST", token: "betaWriter", status: 403, body: "SELECT * FROM alpha.trades" },
  { surface: "HTTP ingest without a token", path: "/v1/ingest/trades", method: "POST", token: "none", status: 401 },
  { surface: "HTTP ingest with a reader token", path: "/v1/ingest/trades", method: "POST", token: "alphaReader", status: 403 },
  { surface: "HTTP ingest into another tenant", path: "/v1/ingest/alpha.trades", method: "POST", token: "betaWriter", status: 403 },
];

// Table grants: a writer token of alpha for `quotes` only, on every surface that names `trades`.
const asofOnTrades = { op: "asof", table: "quotes", right: { table: "trades" } };
const GRANT_SURFACES: readonly { surface: string; call: (t: string) => Promise<CallError | undefined> }[] = [
  { surface: "gRPC Ingest into an ungranted table", call: async (t) => (await ingest(grpc, t, [{ table: "trades", arrowIpc: tradesIpc(2) }])).error },
  { surface: "gRPC Query of an ungranted table", call: async (t) => (await query(grpc, t, { table: "trades" })).error },
  { surface: "gRPC Query joining an ungranted table", call: async (t) => (await query(grpc, t, asofOnTrades)).error },
  { surface: "Flight DoPut into an ungranted table", call: async (t) => (await bidi(flight, "doPut", flightDataOf(tradesIpc(2), pathDescriptor("trades")), t)).error },
  { surface: "Flight DoGet of an ungranted table", call: async (t) => (await serverStream(flight, "doGet", ticket({ table: "alpha.trades" }), t)).error },
  { surface: "Flight GetFlightInfo of an ungranted table", call: async (t) => (await unary(flight, "getFlightInfo", pathDescriptor("trades"), t)).error },
  { surface: "Flight GetSchema of an ungranted table", call: async (t) => (await unary(flight, "getSchema", pathDescriptor("trades"), t)).error },
  { surface: "Flight SQL statement on an ungranted table", call: async (t) => (await unary(flight, "getFlightInfo", sqlStatement("SELECT * FROM trades"), t)).error },
  { surface: "Flight SQL prepared statement on an ungranted table", call: async (t) => (await serverStream(flight, "doAction", sqlPrepare("SELECT * FROM trades"), t)).error },
];
const GRANT_HTTP: readonly { surface: string; path: string; body: string }[] = [
  { surface: "HTTP SQL query of an ungranted table", path: "/v1/query", body: "SELECT * FROM trades" },
  { surface: "HTTP JSON query joining an ungranted table", path: "/v1/query", body: JSON.stringify(asofOnTrades) },
  { surface: "HTTP ingest into an ungranted table", path: "/v1/ingest/trades", body: "trades,sym=A price=1,size=1 1700000000000000000\n" },
];

describe("security - table grants", () => {
  it("grants - a token for one table is refused every other table on every surface; the unrestricted token is not (negative control)", async () => {
    const quotesOnly = await f.token("alpha", "writer", undefined, ["quotes"]);
    const unrestricted = await f.token("alpha", "writer");
    const holes: string[] = [];
    const overReach: string[] = [];
    for (const s of GRANT_SURFACES) {
      const e = await s.call(quotesOnly);
      if (e?.code !== Status.PERMISSION_DENIED || !/not granted to this token/.test(e.details)) holes.push(`${s.surface}: ${e ? `${Status[e.code]} ${e.details}` : "allowed"}`);
      const c = await s.call(unrestricted);
      if (c?.code === Status.PERMISSION_DENIED) overReach.push(`${s.surface}: ${c.details}`);
    }
    for (const s of GRANT_HTTP) {
      const send = (t: string) => fetch(`http://127.0.0.1:${f.node.httpPort}${s.path}`, { method: "POST", headers: { authorization: `Bearer ${t}` }, body: s.body });
      const res = await send(quotesOnly);
      const text = await res.text();
      if (res.status !== 403 || !/not granted to this token/.test(text)) holes.push(`${s.surface}: HTTP ${res.status} ${text}`);
      const ok = await send(unrestricted);
      if (ok.status === 403) overReach.push(`${s.surface}: ${await ok.text()}`);
    }
    expect(holes).toEqual([]);
    expect(overReach).toEqual([]);
    // The granted table works, and listings show only it.
    expect((await query(grpc, quotesOnly, { table: "quotes" })).error).toBeUndefined();
    const listed = await serverStream<{ flightDescriptor?: { path: string[] } }>(flight, "listFlights", create(CriteriaSchema, {}), quotesOnly);
    expect(listed.error).toBeUndefined();
    expect(listed.items.map((m) => m.flightDescriptor?.path.join("."))).toEqual(["quotes"]);
  });
});

describe("security - HTTP routes", () => {
  it("http - admin routes refuse callers without an admin token", async () => {
    const tokens: Record<string, string | undefined> = { none: undefined, alphaReader, betaWriter, alphaWriter: await f.token("alpha", "writer") };
    const holes: string[] = [];
    for (const s of HTTP_SURFACES) {
      const t = tokens[s.token];
      const res = await fetch(`http://127.0.0.1:${f.node.httpPort}${s.path}`, { method: s.method, headers: t ? { authorization: `Bearer ${t}` } : {}, ...(s.body === undefined ? {} : { body: s.body }) });
      if (res.status !== s.status) holes.push(`${s.surface}: HTTP ${res.status} ${await res.text()}`);
    }
    expect(holes).toEqual([]);
    const admin = await f.token("alpha", "admin");
    const snap = await fetch(`http://127.0.0.1:${f.node.httpPort}/v1/snapshot`, { method: "POST", headers: { authorization: `Bearer ${admin}` } });
    expect(snap.status).toBe(200);
    // An admin token acts on its own tenant: alpha's shards are snapshotted, beta's (on the same node) are not.
    const snapped = (await snap.json()) as { tenant: string }[];
    expect(snapped.length).toBeGreaterThan(0);
    expect(new Set(snapped.map((s) => s.tenant))).toEqual(new Set(["alpha"]));
    for (const open of ["/healthz", "/readyz", "/metrics"]) expect((await fetch(`http://127.0.0.1:${f.node.httpPort}${open}`)).status, open).toBe(200);
  });
});

describe("security - gRPC and Flight surfaces", () => {
  it("rpc - every call in the table is refused", async () => {
    const tokens: Record<Token, string | undefined> = { none: undefined, alphaReader, betaWriter };
    const holes: string[] = [];
    for (const s of RPC_SURFACES) {
      const e = await s.call(tokens[s.token]);
      const want = s.code ?? (s.token === "none" ? Status.UNAUTHENTICATED : Status.PERMISSION_DENIED);
      if (e?.code !== want) holes.push(`${s.surface} (${s.token}): ${e ? `${Status[e.code]} ${e.details}` : "allowed"}`);
    }
    expect(holes).toEqual([]);
  });
});

/** Opens a duplex call, writes `first`, waits for one reply, then keeps the stream open; resolves when the call fails. */
async function openStream(call: ClientDuplexStream<unknown, unknown>, first: readonly unknown[]): Promise<{ ended: Promise<{ code: Status; atMs: number }> }> {
  const ended = new Promise<{ code: Status; atMs: number }>((resolve) => call.on("error", (e: { code: Status }) => resolve({ code: e.code, atMs: Date.now() })));
  const firstReply = new Promise<void>((resolve) => call.once("data", () => resolve()));
  for (const m of first) call.write(m);
  await firstReply;
  return { ended };
}

describe("security - revocation and expiry end open streams", () => {
  const cases = [
    { name: "gRPC Ingest", open: (t: string) => openStream(grpc.ingest!(md(t)) as ClientDuplexStream<unknown, unknown>, [create(IngestBatchSchema, { table: "trades", arrowIpc: tradesIpc(2, 1_700_200_000_000_000) })]) },
    { name: "Flight DoPut", open: (t: string) => openStream(flight.doPut!(md(t)) as ClientDuplexStream<unknown, unknown>, flightDataOf(tradesIpc(2, 1_700_300_000_000_000), pathDescriptor("trades"))) },
  ];
  for (const c of cases) {
    it(`streams - revoking the token ends an open ${c.name} within 5 s with UNAUTHENTICATED`, async () => {
      const token = await f.token("alpha", "writer");
      const { ended } = await c.open(token);
      const revokedAt = Date.now();
      await revokeToken(f.nats.nc, token);
      const end = await Promise.race([ended, settle(10_000).then(() => undefined)]);
      expect(end?.code).toBe(Status.UNAUTHENTICATED);
      expect(end!.atMs - revokedAt).toBeLessThan(5_000);
    });
  }
  it("streams - negative control: without re-checks (streamReauthMs 1 h) a revoked token keeps its open stream", async () => {
    const g = await apiFixture({ limits: { streamReauthMs: 3_600_000 } });
    try {
      const token = await g.token("alpha", "writer");
      const call = g.proxist().ingest!(md(token)) as ClientDuplexStream<unknown, unknown>;
      const { ended } = await openStream(call, [create(IngestBatchSchema, { table: "trades", arrowIpc: tradesIpc(2, 1_700_400_000_000_000) })]);
      await revokeToken(g.nats.nc, token);
      expect(await Promise.race([ended.then(() => "ended"), settle(5_000).then(() => "still open")])).toBe("still open");
      call.cancel();
    } finally {
      await g.close();
    }
  });

  it("streams - an expiring token ends an open gRPC Ingest with UNAUTHENTICATED", async () => {
    const token = await f.token("alpha", "writer", 2);
    const { ended } = await cases[0]!.open(token);
    const end = await Promise.race([ended, settle(10_000).then(() => undefined)]);
    expect(end?.code).toBe(Status.UNAUTHENTICATED);
  });
});

