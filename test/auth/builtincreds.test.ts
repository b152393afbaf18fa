// The built-in service and admin credentials in an auth directory follow the
// roles' permissions: a file minted by an earlier release (the service role
// was unrestricted then) is minted again when the directory is loaded.
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser, decode, encodeUser, fmtCreds } from "@nats-io/jwt";
import type { User } from "@nats-io/jwt";
import { permissionsOf } from "../../protocols/index.js";
import { credsHasRolePermissions, mintUser, newNatsIdentity } from "../../src/auth/index.js";
import { loadOrCreateNatsAuth } from "../../src/runtime/servers/natsauth.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const userOf = (creds: string): User => decode<User>(/-----BEGIN NATS USER JWT-----\s*(\S+)/.exec(creds)![1]!).nats as User;

describe("auth - built-in credentials", () => {
  it("builtin - a freshly minted service or admin file has its role's permissions; an unrestricted one or garbage has not", async () => {
    const id = newNatsIdentity();
    expect(credsHasRolePermissions((await mintUser(id, { role: "service" })).creds, "service")).toBe(true);
    expect(credsHasRolePermissions((await mintUser(id, { role: "admin" })).creds, "admin")).toBe(true);
    expect(credsHasRolePermissions((await mintUser(id, { role: "service" })).creds, "admin")).toBe(false);
    const ukp = createUser();
    const open = new TextDecoder().decode(fmtCreds(await encodeUser("old", ukp, id.accountSeed), ukp));
    expect(credsHasRolePermissions(open, "service")).toBe(false);
    expect(credsHasRolePermissions("not a creds file", "service")).toBe(false);
  });

  it("builtin - loading an auth dir mints a stale service.creds again (0600) and keeps a current admin.creds as it is", async () => {
    const dir = mkdtempSync(join(tmpdir(), "px-auth-"));
    dirs.push(dir);
    const first = await loadOrCreateNatsAuth(dir);
    const adminBefore = readFileSync(first.credsPath("admin"), "utf8");
    // What an earlier release wrote: a service user without permissions.
    const ukp = createUser();
    writeFileSync(first.credsPath("service"), new TextDecoder().decode(fmtCreds(await encodeUser("service.old", ukp, first.identity.accountSeed), ukp)), { mode: 0o644 });
    const again = await loadOrCreateNatsAuth(dir);
    const service = readFileSync(again.credsPath("service"), "utf8");
    expect(userOf(service).pub?.allow).toEqual(permissionsOf({ role: "service" }).pub.allow);
    expect(userOf(service).sub?.allow).toEqual(permissionsOf({ role: "service" }).sub.allow);
    expect(statSync(again.credsPath("service")).mode & 0o777).toBe(0o600);
    expect(readFileSync(again.credsPath("admin"), "utf8")).toBe(adminBefore);
  });
});
