// Token administration on the px_tokens KV bucket: create (returns the only
// copy of the secret), revoke, list. Records hold salted hashes, never secrets;
// revocation keeps the record (with revokedAtMs) so verifiers can say why.
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { KV_TOKENS } from "../../protocols/subjects.js";
import { TokenNotFoundError, TokenOptionsError } from "./errors.js";
import { isRole } from "./roles.js";
import type { Role } from "./roles.js";
import { TOKEN_KEYS, decodeRecord, formatToken, idOfKey, makeRecord, newSecret, newTokenId, tokenIdOf, tokenKey } from "./token.js";
import type { TokenRecord } from "./token.js";
import { storeLimits } from "../config/limits.js";

const TENANT_RE = /^[a-z][a-z0-9_]{0,31}$/;
const TABLE_RE = /^[a-z][a-z0-9_]{0,62}$/;
/** Longest allowed lifetime: ten years. */
const MAX_TTL_SECONDS = 10 * 365 * 86_400;

export async function openTokenBucket(nc: NatsConnection, replicas = 1): Promise<KV> {
  return new Kvm(nc).create(KV_TOKENS, { history: 5, replicas, max_bytes: storeLimits().controlBucketMaxBytes });
}

export interface CreateTokenOptions {
  readonly tenant: string;
  readonly role: Role;
  /** Lifetime in seconds; omitted: the token never expires (revoke it to end it). */
  readonly ttlSeconds?: number;
  /** Free text shown by listTokens (who it is for). */
  readonly note?: string;
  /** Table grants: the token may use only these tables of its tenant; omitted: every table. */
  readonly tables?: readonly string[];
  readonly replicas?: number;
  readonly nowMs?: number;
}

/** Creates a token and returns it as `px_<id>.<secret>`; the secret is not stored and cannot be shown again. */
export async function createToken(nc: NatsConnection, o: CreateTokenOptions): Promise<string> {
  if (!TENANT_RE.test(o.tenant)) {
    throw new TokenOptionsError(`tenant "${o.tenant.slice(0, 40)}" is not a tenant name (lowercase letters, digits, _; starts with a letter; at most 32 characters)`);
  }
  if (!isRole(o.role)) throw new TokenOptionsError(`role "${String(o.role).slice(0, 20)}" is unknown; use reader, writer or admin`);
  if (o.ttlSeconds !== undefined && !(Number.isInteger(o.ttlSeconds) && o.ttlSeconds > 0 && o.ttlSeconds <= MAX_TTL_SECONDS)) {
    throw new TokenOptionsError(`ttlSeconds ${o.ttlSeconds} must be a whole number of seconds in [1, ${MAX_TTL_SECONDS}]; omit it for a token that does not expire`);
  }
  const tables = o.tables === undefined ? undefined : checkedTables(o.tables);
  const kv = await openTokenBucket(nc, o.replicas);
  const id = newTokenId();
  const secret = newSecret();
  const record = makeRecord({ id, secret, tenant: o.tenant, role: o.role, nowMs: o.nowMs ?? Date.now(), ttlSeconds: o.ttlSeconds, note: o.note ?? "", tables });
  await kv.create(tokenKey(id), JSON.stringify(record));
  return formatToken(id, secret);
}

/** Table grants as given: bare table names of the token's (or credential's) tenant, at least one, sorted without repeats. */
export function checkedTables(tables: readonly string[]): string[] {
  if (tables.length === 0) throw new TokenOptionsError("tables is empty: name at least one table (e.g. --tables trades,quotes), or omit it for a token that reaches every table of its tenant");
  for (const t of tables) {
    if (!TABLE_RE.test(t)) throw new TokenOptionsError(`table "${t.slice(0, 70)}" is not a table name (lowercase letters, digits, _; starts with a letter; no tenant prefix: the token's tenant applies)`);
  }
  return [...new Set(tables)].sort();
}

/** Revokes a token (by id, `px_<id>` or the whole token). Verifiers refuse it within seconds. */
export async function revokeToken(nc: NatsConnection, idOrToken: string, nowMs = Date.now()): Promise<void> {
  const id = tokenIdOf(idOrToken);
  if (!id) throw new TokenNotFoundError("that is not a token id; pass the id shown by `pxctl token list` (px_<id>)");
  const kv = await openTokenBucket(nc);
  for (let attempt = 0; attempt < 5; attempt++) {
    const e = await kv.get(tokenKey(id));
    const record = e && e.operation === "PUT" ? decodeRecord(e.json()) : undefined;
    if (!e || !record) throw new TokenNotFoundError(`token px_${id} does not exist; list tokens with \`pxctl token list\``);
    if (record.revokedAtMs !== null) return;
    try {
      // Compare-and-set: a concurrent revoke or edit makes us re-read rather than overwrite.
      await kv.update(tokenKey(id), JSON.stringify({ ...record, revokedAtMs: nowMs }), e.revision);
      return;
    } catch (err) {
      if (!/wrong last sequence|10071/i.test((err as Error).message)) throw err;
    }
  }
  throw new Error(`token px_${id}: revocation kept conflicting with concurrent updates; try again`);
}

/** A token's public description (no hash, no salt). */
export interface TokenInfo {
  readonly id: string;
  readonly tenant: string;
  readonly role: Role;
  readonly createdAtMs: number;
  readonly expiresAtMs: number | null;
  readonly revokedAtMs: number | null;
  readonly note: string;
  /** Table grants; null: every table of the tenant. */
  readonly tables: readonly string[] | null;
}

const infoOf = (r: TokenRecord): TokenInfo => ({
  id: r.id,
  tenant: r.tenant,
  role: r.role,
  createdAtMs: r.createdAtMs,
  expiresAtMs: r.expiresAtMs,
  revokedAtMs: r.revokedAtMs,
  note: r.note,
  tables: r.tables,
});

/** One token's record by id (without the `px_` prefix); undefined when there is none. Reads one key, not the bucket. */
export async function getToken(nc: NatsConnection, id: string): Promise<TokenInfo | undefined> {
  const e = await (await openTokenBucket(nc)).get(tokenKey(id));
  const r = e && e.operation === "PUT" ? decodeRecord(e.json()) : undefined;
  return r === undefined ? undefined : infoOf(r);
}

export async function listTokens(nc: NatsConnection, tenant?: string): Promise<TokenInfo[]> {
  const kv = await openTokenBucket(nc);
  const keys: string[] = [];
  for await (const k of await kv.keys(TOKEN_KEYS)) keys.push(k);
  const out: TokenInfo[] = [];
  for (const key of keys) {
    if (!idOfKey(key)) continue;
    const e = await kv.get(key);
    const r = e && e.operation === "PUT" ? decodeRecord(e.json()) : undefined;
    if (r && (tenant === undefined || r.tenant === tenant)) out.push(infoOf(r));
  }
  return out.sort((a, b) => a.createdAtMs - b.createdAtMs);
}
