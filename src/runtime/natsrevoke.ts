// Revoking a NATS user: the account JWT gets a revocation claim for the user's
// public key (with the revocations the servers already hold), is saved in the
// auth directory (a restart preloads it) and is pushed to the servers by the
// system user on `$SYS.REQ.CLAIMS.UPDATE`; nats-server then disconnects the
// user and refuses it from then on.
import { connect } from "@nats-io/transport-node";
import { accountJwt, revocationsOf } from "../auth/index.js";
import { saveAccountJwt } from "./servers/natsauth.js";
import type { NatsAuthFiles } from "./servers/natsauth.js";
import { natsCredsOptions, natsTlsOptions } from "./natsclient.js";

type Conn = Awaited<ReturnType<typeof connect>>;

/** A connection of the system user (account updates, lookups), to the servers at `servers` (`tlsCa`: the CA of a NATS with TLS). */
function systemConnection(servers: string | string[], files: NatsAuthFiles, tlsCa: string | undefined): Promise<Conn> {
  return connect({ servers, name: "proxist system", timeout: 3_000, maxReconnectAttempts: 0, ...natsCredsOptions(files.credsPath("system")), ...natsTlsOptions(tlsCa) });
}

async function push(nc: Conn, jwt: string): Promise<void> {
  const reply = await nc.request("$SYS.REQ.CLAIMS.UPDATE", jwt, { timeout: 5_000 });
  const body = reply.json<{ error?: { description?: string }; data?: { code?: number } }>();
  if (body.error) throw new Error(`nats-server refused the account update: ${body.error.description ?? JSON.stringify(body.error)}`);
}

/** The revocations of the account JWT the servers hold now; {} when they answer none (the caller's file is then all there is). */
async function serverRevocations(nc: Conn, account: string): Promise<Record<string, number>> {
  try {
    const text = (await nc.request(`$SYS.REQ.ACCOUNT.${account}.CLAIMS.LOOKUP`, "", { timeout: 3_000 })).string().trim();
    return text.startsWith("eyJ") ? revocationsOf(text) : {};
  } catch {
    return {};
  }
}

/** Per key the later cut-off: a JWT void in either set stays void. */
function mergeRevocations(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v);
  return out;
}

/** Revocations under way in this process, by auth directory: each reads the account JWT the previous one wrote. */
const pending = new Map<string, Promise<void>>();

export interface RevokeOptions {
  readonly nowMs?: number;
  /** CA of a NATS with TLS. */
  readonly tlsCa?: string | undefined;
  /** Test only (negative control): sign from this directory's account.jwt alone, not merged with the servers' revocations. */
  readonly unsafeFileOnly?: boolean;
}

/**
 * Adds a revocation of `publicKey` (effective for JWTs issued up to now) and
 * pushes it. The account JWT signed keeps every revocation the servers hold
 * as well as this directory's: another copy of the auth directory (pxctl on
 * another machine, a node given PX_AUTH_DIR) may have revoked users this file
 * does not list, and a JWT without them would lift those revocations.
 */
export async function revokeNatsUser(servers: string | string[], files: NatsAuthFiles, publicKey: string, o: RevokeOptions = {}): Promise<void> {
  // One at a time per directory: two revocations read-modify-writing account.jwt at once would each drop the other's claim.
  const before = pending.get(files.dir) ?? Promise.resolve();
  const run = before.then(async () => {
    const nc = await systemConnection(servers, files, o.tlsCa);
    try {
      const known = o.unsafeFileOnly ? revocationsOf(files.accountJwt()) : mergeRevocations(revocationsOf(files.accountJwt()), await serverRevocations(nc, files.account));
      const revocations = mergeRevocations(known, { [publicKey]: Math.floor((o.nowMs ?? Date.now()) / 1000) });
      saveAccountJwt(files, await accountJwt(files.identity, revocations));
      await push(nc, files.accountJwt());
    } finally {
      await nc.close();
    }
  });
  const settled = run.catch(() => {});
  pending.set(files.dir, settled);
  void settled.then(() => {
    if (pending.get(files.dir) === settled) pending.delete(files.dir);
  });
  await run;
}
