// Issuing and revoking a tenant's (or the deployment's) NATS credentials: the
// one sequence `pxctl creds create|revoke` and the gRPC admin service
// (CreateCreds, RevokeCreds) both run. Minting is offline (the account key
// signs a user JWT); the caller keeps the secret (a 0600 file, a gRPC reply)
// before KV px_creds records the public key. Revoking pushes an account JWT
// update to nats-server, then marks the record.
import type { NatsConnection } from "@nats-io/transport-node";
import { CredsOptionsError, TokenNotFoundError, TokenOptionsError, checkedTables, getCreds, markCredsRevoked, mintUser, recordCreds } from "../auth/index.js";
import type { CredsInfo, MintedCreds } from "../auth/index.js";
import { feedsWithin } from "../../protocols/natsroles.js";
import type { NatsRole } from "../../protocols/index.js";
import { controlRequest } from "../control/index.js";
import type { DescribeReply } from "../control/index.js";
import { revokeNatsUser } from "./natsrevoke.js";
import type { NatsAuthFiles } from "./servers/natsauth.js";
import type { CredsIssuer } from "../api/index.js";

/** What minting and revoking need: the identity's files, and the servers (and their CA) to push revocations to. */
export interface CredsAuthority {
  readonly files: NatsAuthFiles;
  readonly servers: readonly string[];
  /** CA of a NATS that speaks TLS; absent: plaintext. */
  readonly tlsCa?: string | undefined;
}

export interface IssueCredsOptions {
  readonly role: NatsRole;
  /** Publishers and subscribers: their tenant; service and admin: none. */
  readonly tenant?: string | undefined;
  /** Table grants (publisher, subscriber); absent: every table of the tenant. */
  readonly tables?: readonly string[] | undefined;
  /** Absent: no expiry (revoke them to end them). */
  readonly ttlSeconds?: number | undefined;
  readonly note?: string | undefined;
  /** Control request timeout (the spec read for a subscriber's feeds). */
  readonly timeoutMs?: number;
}

export interface IssuedCreds {
  /** Holds the `.creds` text: the only copy of the seed. */
  readonly minted: MintedCreds;
  /** What px_creds recorded (no secret). */
  readonly info: CredsInfo;
}

const TENANT_RE = /^[a-z][a-z0-9_]{0,31}$/;
/** Credentials ids (newCredId): anything else is not looked up (it could not be a KV key). */
const ID_RE = /^[0-9a-f]{12}$/;

/**
 * Mints credentials, hands them to `keep` (which stores or returns the secret;
 * if it throws, nothing is recorded), then records the public key in px_creds.
 * Bad options are CredsOptionsError naming the rule.
 */
export async function issueCreds(nc: NatsConnection, files: NatsAuthFiles, o: IssueCredsOptions, keep: (minted: MintedCreds) => void | Promise<void>): Promise<IssuedCreds> {
  const tenantRole = o.role === "publisher" || o.role === "subscriber";
  if (tenantRole && (o.tenant === undefined || !TENANT_RE.test(o.tenant))) {
    throw new CredsOptionsError("tenant", `${JSON.stringify(String(o.tenant).slice(0, 40))} is not a tenant name (lowercase letters, digits, _; starts with a letter; at most 32 characters)`);
  }
  if (!tenantRole && o.tenant !== undefined) throw new CredsOptionsError("tenant", `a ${o.role} is not scoped to a tenant; give no tenant`);
  if (!tenantRole && o.tables !== undefined) throw new CredsOptionsError("tables", `table grants apply to publishers (ingest subjects) and subscribers (feeds and watermarks); a ${o.role} is not scoped to tables`);
  const tables = o.tables === undefined ? undefined : grantsOf(o.tables);
  // A subscriber with table grants may consume the feeds that read only those tables, as the spec has them now.
  const feeds = o.role === "subscriber" && tables !== undefined ? await grantedFeeds(nc, o.tenant!, tables, o.timeoutMs) : undefined;
  const minted = await mintUser(files.identity, {
    role: o.role,
    ...(o.tenant === undefined ? {} : { tenant: o.tenant }),
    ...(tables === undefined ? {} : { tables }),
    ...(feeds === undefined ? {} : { feeds }),
    ...(o.ttlSeconds === undefined ? {} : { ttlSeconds: o.ttlSeconds }),
  });
  await keep(minted);
  // The seed stays with the caller; KV keeps the public key.
  const info: CredsInfo = {
    id: minted.credId,
    tenant: o.tenant ?? null,
    role: o.role,
    publicKey: minted.publicKey,
    createdAtMs: Date.now(),
    expiresAtMs: minted.expiresAtMs,
    revokedAtMs: null,
    note: o.note ?? "",
    tables: tables ?? null,
    ...(feeds === undefined ? {} : { feeds }),
  };
  await recordCreds(nc, info);
  return { minted, info };
}

