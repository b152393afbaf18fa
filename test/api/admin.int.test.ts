// proxist.v1.ProxistAdmin against a real node: an admin token applies its
// tenant's spec (dry run, then for real; another tenant's spec stays as it
// is), creates, lists and revokes its tenant's tokens; everything else is
// refused by name: no token, a weaker role, another tenant's spec or token,
// a grant wider than the admin's own, a bad spec.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { credentials } from "@grpc/grpc-js";
import { ApplyTenantRequestSchema, CreateTokenRequestSchema, ListTokensRequestSchema, RevokeTokenRequestSchema } from "../../protocols/gen/proxist/v1/admin_pb.js";
import type { ServiceClient } from "@grpc/grpc-js/build/src/make-client.js";
import { AdminClient } from "../../src/api/index.js";
import { Status, apiFixture, query, unary } from "./fixture.js";
import type { ApiFixture } from "./fixture.js";

let f: ApiFixture;
let admin: ServiceClient;
let alphaAdmin = "";
beforeAll(async () => {
  f = await apiFixture();
  admin = new AdminClient(f.address, credentials.createInsecure()) as unknown as ServiceClient;
  alphaAdmin = await f.token("alpha", "admin");
});
afterAll(async () => {
  admin?.close();
  await f?.close();
});

const apply = (o: { tenantSpecJson: string; dryRun: boolean }) => create(ApplyTenantRequestSchema, o);
const mint = (o: { role: string; ttlSeconds: bigint; note: string; tables: string[] }) => create(CreateTokenRequestSchema, o);
const revoke = (o: { id: string }) => create(RevokeTokenRequestSchema, o);

interface ApplyReply {
  applied: boolean;
  diffJson: string;
  revision: bigint;
}
const bars = { tables: [
  { name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] },
  { name: "quotes", columns: [{ name: "bid", type: "float64" }, { name: "ask", type: "float64" }] },
  { name: "bars", columns: [{ name: "close", type: "float64" }] },
] };

describe("admin rpcs", () => {
  it("admin - ApplyTenant: a dry run shows the diff, the apply adds the table to the caller's tenant only", async () => {
    const dry = await unary<ApplyReply>(admin, "applyTenant", apply({ tenantSpecJson: JSON.stringify(bars), dryRun: true }), alphaAdmin);
    expect(dry.error).toBeUndefined();
    expect(dry.reply!.applied).toBe(false);
    expect(dry.reply!.diffJson).toMatch(/"table\.add".*"bars"/);
    const done = await unary<ApplyReply>(admin, "applyTenant", apply({ tenantSpecJson: JSON.stringify(bars), dryRun: false }), alphaAdmin);
    expect(done.error).toBeUndefined();
    expect(done.reply!.applied).toBe(true);
    expect(done.reply!.revision).toBeGreaterThan(0n);
    const deadline = Date.now() + 20_000;
    while (!f.node.catalog().get("alpha")?.has("bars")) {
      if (Date.now() > deadline) throw new Error("alpha.bars was not served");
      await new Promise((r) => setTimeout(r, 50));
    }
    expect([...f.node.catalog().get("beta")!.keys()].sort()).toEqual(["fx", "trades"]);
  });

  it("admin - refusals: no token, a writer, another tenant's spec, bad JSON, a spec the rules refuse", async () => {
    const writer = await f.token("alpha", "writer");
    const cases: [string, string | undefined, string, Status, RegExp][] = [
      ["no token", undefined, JSON.stringify(bars), Status.UNAUTHENTICATED, /no token/],
      ["a writer", writer, JSON.stringify(bars), Status.PERMISSION_DENIED, /may not manage the cluster; ask an admin for a admin token|admin/],
      ["another tenant's spec", alphaAdmin, JSON.stringify({ ...bars, name: "beta" }), Status.PERMISSION_DENIED, /names tenant beta; this admin token manages tenant alpha only/],
      ["bad JSON", alphaAdmin, "{tables", Status.INVALID_ARGUMENT, /not valid JSON/],
      ["a bad column type", alphaAdmin, JSON.stringify({ tables: [{ name: "trades", columns: [{ name: "price", type: "decimal" }] }] }), Status.INVALID_ARGUMENT, /decimal|type/],
    ];
    for (const [what, token, json, code, message] of cases) {
      const r = await unary(admin, "applyTenant", apply({ tenantSpecJson: json, dryRun: true }), token);
      expect(r.error?.code, what).toBe(code);
      expect(r.error?.details, what).toMatch(message);
    }
  });

  it("admin - tokens: create (with grants), list, revoke within the tenant; another tenant's token is not found; grants never widen", async () => {
    const made = await unary<{ token: string; id: string }>(admin, "createToken", mint({ role: "reader", ttlSeconds: 600n, note: "grpc admin", tables: ["quotes"] }), alphaAdmin);
    expect(made.error).toBeUndefined();
    const reader = made.reply!.token;
    expect((await query(f.proxist(), reader, { table: "quotes" })).error).toBeUndefined();
    expect((await query(f.proxist(), reader, { table: "trades" })).error?.code).toBe(Status.PERMISSION_DENIED);

    const listed = await unary<{ tokens: { id: string; role: string; note: string; tables: string[] }[] }>(admin, "listTokens", create(ListTokensRequestSchema, {}), alphaAdmin);
    expect(listed.error).toBeUndefined();
    expect(listed.reply!.tokens.find((t) => t.id === made.reply!.id)).toMatchObject({ role: "reader", note: "grpc admin", tables: ["quotes"] });
    expect(JSON.stringify(listed.reply, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toContain(reader.split(".")[1]!);

    const beta = await f.token("beta", "reader");
    const other = await unary(admin, "revokeToken", revoke({ id: beta }), alphaAdmin);
    expect(other.error?.code).toBe(Status.NOT_FOUND);
    expect(other.error?.details).not.toContain(beta.split(".")[1]!);
    expect((await query(f.proxist(), beta, { table: "trades" })).error).toBeUndefined();

    expect((await unary(admin, "revokeToken", revoke({ id: made.reply!.id }), alphaAdmin)).error).toBeUndefined();
    const deadline = Date.now() + 10_000;
    while ((await query(f.proxist(), reader, { table: "quotes" })).error?.code !== Status.UNAUTHENTICATED) {
      if (Date.now() > deadline) throw new Error("the revoked token still works after 10 s");
      await new Promise((r) => setTimeout(r, 200));
    }

    const narrowAdmin = await f.token("alpha", "admin", undefined, ["quotes"]);
    const wider = await unary(admin, "createToken", mint({ role: "reader", ttlSeconds: 0n, note: "", tables: [] }), narrowAdmin);
    expect(wider.error?.code).toBe(Status.PERMISSION_DENIED);
    expect(wider.error?.details).toMatch(/may use only tables quotes/);
    const badRole = await unary(admin, "createToken", mint({ role: "root", ttlSeconds: 0n, note: "", tables: [] }), alphaAdmin);
    expect(badRole.error?.code).toBe(Status.INVALID_ARGUMENT);
  });
});
