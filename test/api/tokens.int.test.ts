// Token administration on a real px_tokens bucket: what is stored (hashes,
// never secrets), listing, revocation, option checks, and a verifier on the
// same bucket seeing a revocation through its watch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kvm } from "@nats-io/kv";
import { KV_TOKENS } from "../../protocols/subjects.js";
import { TokenNotFoundError, TokenOptionsError, TokenVerifier, createToken, listTokens, parseToken, revokeToken } from "../../src/auth/index.js";
import { natsFixture } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";

let f: NatsFixture;
beforeAll(async () => {
  f = await natsFixture();
});
afterAll(async () => {
  await f?.close();
});

describe("tokens in px_tokens", () => {
  it("tokens - the bucket holds a salted hash, never the secret", async () => {
    const token = await createToken(f.nc, { tenant: "alpha", role: "writer", ttlSeconds: 3600, note: "ci" });
    const { id, secret } = parseToken(token)!;
    const kv = await new Kvm(f.nc).open(KV_TOKENS);
    const raw = new TextDecoder().decode((await kv.get(`tok.${id}`))!.value);
    expect(raw).not.toContain(secret);
    expect(JSON.parse(raw)).toMatchObject({ v: 1, id, tenant: "alpha", role: "writer", revokedAtMs: null, note: "ci" });
  });

  it("tokens - listTokens describes tokens per tenant without hashes", async () => {
    await createToken(f.nc, { tenant: "beta", role: "reader" });
    const beta = await listTokens(f.nc, "beta");
    expect(beta).toHaveLength(1);
    expect(beta[0]).toMatchObject({ tenant: "beta", role: "reader", expiresAtMs: null, revokedAtMs: null });
    expect(Object.keys(beta[0]!)).not.toContain("hash");
    expect((await listTokens(f.nc)).length).toBeGreaterThanOrEqual(2);
  });

  it("tokens - revokeToken marks the record and a verifier refuses it at once", async () => {
    const verifier = await TokenVerifier.open(f.nc, { cacheTtlMs: 60_000 });
    try {
      const token = await createToken(f.nc, { tenant: "alpha", role: "admin" });
      expect((await verifier.verify(token)).role).toBe("admin");
      await revokeToken(f.nc, `px_${parseToken(token)!.id}`);
      await expect.poll(() => verifier.verify(token).then(() => "ok", (e: Error) => e.message), { timeout: 3_000 }).toMatch(/revoked/);
      const listed = (await listTokens(f.nc, "alpha")).find((t) => t.id === parseToken(token)!.id)!;
      expect(listed.revokedAtMs).toBeGreaterThan(0);
    } finally {
      verifier.close();
    }
  });

  it("tokens - bad options and unknown ids are typed errors", async () => {
    await expect(createToken(f.nc, { tenant: "Not A Tenant", role: "reader" })).rejects.toThrowError(TokenOptionsError);
    await expect(createToken(f.nc, { tenant: "alpha", role: "root" as "admin" })).rejects.toThrowError(/reader, writer or admin/);
    await expect(createToken(f.nc, { tenant: "alpha", role: "reader", ttlSeconds: 0 })).rejects.toThrowError(/ttlSeconds/);
    await expect(revokeToken(f.nc, "px_0123456789abcdef0123")).rejects.toThrowError(TokenNotFoundError);
    await expect(revokeToken(f.nc, "nonsense")).rejects.toThrowError(TokenNotFoundError);
  });
});
