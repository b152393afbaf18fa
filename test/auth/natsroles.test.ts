// The NATS role model and credential minting, without a server: what each role
// may publish and subscribe to, and what a minted user JWT carries.
import { describe, expect, it } from "vitest";
import { decode } from "@nats-io/jwt";
import type { User } from "@nats-io/jwt";
import { feedsWithin, permissionsOf, tablesOfFeed, tenantInboxPrefix } from "../../protocols/index.js";
import { accountJwt, accountPublicKey, inboxPrefixOfCreds, mintUser, newNatsIdentity, revocationsOf } from "../../src/auth/index.js";

describe("auth - NATS roles", () => {
  it("natsroles - a publisher may publish only its tenant's ingest and read only its own inbox and ingest errors", () => {
    const p = permissionsOf({ role: "publisher", tenant: "acme", credId: "abc" })!;
    expect(p.pub.allow).toEqual(["px.acme.ingest.>"]);
    expect(p.sub.allow).toEqual([`${tenantInboxPrefix("acme", "abc")}.>`, "px.acme.ingest_errors.>"]);
  });

  it("natsroles - a publisher with table grants may publish those tables' ingest and the status request only", () => {
    const p = permissionsOf({ role: "publisher", tenant: "acme", credId: "abc", tables: ["quotes"] })!;
    expect(p.pub.allow).toEqual(["px.acme.ingest.quotes", "px.acme.ingest._status"]);
    expect(p.sub.allow).toEqual([`${tenantInboxPrefix("acme", "abc")}.>`, "px.acme.ingest_errors.quotes"]);
  });

  it("natsroles - a subscriber with table grants may create consumers filtered on its feeds only, and read those feeds and its tables' watermarks", () => {
    const p = permissionsOf({ role: "subscriber", tenant: "acme", credId: "abc", tables: ["quotes"], feeds: ["q1"] })!;
    expect(p.pub.allow.filter((s) => s.includes("CONSUMER.CREATE"))).toEqual(["$JS.API.CONSUMER.CREATE.PX_FEED_acme.*.px.acme.feed.q1"]);
    expect(p.sub.allow).toEqual([`${tenantInboxPrefix("acme", "abc")}.>`, "px.acme.feed.q1", "px.acme.wm.quotes.*"]);
    // Feed grants only under table grants.
    expect(() => permissionsOf({ role: "subscriber", tenant: "acme", credId: "abc", feeds: ["q1"] })).toThrow(/come with table grants/);
  });

  it("natsroles - the feeds within a table grant: those reading only granted tables (an as-of feed reads two)", () => {
    const feeds = [
      { name: "t", query: { op: "lastBy", table: "trades" } },
      { name: "q", query: { op: "rolling", table: "quotes" } },
      { name: "tq", query: { op: "asof", table: "trades", right: { table: "quotes" } } },
    ];
    expect(feedsWithin(feeds, ["quotes"])).toEqual(["q"]);
    expect(feedsWithin(feeds, ["quotes", "trades"])).toEqual(["q", "t", "tq"]);
    expect(tablesOfFeed(feeds[2]!.query)).toEqual(["trades", "quotes"]);
  });

  it("natsroles - a subscriber reaches its own feed stream and subjects only", () => {
    const p = permissionsOf({ role: "subscriber", tenant: "acme", credId: "abc" })!;
    expect(p.pub.allow.every((s) => s.includes("PX_FEED_acme"))).toBe(true);
    expect(p.sub.allow).toContain("px.acme.feed.>");
    expect([...p.pub.allow, ...p.sub.allow].some((s) => s.includes("wal") || s.includes("ctl") || s.includes("$KV"))).toBe(false);
  });

  it("natsroles - admin gets control and KV, no tenant data subjects; tenant roles need a tenant", () => {
    const a = permissionsOf({ role: "admin" })!;
    expect(a.pub.allow).toContain("px.ctl.>");
    expect(a.sub.allow).toEqual(["_INBOX.>"]);
    // pxctl's own buckets and the event stream, not the JetStream API at large (no WAL, no stream deletion).
    expect(a.pub.allow).toContain("$KV.px_tokens.>");
    expect(a.pub.allow).not.toContain("$JS.API.>");
    expect(a.pub.allow.some((s) => s.includes("PX_WAL") || s.includes("STREAM.DELETE") || s.includes("STREAM.PURGE") || s.includes("px_assign"))).toBe(false);
    expect(() => permissionsOf({ role: "publisher" })).toThrow(/needs a tenant/);
  });

  it("natsroles - the service role replies to tenants' inboxes but cannot read them, and stays inside Proxist's namespaces", () => {
    const s = permissionsOf({ role: "service" });
    expect(s.pub.allow).toContain("_px_inbox.>");
    expect(s.sub.allow.some((x) => x.startsWith("_px_inbox") || x === ">" || x.startsWith("$"))).toBe(false);
    expect([...s.pub.allow, ...s.sub.allow].every((x) => /^(px|\$JS|\$KV|\$O|_INBOX|_px_inbox)\./.test(x))).toBe(true);
    expect(() => permissionsOf({ role: "service", tables: ["t"] })).toThrow(/table grants/);
  });
});

describe("auth - minting NATS credentials", () => {
  it("mint - a publisher JWT is signed by the account, carries the role's permissions and the expiry", async () => {
    const id = newNatsIdentity();
    const m = await mintUser(id, { role: "publisher", tenant: "acme", ttlSeconds: 60, nowMs: 1_000_000 });
    const jwt = /-----BEGIN NATS USER JWT-----\s*(\S+)/.exec(m.creds)![1]!;
    const claims = decode<User>(jwt);
    expect(claims.iss).toBe(accountPublicKey(id));
    expect(claims.sub).toBe(m.publicKey);
    expect(claims.exp).toBe(1_000 + 60);
    expect(claims.nats.pub?.allow).toEqual(["px.acme.ingest.>"]);
    expect(m.expiresAtMs).toBe(1_060_000);
    expect(inboxPrefixOfCreds(m.creds)).toBe(tenantInboxPrefix("acme", m.credId));
  });

  it("mint - revocations travel in the account JWT", async () => {
    const id = newNatsIdentity();
    expect(revocationsOf(await accountJwt(id, { UABC: 42 }))).toEqual({ UABC: 42 });
  });
});

describe("pxctl - creds arguments", () => {
  it("creds - create needs a tenant for tenant roles and refuses one for service/admin; --creds and PX_AUTH_DIR are read", async () => {
    const { parsePxctlArgs } = await import("../../src/cli/args.js");
    const inv = parsePxctlArgs(["creds", "create", "--tenant", "acme", "--role", "publisher", "--ttl", "30d", "--creds", "a.creds"], { PX_AUTH_DIR: "/x" });
    expect(inv.command).toEqual({ kind: "creds.create", tenant: "acme", role: "publisher", ttlSeconds: 30 * 86_400, out: undefined, note: undefined });
    expect([inv.natsCreds, inv.authDir]).toEqual(["a.creds", "/x"]);
    expect(() => parsePxctlArgs(["creds", "create", "--role", "publisher"])).toThrow(/give --tenant/);
    expect(() => parsePxctlArgs(["creds", "create", "--role", "admin", "--tenant", "acme"])).toThrow(/not scoped to a tenant/);
    expect(() => parsePxctlArgs(["creds", "create", "--tenant", "acme", "--role", "root"])).toThrow(/root is not one of service, admin, publisher, subscriber/);
    expect(parsePxctlArgs(["creds", "revoke", "abc"]).command).toEqual({ kind: "creds.revoke", id: "abc" });
  });
});
