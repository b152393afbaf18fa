// Connection options from a `.creds` file: the credentials authenticator and,
// for tenant credentials, the private reply inbox prefix their permissions
// allow. Every Proxist process (node, pxctl, demo) connects through this.
import { readFileSync } from "node:fs";
import { credsAuthenticator } from "@nats-io/transport-node";
import type { ConnectionOptions } from "@nats-io/transport-node";
import { inboxPrefixOfCreds } from "../auth/index.js";
import { ENV } from "../config/defaults.js";

/** The variable naming the `.creds` file a process connects with. */
export const NATS_CREDS_ENV = ENV.natsCreds;

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

/** The variable naming the CA certificate (PEM) a process trusts for NATS and the gRPC API (`pxctl certs init` writes ca.crt). */
export const TLS_CA_ENV = ENV.tlsCa;

export type TlsOptions = Pick<ConnectionOptions, "tls">;

/**
 * TLS towards a NATS server whose certificate our CA signed; `{}` without a CA
 * file (a plaintext server, or one whose certificate the system already trusts).
 */
export function natsTlsOptions(caPath: string | undefined): TlsOptions {
  if (!caPath) return {};
  try {
    readFileSync(caPath);
  } catch (e) {
    throw new Error(`cannot read the TLS CA certificate ${caPath} (${(e as Error).message}); pass the ca.crt pxctl certs init wrote, or set ${TLS_CA_ENV}`, { cause: e });
  }
  return { tls: { caFile: caPath } };
}

/**
 * A connection error in words a person can act on when TLS is the cause:
 * a server that requires TLS and a certificate this client does not trust.
 * Other errors come back unchanged.
 */
export function explainNatsTlsError(e: unknown, url: string, caPath: string | undefined): Error {
  const msg = (e as Error).message ?? String(e);
  const code = (e as { code?: string }).code ?? "";
  const untrusted = /self[- ]signed|unable to (get|verify)|certificate|UNABLE_TO|SELF_SIGNED|ERR_TLS/i.test(`${msg} ${code}`);
  if (untrusted && !caPath) {
    return new Error(`NATS at ${url} requires TLS and its certificate is not trusted here (${msg}); pass the CA certificate with --tls-ca FILE or ${TLS_CA_ENV} (pxctl certs init wrote ca.crt)`, { cause: e });
  }
  if (untrusted) return new Error(`NATS at ${url}: TLS handshake failed with CA ${caPath} (${msg}); is it the CA that signed the server's certificate, and does the certificate name this host (pxctl certs init --hosts)?`, { cause: e });
  if (/does not support 'tls'|tls.*not available/i.test(msg)) return new Error(`NATS at ${url} does not speak TLS (${msg}); drop --tls-ca / ${TLS_CA_ENV}, or start it with TLS (proxist up --tls)`, { cause: e });
  return e as Error;
}
