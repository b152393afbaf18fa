import { describe, expect, it } from "vitest";
import { AuthError, allows, formatToken, parseToken, tokenIdOf } from "../../src/auth/index.js";
import { checkSecret, decodeRecord, makeRecord, newSecret, newTokenId, parsePresented } from "../../src/auth/token.js";

const now = 1_700_000_000_000;
const fresh = (o: Partial<{ ttlSeconds: number }> = {}) => {
  const id = newTokenId();
  const secret = newSecret();
  return { id, secret, token: formatToken(id, secret), record: makeRecord({ id, secret, tenant: "alpha", role: "writer", nowMs: now, ttlSeconds: o.ttlSeconds, note: "" }) };
};

describe("token format", () => {
  it("token - format and parse round trip", () => {
    const { id, secret, token } = fresh();
    expect(token).toMatch(/^px_[a-z0-9]{20}\.[A-Za-z0-9_-]{43}$/);
    expect(parseToken(token)).toEqual({ id, secret });
    expect(tokenIdOf(token)).toBe(id);
    expect(tokenIdOf(`px_${id}`)).toBe(id);
    expect(tokenIdOf(id)).toBe(id);
  });

  it("token - malformed strings do not parse", () => {
    for (const s of ["", "px_", "px_abc.def", "Bearer px_x", `px_${"a".repeat(20)}.${"b".repeat(42)}`, `qx_${"a".repeat(20)}.${"b".repeat(43)}`]) {
      expect(parseToken(s)).toBeUndefined();
    }
  });

  it("token - the record stores a salted hash, never the secret", () => {
    const a = fresh();
    expect(JSON.stringify(a.record)).not.toContain(a.secret);
    const b = makeRecord({ id: a.id, secret: a.secret, tenant: "alpha", role: "writer", nowMs: now, ttlSeconds: undefined, note: "" });
    expect(b.salt).not.toBe(a.record.salt);
    expect(b.hash).not.toBe(a.record.hash);
  });
});

describe("token grants", () => {
  it("token - a record with table grants is version 2, decodes with its tables, and the principal carries them", () => {
    const id = newTokenId();
    const secret = newSecret();
    const r = makeRecord({ id, secret, tenant: "alpha", role: "reader", nowMs: now, ttlSeconds: undefined, note: "", tables: ["quotes"] });
    expect(r.v).toBe(2);
    const back = decodeRecord(JSON.parse(JSON.stringify(r)));
    expect(back?.tables).toEqual(["quotes"]);
    expect(checkSecret(back, secret, now).tables).toEqual(["quotes"]);
    // Without grants: version 1 (readable by earlier releases), every table.
    const plain = makeRecord({ id, secret, tenant: "alpha", role: "reader", nowMs: now, ttlSeconds: undefined, note: "" });
    expect(plain.v).toBe(1);
    expect(checkSecret(decodeRecord(JSON.parse(JSON.stringify(plain))), secret, now).tables).toBeUndefined();
  });

  it("token - a version 2 record with a missing or malformed grant list is not read (never widened to every table)", () => {
    const r = makeRecord({ id: newTokenId(), secret: newSecret(), tenant: "alpha", role: "reader", nowMs: now, ttlSeconds: undefined, note: "", tables: ["quotes"] });
    for (const tables of [undefined, null, [], "quotes", [1]]) expect(decodeRecord({ ...r, tables }), JSON.stringify(tables)).toBeUndefined();
    // A version 1 record's stray tables field is ignored: version 1 means every table.
    expect(decodeRecord({ ...r, v: 1, tables: ["x"] })?.tables).toBeNull();
  });
});

describe("token check", () => {
  it("token - the right secret gives the tenant and role", () => {
    const { record, secret } = fresh();
    expect(checkSecret(record, secret, now)).toEqual({ tokenId: record.id, tenant: "alpha", role: "writer", expiresAtMs: undefined });
  });

  it("token - wrong secret, unknown id, revoked and expired are UNAUTHENTICATED without echoing the token", () => {
    const { record, secret, token } = fresh({ ttlSeconds: 60 });
    const cases: (() => unknown)[] = [
      () => checkSecret(record, newSecret(), now),
      () => checkSecret(undefined, secret, now),
      () => checkSecret({ ...record, revokedAtMs: now }, secret, now + 1),
      () => checkSecret(record, secret, now + 61_000),
      () => parsePresented(undefined),
      () => parsePresented("garbage"),
    ];
    for (const c of cases) {
      try {
        c();
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(AuthError);
        expect((e as AuthError).code).toBe("UNAUTHENTICATED");
        expect((e as Error).message).not.toContain(secret);
        expect((e as Error).message).not.toContain(token);
      }
    }
    expect(() => checkSecret(record, secret, now + 59_000)).not.toThrow();
  });
});

describe("roles", () => {
  it("roles - reader queries, writer also ingests, admin also manages", () => {
    expect([allows("reader", "query"), allows("reader", "ingest"), allows("reader", "manage")]).toEqual([true, false, false]);
    expect([allows("writer", "query"), allows("writer", "ingest"), allows("writer", "manage")]).toEqual([true, true, false]);
    expect([allows("admin", "query"), allows("admin", "ingest"), allows("admin", "manage")]).toEqual([true, true, true]);
  });
});
