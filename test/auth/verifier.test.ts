import { describe, expect, it } from "vitest";
import { AuthError, TokenStoreUnavailableError, TokenVerifier, formatToken } from "../../src/auth/index.js";
import type { TokenRecord, TokenSource } from "../../src/auth/index.js";
import { makeRecord, newSecret, newTokenId } from "../../src/auth/token.js";

/** In-memory px_tokens with a watch, and a read counter. */
function memorySource() {
  const records = new Map<string, TokenRecord>();
  const watchers = new Set<(id: string) => void>();
  let reads = 0;
  let failing = false;
  const source: TokenSource = {
    get: async (id) => {
      reads++;
      if (failing) throw new Error("kv down");
      return records.get(id);
    },
    watch: async (onChange) => {
      watchers.add(onChange);
      return () => watchers.delete(onChange);
    },
  };
  return {
    source,
    reads: () => reads,
    fail: (f: boolean) => (failing = f),
    put: (r: TokenRecord, notify = true) => {
      records.set(r.id, r);
      if (notify) watchers.forEach((w) => w(r.id));
    },
  };
}

function issue(mem: ReturnType<typeof memorySource>, nowMs = 0) {
  const id = newTokenId();
  const secret = newSecret();
  const record = makeRecord({ id, secret, tenant: "alpha", role: "reader", nowMs, ttlSeconds: undefined, note: "" });
  mem.put(record);
  return { token: formatToken(id, secret), record };
}

describe("token verifier", () => {
  it("verifier - caches records: repeated calls read the store once", async () => {
    const mem = memorySource();
    const v = new TokenVerifier(mem.source);
    await v.start();
    const { token } = issue(mem);
    for (let i = 0; i < 5; i++) expect((await v.verify(token)).tenant).toBe("alpha");
    expect(mem.reads()).toBe(1);
  });

  it("verifier - a revocation seen by the watch takes effect on the next call", async () => {
    const mem = memorySource();
    const v = new TokenVerifier(mem.source, { cacheTtlMs: 60_000 });
    await v.start();
    const { token, record } = issue(mem);
    await v.verify(token);
    mem.put({ ...record, revokedAtMs: 1 });
    await expect(v.verify(token)).rejects.toThrowError(/revoked/);
  });

  it("verifier - without a watch event, the cache age bounds staleness", async () => {
    const mem = memorySource();
    let now = 0;
    const v = new TokenVerifier(mem.source, { cacheTtlMs: 3_000, now: () => now });
    const { token, record } = issue(mem);
    await v.verify(token);
    mem.put({ ...record, revokedAtMs: 1 }, false);
    now = 2_000;
    await expect(v.verify(token)).resolves.toBeDefined();
    now = 3_001;
    await expect(v.verify(token)).rejects.toThrowError(AuthError);
  });

  it("verifier - unknown ids are remembered briefly, then re-read", async () => {
    const mem = memorySource();
    let now = 0;
    const v = new TokenVerifier(mem.source, { negativeTtlMs: 1_000, now: () => now });
    const token = formatToken(newTokenId(), newSecret());
    await expect(v.verify(token)).rejects.toThrowError(/not valid/);
    await expect(v.verify(token)).rejects.toThrowError(/not valid/);
    expect(mem.reads()).toBe(1);
    now = 1_500;
    await expect(v.verify(token)).rejects.toThrowError(/not valid/);
    expect(mem.reads()).toBe(2);
  });

  it("verifier - a store failure is TokenStoreUnavailableError and is not cached", async () => {
    const mem = memorySource();
    const v = new TokenVerifier(mem.source);
    const { token } = issue(mem);
    mem.fail(true);
    await expect(v.verify(token)).rejects.toThrowError(TokenStoreUnavailableError);
    mem.fail(false);
    await expect(v.verify(token)).resolves.toBeDefined();
  });

  it("verifier - the cache stays bounded", async () => {
    const mem = memorySource();
    const v = new TokenVerifier(mem.source, { maxEntries: 10 });
    for (let i = 0; i < 50; i++) await v.verify(issue(mem).token);
    expect((v as unknown as { cache: Map<string, unknown> }).cache.size).toBeLessThanOrEqual(10);
  });
});
