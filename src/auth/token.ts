// Token format and the stored record (pure). A token is `px_<id>.<secret>`:
// the id is the KV key, the secret is 256 random bits stored only as a salted
// SHA-256. A fast hash is enough here: the secret is random, not a password,
// so there is nothing to brute-force that a slow hash would protect.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { AuthError } from "./errors.js";
import { isRole } from "./roles.js";
import type { Role } from "./roles.js";

export const TOKEN_PREFIX = "px_";
/** 1: the token reaches every table of its tenant; 2: only the tables it names (a version-1 reader refuses it: fails closed). */
export const TOKEN_RECORD_VERSION = 1;
export const GRANTS_RECORD_VERSION = 2;

const ID_RE = /^[a-z0-9]{20}$/;
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;
const TOKEN_RE = /^px_([a-z0-9]{20})\.([A-Za-z0-9_-]{43})$/;

export interface ParsedToken {
  readonly id: string;
  readonly secret: string;
}

/** The identity a verified token grants. */
export interface Principal {
  readonly tokenId: string;
  readonly tenant: string;
  readonly role: Role;
  /** undefined: never expires */
  readonly expiresAtMs: number | undefined;
  /** The only tables the token may use; undefined: every table of its tenant. */
  readonly tables?: readonly string[] | undefined;
}

/** What px_tokens stores under `tok.<id>`: never the secret itself. */
export interface TokenRecord {
  readonly v: 1 | 2;
  readonly id: string;
  readonly tenant: string;
  readonly role: Role;
  readonly salt: string; // base64
  readonly hash: string; // base64 sha256(salt || secret)
  readonly createdAtMs: number;
  readonly expiresAtMs: number | null;
  readonly revokedAtMs: number | null;
  readonly note: string;
  /** Table grants (version 2 records only); null: every table of the tenant. */
  readonly tables: readonly string[] | null;
}

export const tokenKey = (id: string): string => `tok.${id}`;
export const TOKEN_KEYS = "tok.>";

export function idOfKey(key: string): string | undefined {
  return key.startsWith("tok.") ? key.slice(4) : undefined;
}

export function newTokenId(): string {
  // 20 lowercase hex-ish chars from 10 random bytes: safe in KV keys and subjects.
  return randomBytes(10).toString("hex");
}

export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

export function formatToken(id: string, secret: string): string {
  return `${TOKEN_PREFIX}${id}.${secret}`;
}

export function parseToken(s: string): ParsedToken | undefined {
  const m = TOKEN_RE.exec(s);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** Accepts a token id, `px_<id>` or a whole token (admins paste what they have). */
export function tokenIdOf(s: string): string | undefined {
  const whole = parseToken(s);
  if (whole) return whole.id;
  const bare = s.startsWith(TOKEN_PREFIX) ? s.slice(TOKEN_PREFIX.length) : s;
  return ID_RE.test(bare) ? bare : undefined;
}

export function hashSecret(salt: Uint8Array, secret: string): Buffer {
  return createHash("sha256").update(salt).update(secret, "utf8").digest();
}

export function isWellFormedSecret(secret: string): boolean {
  return SECRET_RE.test(secret);
}

export function makeRecord(o: {
  id: string;
  secret: string;
  tenant: string;
  role: Role;
  nowMs: number;
  ttlSeconds: number | undefined;
  note: string;
  tables?: readonly string[] | undefined;
}): TokenRecord {
  const salt = randomBytes(16);
  return {
    v: o.tables === undefined ? TOKEN_RECORD_VERSION : GRANTS_RECORD_VERSION,
    id: o.id,
    tenant: o.tenant,
    role: o.role,
    salt: salt.toString("base64"),
    hash: hashSecret(salt, o.secret).toString("base64"),
    createdAtMs: o.nowMs,
    expiresAtMs: o.ttlSeconds === undefined ? null : o.nowMs + o.ttlSeconds * 1000,
    revokedAtMs: null,
    note: o.note,
    tables: o.tables === undefined ? null : [...o.tables],
  };
}

const isNum = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

/** Validates a stored record; undefined when it is not one this version can read. */
export function decodeRecord(json: unknown): TokenRecord | undefined {
  if (typeof json !== "object" || json === null) return undefined;
  const r = json as Record<string, unknown>;
  if (r.v !== TOKEN_RECORD_VERSION && r.v !== GRANTS_RECORD_VERSION) return undefined;
  // A version 2 record must name its tables: a malformed grant list never widens to "every table".
  const tables = r.v === GRANTS_RECORD_VERSION ? r.tables : null;
  if (r.v === GRANTS_RECORD_VERSION && !(Array.isArray(tables) && tables.length > 0 && tables.every((t) => typeof t === "string"))) return undefined;
  if (typeof r.id !== "string" || typeof r.tenant !== "string" || !isRole(r.role)) return undefined;
  if (typeof r.salt !== "string" || typeof r.hash !== "string" || !isNum(r.createdAtMs)) return undefined;
  if (r.expiresAtMs !== null && !isNum(r.expiresAtMs)) return undefined;
  if (r.revokedAtMs !== null && !isNum(r.revokedAtMs)) return undefined;
  return {
    v: r.v,
    id: r.id,
    tenant: r.tenant,
    role: r.role,
    salt: r.salt,
    hash: r.hash,
    createdAtMs: r.createdAtMs,
    expiresAtMs: r.expiresAtMs as number | null,
    revokedAtMs: r.revokedAtMs as number | null,
    note: typeof r.note === "string" ? r.note : "",
    tables: tables as readonly string[] | null,
  };
}

const unauthenticated = (message: string): AuthError => new AuthError("UNAUTHENTICATED", message);

/** Hashed for unknown ids too, so an unknown id takes as long to refuse as a wrong secret. */
const DUMMY_SALT = randomBytes(16);

/**
 * Checks `secret` against a stored record at time `nowMs`. `record` undefined
 * means the id is unknown; the same message is used as for a wrong secret so a
 * caller cannot probe which ids exist.
 */
export function checkSecret(record: TokenRecord | undefined, secret: string, nowMs: number): Principal {
  const invalid = "the token is not valid (unknown or wrong secret); check it was copied whole, or ask an admin for a new one";
  if (!record) {
    hashSecret(DUMMY_SALT, secret);
    throw unauthenticated(invalid);
  }
  const expected = Buffer.from(record.hash, "base64");
  const got = hashSecret(Buffer.from(record.salt, "base64"), secret);
  if (expected.length !== got.length || !timingSafeEqual(expected, got)) throw unauthenticated(invalid);
  if (record.revokedAtMs !== null) {
    throw unauthenticated(`the token was revoked at ${new Date(record.revokedAtMs).toISOString()}; ask an admin for a new one`);
  }
  if (record.expiresAtMs !== null && record.expiresAtMs <= nowMs) {
    throw unauthenticated(`the token expired at ${new Date(record.expiresAtMs).toISOString()}; ask an admin for a new one`);
  }
  return { tokenId: record.id, tenant: record.tenant, role: record.role, expiresAtMs: record.expiresAtMs ?? undefined, ...(record.tables === null ? {} : { tables: record.tables }) };
}

/** Parses the presented token string, or explains the expected form (without echoing it). */
export function parsePresented(token: string | undefined): ParsedToken {
  if (token === undefined || token === "") {
    throw unauthenticated("no token: send the metadata header `authorization: Bearer px_<id>.<secret>` (ask an admin for a token)");
  }
  const parsed = parseToken(token);
  if (!parsed) throw unauthenticated("malformed token: expected px_<id>.<secret> as printed by `pxctl token create`");
  return parsed;
}
