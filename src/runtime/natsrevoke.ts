// Revoking a NATS user: the account JWT gets a revocation claim for the user's
// public key, is saved in the auth directory (a restart preloads it) and is
// pushed to the servers by the system user on `$SYS.REQ.CLAIMS.UPDATE`;
// nats-server then disconnects the user and refuses it from then on.
import { connect } from "@nats-io/transport-node";
import { accountJwt, revocationsOf } from "../auth/index.js";
import { saveAccountJwt } from "./servers/natsauth.js";
import type { NatsAuthFiles } from "./servers/natsauth.js";
import { natsCredsOptions, natsTlsOptions } from "./natsclient.js";

/** Pushes the stored account JWT to the servers at `servers` (`tlsCa`: the CA of a NATS with TLS); throws with the server's reason when refused. */
export async function pushAccountJwt(servers: string | string[], files: NatsAuthFiles, tlsCa?: string): Promise<void> {
  const nc = await connect({ servers, name: "proxist system", timeout: 3_000, maxReconnectAttempts: 0, ...natsCredsOptions(files.credsPath("system")), ...natsTlsOptions(tlsCa) });
  try {
    const reply = await nc.request("$SYS.REQ.CLAIMS.UPDATE", files.accountJwt(), { timeout: 5_000 });
    const body = reply.json<{ error?: { description?: string }; data?: { code?: number } }>();
    if (body.error) throw new Error(`nats-server refused the account update: ${body.error.description ?? JSON.stringify(body.error)}`);
  } finally {
    await nc.close();
  }
}

/** Revocations under way in this process, by auth directory: each reads the account JWT the previous one wrote. */
const pending = new Map<string, Promise<void>>();

/** Adds a revocation of `publicKey` (effective for JWTs issued up to now) and pushes it. */
export async function revokeNatsUser(servers: string | string[], files: NatsAuthFiles, publicKey: string, nowMs = Date.now(), tlsCa?: string): Promise<void> {
  // One at a time per directory: two revocations read-modify-writing account.jwt at once would each drop the other's claim.
  const before = pending.get(files.dir) ?? Promise.resolve();
  const run = before.then(async () => {
    const revocations = { ...revocationsOf(files.accountJwt()), [publicKey]: Math.floor(nowMs / 1000) };
    saveAccountJwt(files, await accountJwt(files.identity, revocations));
    await pushAccountJwt(servers, files, tlsCa);
  });
  const settled = run.catch(() => {});
  pending.set(files.dir, settled);
  void settled.then(() => {
    if (pending.get(files.dir) === settled) pending.delete(files.dir);
  });
  await run;
}
