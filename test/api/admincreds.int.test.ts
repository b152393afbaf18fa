// proxist.v1.ProxistAdmin's NATS credentials calls against a real node and
// nats-server: an admin token mints its tenant's publisher credentials (the
// .creds text only in the reply), they connect and ingest, ListCreds shows them
// without the seed, RevokeCreds makes nats-server disconnect them. Refused by
// name: a weaker role, service/admin credentials, grants wider than the
// admin's own, another tenant's credentials (NOT_FOUND), and any call on an
// API without the NATS identity (FAILED_PRECONDITION).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { credentials } from "@grpc/grpc-js";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { CreateCredsRequestSchema, ListCredsRequestSchema, RevokeCredsRequestSchema } from "../../protocols/gen/proxist/v1/admin_pb.js";
import { KV_CREDS, tenantInboxPrefix } from "../../protocols/index.js";
import { AdminClient } from "../../src/api/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { startNodeApi } from "../../src/node/api.js";
import { startNode } from "../../src/node/node.js";
import { revokeNatsUser } from "../../src/runtime/natsrevoke.js";
import { loadNatsAuth } from "../../src/runtime/servers/natsauth.js";
import { Status, apiFixture, tableOf, trades, unary } from "./fixture.js";
import type { ApiFixture, ServiceClient } from "./fixture.js";

let f: ApiFixture;
let admin: ServiceClient;
let alphaAdmin = "";
let betaAdmin = "";
const conns: NatsConnection[] = [];
/** What the API logged: a seed must never be in it. */
const apiLog: string[] = [];
beforeAll(async () => {
  f = await apiFixture({ natsIdentity: true, log: (line) => apiLog.push(line) });
  admin = new AdminClient(f.address, credentials.createInsecure()) as unknown as ServiceClient;
  alphaAdmin = await f.token("alpha", "admin");
  betaAdmin = await f.token("beta", "admin");
});
afterAll(async () => {
  for (const nc of conns) await nc.close().catch(() => {});
  admin?.close();
  await f?.close();
});

interface Minted {
  creds: string;
  id: string;
  inboxPrefix: string;
  expiresAtMs: bigint;
  feeds: string[];
}
interface Listed {
  creds: { id: string; role: string; publicKey: string; note: string; tables: string[]; revokedAtMs: bigint; expiresAtMs: bigint }[];
}
const mint = (o: { role: string; ttlSeconds?: bigint; note?: string; tables?: string[] }) => create(CreateCredsRequestSchema, { ttlSeconds: 0n, note: "", tables: [], ...o });
const revoke = (id: string) => create(RevokeCredsRequestSchema, { id });
const list = () => create(ListCredsRequestSchema, {});
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SEED = /SU[A-Z0-9]{56}/;
const bigints = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? String(x) : x));

/** Connects as a client would: the reply's .creds text and inbox prefix. */
async function connectWith(m: Minted): Promise<NatsConnection> {
  const nc = await connect({ servers: f.nats.server.url, maxReconnectAttempts: 0, timeout: 3_000, authenticator: credsAuthenticator(new TextEncoder().encode(m.creds)), inboxPrefix: m.inboxPrefix });
  conns.push(nc);
  return nc;
}

async function mintOk(token: string, o: Parameters<typeof mint>[0]): Promise<Minted> {
  const r = await unary<Minted>(admin, "createCreds", mint(o), token);
  expect(r.error).toBeUndefined();
  return r.reply!;
}

