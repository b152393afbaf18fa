// NATS decentralized auth, pure: an operator, a system account and the Proxist
// account (JetStream enabled), and user credentials minted offline with the
// permissions of a role (protocols/natsroles.ts) and an expiry nats-server
// enforces. Keys are nkeys; JWTs are signed here, nothing is sent anywhere.
import { randomBytes } from "node:crypto";
import { createAccount, createOperator, createUser, decode, encodeAccount, encodeOperator, encodeUser, fmtCreds, fromSeed } from "@nats-io/jwt";
import type { Account, ClaimsData, OperatorLimits, User } from "@nats-io/jwt";
import { permissionsOf, tenantInboxPrefix } from "../../protocols/index.js";
import type { NatsRole } from "../../protocols/index.js";

/** The secrets of one deployment (kept in 0600 files by src/runtime/servers/natsauth.ts). */
export interface NatsIdentity {
  readonly operatorSeed: string;
  readonly systemAccountSeed: string;
  readonly accountSeed: string;
}

const td = new TextDecoder();
const seedText = (kp: { getSeed(): Uint8Array }): string => td.decode(kp.getSeed());
const pubOf = (seed: string): string => fromSeed(new TextEncoder().encode(seed)).getPublicKey();

export function newNatsIdentity(): NatsIdentity {
  return { operatorSeed: seedText(createOperator()), systemAccountSeed: seedText(createAccount()), accountSeed: seedText(createAccount()) };
}

export const accountPublicKey = (id: NatsIdentity): string => pubOf(id.accountSeed);
export const systemAccountPublicKey = (id: NatsIdentity): string => pubOf(id.systemAccountSeed);

export async function operatorJwt(id: NatsIdentity): Promise<string> {
  return encodeOperator("proxist", id.operatorSeed, { system_account: systemAccountPublicKey(id) });
}

/** Connection limits of both accounts: none (an absent limit in the JWT means 0 connections). */
const NATS_LIMITS: OperatorLimits = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export async function systemAccountJwt(id: NatsIdentity): Promise<string> {
  return encodeAccount("SYS", id.systemAccountSeed, { limits: NATS_LIMITS }, { signer: id.operatorSeed });
}

/** Unlimited, JetStream on: Proxist's quotas are its own (per tenant), not NATS account limits. */
const ACCOUNT_LIMITS: OperatorLimits = { ...NATS_LIMITS, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };

/**
 * The Proxist account's JWT. `revocations` maps a user public key to the unix
 * second before which its JWTs are void: nats-server disconnects such users
 * when it receives this JWT and refuses them afterwards.
 */
export async function accountJwt(id: NatsIdentity, revocations: Readonly<Record<string, number>> = {}): Promise<string> {
  return encodeAccount("PROXIST", id.accountSeed, { limits: ACCOUNT_LIMITS, revocations: { ...revocations } }, { signer: id.operatorSeed });
}

/** The revocations an account JWT carries. */
export function revocationsOf(accountJwtText: string): Record<string, number> {
  const claims = decode<Account>(accountJwtText) as ClaimsData<Account>;
  return { ...(claims.nats.revocations ?? {}) };
}

export interface MintOptions {
  readonly role: NatsRole;
  readonly tenant?: string;
  /** Table grants (checked names; absent: every table of its tenant): a publisher's ingest tables, a subscriber's watermark tables. */
  readonly tables?: readonly string[];
  /** Subscriber with table grants: the feeds it may consume (protocols/natsroles.ts feedsWithin). */
  readonly feeds?: readonly string[];
  /** Lifetime in seconds; omitted: no expiry (revoke it to end it). */
  readonly ttlSeconds?: number;
  readonly nowMs?: number;
}

export interface MintedCreds {
  readonly credId: string;
  readonly publicKey: string;
  /** The `.creds` file text (JWT and seed): the only copy of the secret. */
  readonly creds: string;
  readonly expiresAtMs: number | null;
  /** The reply inbox prefix the client must use (tenant roles); undefined otherwise. */
  readonly inboxPrefix: string | undefined;
}

export const newCredId = (): string => randomBytes(6).toString("hex");

/** A user of the Proxist account with the permissions of `o.role`. */
export async function mintUser(id: NatsIdentity, o: MintOptions): Promise<MintedCreds> {
  const credId = newCredId();
  const ukp = createUser();
  const perms = permissionsOf({ role: o.role, credId, ...(o.tenant !== undefined ? { tenant: o.tenant } : {}), ...(o.tables !== undefined ? { tables: o.tables } : {}), ...(o.feeds !== undefined ? { feeds: o.feeds } : {}) });
  const nowMs = o.nowMs ?? Date.now();
  const exp = o.ttlSeconds === undefined ? undefined : Math.floor(nowMs / 1000) + o.ttlSeconds;
  const name = o.tenant ? `${o.role}.${o.tenant}.${credId}` : `${o.role}.${credId}`;
  const user = { pub: { allow: [...perms.pub.allow] }, sub: { allow: [...perms.sub.allow] } };
  const jwt = await encodeUser(name, ukp, id.accountSeed, user, exp === undefined ? {} : { exp });
  const inboxPrefix = o.tenant && o.role !== "service" && o.role !== "admin" ? tenantInboxPrefix(o.tenant, credId) : undefined;
  const header = inboxPrefix ? `# Proxist ${o.role} of tenant ${o.tenant}; connect with inbox prefix ${inboxPrefix}\n` : `# Proxist ${o.role}\n`;
  return { credId, publicKey: ukp.getPublicKey(), creds: header + td.decode(fmtCreds(jwt, ukp)), expiresAtMs: exp === undefined ? null : exp * 1000, inboxPrefix };
}

/** A user of the system account: pushes account JWT updates (revocations) to the servers. */
export async function mintSystemUser(id: NatsIdentity): Promise<string> {
  const ukp = createUser();
  const jwt = await encodeUser("system", ukp, id.systemAccountSeed);
  return `# Proxist system user (account updates)\n${td.decode(fmtCreds(jwt, ukp))}`;
}

/** The inbox prefix written into a Proxist `.creds` file header, if any. */
export function inboxPrefixOfCreds(creds: string): string | undefined {
  return /connect with inbox prefix (\S+)/.exec(creds)?.[1];
}

/**
 * Whether a `.creds` file of a built-in role (service, admin) carries exactly
 * the permissions that role has now. A file minted by an earlier release (the
 * service role was unrestricted then) does not, and is minted again.
 */
export function credsHasRolePermissions(creds: string, role: "service" | "admin"): boolean {
  const jwt = /-----BEGIN NATS USER JWT-----\s*(\S+)/.exec(creds)?.[1];
  if (jwt === undefined) return false;
  let user: { pub?: { allow?: string[] }; sub?: { allow?: string[] } };
  try {
    user = (decode<User>(jwt) as ClaimsData<User>).nats;
  } catch {
    return false;
  }
  const want = permissionsOf({ role });
  const same = (a: readonly string[] | undefined, b: readonly string[]): boolean => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
  return same(user.pub?.allow, want.pub.allow) && same(user.sub?.allow, want.sub.allow);
}
