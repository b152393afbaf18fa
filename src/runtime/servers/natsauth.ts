// The NATS auth material of one deployment on disk: the identity's seeds, the
// current account JWT (its revocations) and the service/admin/system `.creds`
// files, all mode 0600 in one directory. Created on first use, reused after:
// `proxist up`, the test helpers and pxctl (mint, revoke) read the same files.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TaggedError } from "../../../protocols/tagged.js";
import { accountJwt, accountPublicKey, credsHasRolePermissions, mintSystemUser, mintUser, newNatsIdentity, operatorJwt, systemAccountJwt, systemAccountPublicKey } from "../../auth/index.js";
import type { NatsIdentity } from "../../auth/index.js";

export type BuiltinCreds = "service" | "admin" | "system";

export interface NatsAuthFiles {
  readonly dir: string;
  readonly identity: NatsIdentity;
  readonly operatorJwt: string;
  readonly systemAccountJwt: string;
  readonly systemAccount: string;
  readonly account: string;
  /** The account JWT as last written (with its revocations). */
  accountJwt(): string;
  /** Path of a built-in `.creds` file. */
  credsPath(which: BuiltinCreds): string;
}

/** Writes a secret file readable by its owner only (also when it existed with wider bits). */
export function writeSecretFile(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

const IDENTITY = "identity.json";
const ACCOUNT_JWT = "account.jwt";

/** Loads the auth material in `dir`, creating what is missing (a new identity on first use). */
export async function loadOrCreateNatsAuth(dir: string): Promise<NatsAuthFiles> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const idPath = join(dir, IDENTITY);
  if (!existsSync(idPath)) writeSecretFile(idPath, JSON.stringify(newNatsIdentity(), null, 2) + "\n");
  const identity = JSON.parse(readFileSync(idPath, "utf8")) as NatsIdentity;
  const accPath = join(dir, ACCOUNT_JWT);
  // The account JWT is kept, not re-signed: re-signing would drop revocations made since.
  if (!existsSync(accPath)) writeSecretFile(accPath, await accountJwt(identity));
  const credsPath = (which: BuiltinCreds): string => join(dir, `${which}.creds`);
  // Minted again when the role's permissions changed since (a file of an earlier release), so an upgrade tightens them.
  for (const which of ["service", "admin"] as const) {
    if (!existsSync(credsPath(which)) || !credsHasRolePermissions(readFileSync(credsPath(which), "utf8"), which)) writeSecretFile(credsPath(which), (await mintUser(identity, { role: which })).creds);
  }
  if (!existsSync(credsPath("system"))) writeSecretFile(credsPath("system"), await mintSystemUser(identity));
  return {
    dir,
    identity,
    operatorJwt: await operatorJwt(identity),
    systemAccountJwt: await systemAccountJwt(identity),
    systemAccount: systemAccountPublicKey(identity),
    account: accountPublicKey(identity),
    accountJwt: () => readFileSync(accPath, "utf8").trim(),
    credsPath,
  };
}

/** The auth directory was not the identity directory it was said to be. */
export class NatsAuthDirError extends TaggedError("NatsAuthDirError") {}

/**
 * Loads the auth material of an existing identity (a node given PX_AUTH_DIR):
 * unlike loadOrCreateNatsAuth it never makes a new identity, whose credentials
 * the deployment's nats-server would refuse.
 */
export async function loadNatsAuth(dir: string, what = "PX_AUTH_DIR"): Promise<NatsAuthFiles> {
  if (!existsSync(join(dir, IDENTITY))) {
    throw new NatsAuthDirError(`${what}=${dir}: no ${IDENTITY} there; give the deployment's auth directory (proxist up: <data-dir>/auth; proxist nats-auth --dir DIR), or leave ${what} unset to serve no credentials calls`);
  }
  return loadOrCreateNatsAuth(dir);
}

/** Replaces the stored account JWT (after a revocation). */
export function saveAccountJwt(files: NatsAuthFiles, jwt: string): void {
  writeSecretFile(join(files.dir, ACCOUNT_JWT), jwt);
}

/**
 * nats-server configuration for operator mode with a full resolver: accounts
 * are preloaded and kept in `resolverDir`; updates (revocations) are pushed by
 * the system user on `$SYS.REQ.CLAIMS.UPDATE`. nats-server 2.2+ (so Debian's
 * 2.9 and current releases) read this form.
 */
export function natsAuthConfigLines(files: NatsAuthFiles, resolverDir: string): string[] {
  return [
    `operator: "${files.operatorJwt}"`,
    `system_account: ${files.systemAccount}`,
    `resolver: {`,
    `  type: full`,
    `  dir: "${resolverDir}"`,
    `  allow_delete: false`,
    `  interval: "2m"`,
    `}`,
    `resolver_preload: {`,
    `  ${files.systemAccount}: "${files.systemAccountJwt}"`,
    `  ${files.account}: "${files.accountJwt()}"`,
    `}`,
  ];
}