describe("admin rpcs - NATS credentials", () => {
  it("creds - an admin mints publisher creds: they ingest, ListCreds shows them without the seed, RevokeCreds disconnects them (and only them)", async () => {
    const before = Date.now();
    const made = await mintOk(alphaAdmin, { role: "publisher", ttlSeconds: 600n, note: "grpc pub" });
    expect(made.creds).toMatch(SEED);
    expect(made.creds).toContain(made.inboxPrefix);
    expect(made.inboxPrefix).toBe(tenantInboxPrefix("alpha", made.id));
    expect(Number(made.expiresAtMs)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 600_000);
    expect(Number(made.expiresAtMs)).toBeLessThanOrEqual(Date.now() + 601_000);
    const seed = SEED.exec(made.creds)![0];
    const nc = await connectWith(made);
    const pub = new TickPublisher(nc, { tenant: "alpha", spec: tableOf("alpha", "trades"), timeoutMs: 10_000 });
    expect((await pub.publish(trades(5, 1_700_300_000_000_000))).rows).toBe(5);
    // A second credential of alpha: the revocation below must leave it connected (control).
    const other = await connectWith(await mintOk(alphaAdmin, { role: "publisher" }));

    const listed = await unary<Listed>(admin, "listCreds", list(), alphaAdmin);
    expect(listed.error).toBeUndefined();
    expect(listed.reply!.creds.find((c) => c.id === made.id)).toMatchObject({ role: "publisher", note: "grpc pub", tables: [], revokedAtMs: 0n, expiresAtMs: made.expiresAtMs });
    expect(bigints(listed.reply)).not.toContain(seed);
    // KV px_creds keeps the public key only.
    const kv = await new Kvm(f.nats.nc).open(KV_CREDS);
    const stored = (await kv.get(`c.${made.id}`))!.string();
    expect(stored).toContain(listed.reply!.creds.find((c) => c.id === made.id)!.publicKey);
    expect(stored).not.toContain(seed);
    // Another tenant's admin neither sees them nor can revoke them: NOT_FOUND, worded as for an id that does not exist.
    const betaList = await unary<Listed>(admin, "listCreds", list(), betaAdmin);
    expect(betaList.reply!.creds.map((c) => c.id)).not.toContain(made.id);
    const foreign = await unary(admin, "revokeCreds", revoke(made.id), betaAdmin);
    const missing = await unary(admin, "revokeCreds", revoke("0123456789ab"), betaAdmin);
    expect([foreign.error?.code, missing.error?.code]).toEqual([Status.NOT_FOUND, Status.NOT_FOUND]);
    expect(foreign.error!.details.replace(made.id, "ID")).toBe(missing.error!.details.replace("0123456789ab", "ID"));
    expect(nc.isClosed()).toBe(false);

    const closed = nc.closed().then(() => "closed");
    expect((await unary(admin, "revokeCreds", revoke(made.id), alphaAdmin)).error).toBeUndefined();
    expect(await Promise.race([closed, settle(5_000).then(() => "open")])).toBe("closed");
    await expect(connectWith(made)).rejects.toThrow(/Authorization|revoked/i);
    expect(other.isClosed()).toBe(false);
    expect((await new TickPublisher(other, { tenant: "alpha", spec: tableOf("alpha", "trades"), timeoutMs: 10_000 }).publish(trades(3, 1_700_300_000_100_000))).rows).toBe(3);
    const after = await unary<Listed>(admin, "listCreds", list(), alphaAdmin);
    expect(after.reply!.creds.find((c) => c.id === made.id)!.revokedAtMs).toBeGreaterThan(0n);
    expect(apiLog.join("\n")).not.toContain(seed);
  });

  it("creds - a table-granted admin mints only within its grants; those creds ingest quotes and NATS refuses their trades", async () => {
    const narrowAdmin = await f.token("alpha", "admin", undefined, ["quotes"]);
    for (const tables of [[], ["trades"], ["quotes", "trades"]]) {
      const r = await unary(admin, "createCreds", mint({ role: "publisher", tables }), narrowAdmin);
      expect(r.error?.code, tables.join(",")).toBe(Status.PERMISSION_DENIED);
      expect(r.error?.details).toMatch(/may use only tables quotes; credentials it creates must name tables among them/);
    }
    const made = await mintOk(narrowAdmin, { role: "publisher", tables: ["quotes"] });
    const nc = await connectWith(made);
    const quote = { rows: 1, symbols: ["AAPL"], symbolIndex: Uint32Array.of(0), ts: Float64Array.of(1_700_300_000_000_000), values: [Float64Array.of(1), Float64Array.of(1.5)] };
    expect((await new TickPublisher(nc, { tenant: "alpha", spec: tableOf("alpha", "quotes"), timeoutMs: 10_000 }).publish(quote)).rows).toBe(1);
    await expect(new TickPublisher(nc, { tenant: "alpha", spec: tableOf("alpha", "trades"), timeoutMs: 2_000, maxAttempts: 1 }).publish(trades(2, 1_700_300_000_000_000))).rejects.toThrow();
    const listed = await unary<Listed>(admin, "listCreds", list(), alphaAdmin);
    expect(listed.reply!.creds.find((c) => c.id === made.id)!.tables).toEqual(["quotes"]);
    // A subscriber's grants are resolved against the spec (SPEC has no feeds: none to consume yet).
    expect((await mintOk(alphaAdmin, { role: "subscriber", tables: ["quotes"] })).feeds).toEqual([]);
  });

  it("creds - refusals: no token, a reader or writer, service and admin credentials (pxctl's), an unknown role, a bad table", async () => {
    const reader = await f.token("alpha", "reader");
    const writer = await f.token("alpha", "writer");
    const cases: [string, string | undefined, string, unknown, Status, RegExp][] = [
      ["no token", undefined, "createCreds", mint({ role: "publisher" }), Status.UNAUTHENTICATED, /no token/],
      ["a reader creates", reader, "createCreds", mint({ role: "publisher" }), Status.PERMISSION_DENIED, /admin/],
      ["a writer creates", writer, "createCreds", mint({ role: "publisher" }), Status.PERMISSION_DENIED, /admin/],
      ["a reader lists", reader, "listCreds", list(), Status.PERMISSION_DENIED, /admin/],
      ["a writer revokes", writer, "revokeCreds", revoke("0123456789ab"), Status.PERMISSION_DENIED, /admin/],
      ["service creds", alphaAdmin, "createCreds", mint({ role: "service" }), Status.PERMISSION_DENIED, /service credentials reach every tenant.*pxctl creds create --role service/],
      ["admin creds", alphaAdmin, "createCreds", mint({ role: "admin" }), Status.PERMISSION_DENIED, /pxctl creds create --role admin/],
      ["an unknown role", alphaAdmin, "createCreds", mint({ role: "root" }), Status.INVALID_ARGUMENT, /role "root" is unknown; use publisher or subscriber/],
      ["a bad table name", alphaAdmin, "createCreds", mint({ role: "publisher", tables: ["Bad-Name"] }), Status.INVALID_ARGUMENT, /"Bad-Name" is not a table name/],
      ["a subscriber's unknown table", alphaAdmin, "createCreds", mint({ role: "subscriber", tables: ["nosuch"] }), Status.INVALID_ARGUMENT, /tenant alpha has no table nosuch/],
      ["not an id", alphaAdmin, "revokeCreds", revoke("../x"), Status.NOT_FOUND, /not a credentials id; ListCreds shows the ids/],
    ];
    for (const [what, token, method, req, code, message] of cases) {
      const r = await unary(admin, method, req, token);
      expect(r.error?.code, what).toBe(code);
      expect(r.error?.details, what).toMatch(message);
    }
  });

  it("creds - an API without the NATS identity answers FAILED_PRECONDITION naming PX_AUTH_DIR and pxctl (after the role check)", async () => {
    const bare = await startNodeApi({ nc: f.node.nc, node: f.node, catalog: () => f.node.catalog(), shards: f.node.shards, clickhouse: undefined, grpcPort: 0, host: "127.0.0.1", replicas: 1, log: () => {} });
    const client = new AdminClient(`127.0.0.1:${bare.server.port}`, credentials.createInsecure()) as unknown as ServiceClient;
    try {
      for (const [method, req] of [["createCreds", mint({ role: "publisher" })], ["listCreds", list()], ["revokeCreds", revoke("0123456789ab")]] as const) {
        const r = await unary(client, method, req, alphaAdmin);
        expect(r.error?.code, method).toBe(Status.FAILED_PRECONDITION);
        expect(r.error?.details, method).toMatch(/start the node with PX_AUTH_DIR=<dir>.*or use pxctl creds create\|list\|revoke/);
      }
      expect((await unary(client, "createCreds", mint({ role: "publisher" }), await f.token("alpha", "writer"))).error?.code).toBe(Status.PERMISSION_DENIED);
    } finally {
      client.close();
      await bare.stop();
    }
  });

  it("creds - a node given the auth directory serves CreateCreds; PX_AUTH_DIR without an identity stops the node at start", async () => {
    const node = await startNode({ natsUrl: f.nats.server.url, shards: "none", grpcPort: 0, authDir: f.nats.server.auth!.dir, log: () => {} });
    const client = new AdminClient(`127.0.0.1:${node.grpcPort!}`, credentials.createInsecure()) as unknown as ServiceClient;
    try {
      const r = await unary<Minted>(client, "createCreds", mint({ role: "publisher" }), alphaAdmin);
      expect(r.error).toBeUndefined();
      const nc = await connectWith(r.reply!);
      expect(nc.isClosed()).toBe(false);
    } finally {
      client.close();
      await node.stop();
    }
    const empty = mkdtempSync(join(tmpdir(), "px-noauth-"));
    process.env.PX_AUTH_DIR = empty;
    try {
      await expect(startNode({ natsUrl: f.nats.server.url, shards: "none", grpcPort: 0, log: () => {} })).rejects.toThrow(/PX_AUTH_DIR=.*px-noauth-.*: no identity\.json there; give the deployment's auth directory/);
    } finally {
      delete process.env.PX_AUTH_DIR;
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("creds - a revocation pushed from another copy of the auth directory keeps the ones made here; negative control: signed from that copy's file alone it lifts them", async () => {
    // Two other copies (pxctl elsewhere, another node's PX_AUTH_DIR), taken before the revocation below.
    const copies = [0, 1].map(() => {
      const dir = mkdtempSync(join(tmpdir(), "px-authcopy-"));
      cpSync(f.nats.server.auth!.dir, dir, { recursive: true });
      return dir;
    });
    try {
      const [merged, fileOnly] = await Promise.all(copies.map((d) => loadNatsAuth(d)));
      const a = await mintOk(alphaAdmin, { role: "publisher" });
      const b = await mintOk(alphaAdmin, { role: "publisher" });
      const listed = (await unary<Listed>(admin, "listCreds", list(), alphaAdmin)).reply!.creds;
      const keyOf = (id: string): string => listed.find((c) => c.id === id)!.publicKey;
      expect((await unary(admin, "revokeCreds", revoke(a.id), alphaAdmin)).error).toBeUndefined();
      await expect(connectWith(a)).rejects.toThrow(/Authorization|revoked/i);

      // The copy's account.jwt lacks a's revocation; merged with the server's, the JWT it pushes keeps it.
      await revokeNatsUser([f.nats.server.url], merged!, keyOf(b.id));
      await expect(connectWith(b)).rejects.toThrow(/Authorization|revoked/i);
      await expect(connectWith(a)).rejects.toThrow(/Authorization|revoked/i);

      // Control: signed from the other copy's file alone, a gets back in.
      await revokeNatsUser([f.nats.server.url], fileOnly!, keyOf(b.id), { unsafeFileOnly: true });
      expect((await connectWith(a)).isClosed()).toBe(false);
      // Put a's revocation back for whatever runs after.
      expect((await unary(admin, "revokeCreds", revoke(a.id), alphaAdmin)).error).toBeUndefined();
      await expect(connectWith(a)).rejects.toThrow(/Authorization|revoked/i);
    } finally {
      for (const d of copies) rmSync(d, { recursive: true, force: true });
    }
  });
});
