// Revoking a NATS user: the account JWT gets a revocation claim for the user's
// public key, is saved in the auth directory (a restart preloads it) and is
// pushed to the servers by the system user on `$SYS.REQ.CLAIMS.UPDATE`;
// nats-server then disconnects the user and refuses it from then on.
import { connect } from "@nats-io/transport-node";
import { accountJwt, revocationsOf } from "../auth/index.js";
import { saveAccountJwt } from "./servers/natsauth.js";
import type { NatsAuthFiles } from "./servers/natsauth.js";
import { natsCredsOptions } from "./natsclient.js";

/** Pushes the stored account JWT to the servers at `servers`; throws with the server's reason when refused. */
export async function pushAccountJwt(servers: string | string[], files: NatsAuthFiles): Promise<void> {
  const nc = await connect({ servers, name: "pxctl system", timeout: 3_000, maxReconnectAttempts: 0, ...natsCredsOptions(files.credsPath("system")) });
  try {
    const reply = await nc.request("$SYS.REQ.CLAIMS.UPDATE", files.accountJwt(), { timeout: 5_000 });
    const body = reply.json<{ error?: { description?: string }; data?: { code?: number } }>();
    if (body.error) throw new Error(`nats-server refused the account update: ${body.error.description ?? JSON.stringify(body.error)}`);
  } finally {
    await nc.close();
  }
}

/** Adds a revocation of `publicKey` (effective for JWTs issued up to now) and pushes it. */
export async function revokeNatsUser(servers: string | string[], files: NatsAuthFiles, publicKey: string, nowMs = Date.now()): Promise<void> {
  const revocations = { ...revocationsOf(files.accountJwt()), [publicKey]: Math.floor(nowMs / 1000) };
  saveAccountJwt(files, await accountJwt(files.identity, revocations));
  await pushAccountJwt(servers, files);
}