/** Table grants checked as a token's are (names, at least one). */
function grantsOf(tables: readonly string[]): string[] {
  try {
    return checkedTables(tables);
  } catch (e) {
    if (e instanceof TokenOptionsError) throw new CredsOptionsError("tables", e.message);
    throw e;
  }
}

/** The feeds a subscriber granted `tables` may consume; refuses a table the tenant does not have. */
async function grantedFeeds(nc: NatsConnection, tenant: string, tables: readonly string[], timeoutMs = 5_000): Promise<string[]> {
  const d = await controlRequest<DescribeReply>(nc, "describe", { kind: "tenant", name: tenant }, timeoutMs);
  if (d.kind !== "tenant") throw new Error(`describe tenant ${tenant} answered a ${d.kind}`);
  const known = new Set(d.spec.tables.map((t) => t.name));
  const unknown = tables.filter((t) => !known.has(t));
  if (unknown.length > 0) throw new CredsOptionsError("tables", `tenant ${d.spec.name} has no table ${unknown.join(", ")} (it has ${[...known].join(", ")})`);
  return feedsWithin(d.spec.feeds ?? [], tables);
}

/**
 * Revokes credentials `id`: nats-server gets the account JWT with the user's
 * revocation (it disconnects the user and refuses it from then on), then the
 * record is marked. With `tenant`, credentials of anyone else read as unknown.
 */
export async function revokeCreds(nc: NatsConnection, authority: CredsAuthority, id: string, tenant?: string): Promise<CredsInfo> {
  if (tenant === undefined && !ID_RE.test(id)) throw new TokenNotFoundError(`${id.slice(0, 40)} is not a credentials id (12 hex digits); list them with \`pxctl creds list\``);
  const info = tenant === undefined ? await getCreds(nc, id) : await credsOfTenant(nc, id, tenant);
  await revokeNatsUser([...authority.servers], authority.files, info.publicKey, { tlsCa: authority.tlsCa });
  await markCredsRevoked(nc, id);
  return info;
}

/** Credentials `id` of `tenant`; missing ones and anyone else's read alike, so ids elsewhere cannot be probed. */
async function credsOfTenant(nc: NatsConnection, id: string, tenant: string): Promise<CredsInfo> {
  const unknown = (): TokenNotFoundError => new TokenNotFoundError(`${ID_RE.test(id) ? `credentials ${id} are not credentials of tenant ${tenant}` : "that is not a credentials id"}; ListCreds shows the ids`);
  if (!ID_RE.test(id)) throw unknown();
  const info = await getCreds(nc, id).catch((e: unknown) => {
    if (e instanceof TokenNotFoundError) throw unknown();
    throw e;
  });
  if (info.tenant !== tenant) throw unknown();
  return info;
}

/** The gRPC admin service's view of issuing and revoking (src/api CredsIssuer), on the node's connection. */
export function credsIssuer(nc: NatsConnection, authority: CredsAuthority): CredsIssuer {
  return {
    // The reply is the only copy of the seed: nothing is written here.
    issue: (o) => issueCreds(nc, authority.files, o, () => {}),
    revoke: async (id, tenant) => {
      await revokeCreds(nc, authority, id, tenant);
    },
  };
}
