// Connection options from a `.creds` file: the credentials authenticator and,
// for tenant credentials, the private reply inbox prefix their permissions
// allow. Every Proxist process (node, pxctl, demo) connects through this.
import { readFileSync } from "node:fs";
import { credsAuthenticator } from "@nats-io/transport-node";
import type { ConnectionOptions } from "@nats-io/transport-node";
import { inboxPrefixOfCreds } from "../auth/index.js";

/** The variable naming the `.creds` file a process connects with. */
export const NATS_CREDS_ENV = "PX_NATS_CREDS";

export type CredsOptions = Pick<ConnectionOptions, "authenticator" | "inboxPrefix">;

/** `{}` without a file (an open server). */
export function natsCredsOptions(credsPath: string | undefined): CredsOptions {
  if (!credsPath) return {};
  let text: string;
  try {
    text = readFileSync(credsPath, "utf8");
  } catch (e) {
    throw new Error(`cannot read NATS credentials ${credsPath} (${(e as Error).message}); pass the .creds file pxctl creds create wrote, or set ${NATS_CREDS_ENV}`, { cause: e });
  }
  const inboxPrefix = inboxPrefixOfCreds(text);
  return { authenticator: credsAuthenticator(new TextEncoder().encode(text)), ...(inboxPrefix ? { inboxPrefix } : {}) };
}
