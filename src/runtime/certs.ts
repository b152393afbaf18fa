// The TLS material of one deployment (`pxctl certs init`, `proxist up --tls`):
// a private CA, a server certificate for NATS and the gRPC/Flight API, and a
// client certificate, made with the openssl CLI (node:crypto cannot sign X.509).
// Keys are mode 0600. Files that exist are kept: running it again is a no-op.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { hostname } from "node:os";
import { isIP } from "node:net";
import { join } from "node:path";
import { TaggedError } from "../../protocols/tagged.js";

/** A certificate problem a person can fix (openssl missing, a bad host name). */
export class CertsError extends TaggedError("CertsError") {}

export interface TlsFiles {
  readonly dir: string;
  /** The CA certificate clients trust (--tls-ca, PX_TLS_CA). */
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

export interface CertsInitOptions {
  readonly dir: string;
  /** Names and addresses the server certificate is valid for, besides localhost and 127.0.0.1. */
  readonly hosts?: readonly string[];
  /** Validity of the certificates (default 825 days: what browsers and macOS accept for a leaf). */
  readonly days?: number;
}

/** The files of `certs init` in `dir` (whether or not they exist yet). */
export function tlsFilesIn(dir: string): TlsFiles {
  return {
    dir,
    ca: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key"),
  };
}

const CA_KEY = "ca.key";
const HOST_RE = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/;

function openssl(args: readonly string[]): void {
  try {
    execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === "ENOENT") throw new CertsError("openssl is not installed; run `bash scripts/setup.sh` (it installs it with apt-get) or apt-get install openssl", { cause: e });
    throw new CertsError(`openssl ${args[0]} failed: ${err.stderr?.toString().trim() ?? err.message}`, { cause: e });
  }
}

/** subjectAltName entries: localhost, 127.0.0.1, ::1, this machine's name and `hosts`. */
export function subjectAltNames(hosts: readonly string[]): string[] {
  const names = new Set(["localhost", hostname(), ...hosts]);
  const ips = new Set(["127.0.0.1", "::1"]);
  for (const h of [...names]) {
    if (isIP(h)) {
      names.delete(h);
      ips.add(h);
    } else if (!HOST_RE.test(h)) {
      throw new CertsError(`--hosts ${h.slice(0, 80)}: not a host name or IP address (letters, digits, '-' and '.'; e.g. nats.example.com or 10.0.0.5)`);
    }
  }
  return [...[...names].map((n) => `DNS:${n}`), ...[...ips].map((ip) => `IP:${ip}`)];
}

function newKey(path: string): void {
  // Created 0600 before openssl writes into it, so the key is never readable by others, not even briefly.
  writeFileSync(path, "", { mode: 0o600 });
  // EC P-256: every client here (Go's nats-server, grpc-js, Python's ssl, gRPC C core) takes it.
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path]);
  chmodSync(path, 0o600);
}

function signLeaf(dir: string, name: string, subject: string, ext: string, days: number): void {
  const f = tlsFilesIn(dir);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  newKey(key);
  openssl(["req", "-new", "-key", key, "-subj", subject, "-out", csr]);
  writeFileSync(extFile, ext);
  try {
    openssl(["x509", "-req", "-in", csr, "-CA", f.ca, "-CAkey", join(dir, CA_KEY), "-CAcreateserial", "-days", String(days), "-sha256", "-extfile", extFile, "-out", join(dir, `${name}.crt`)]);
  } finally {
    rmSync(csr, { force: true });
    rmSync(extFile, { force: true });
  }
}

/**
 * Creates what is missing in `dir` (mode 0700): ca.key/ca.crt, server.key/server.crt
 * (serverAuth, for `hosts`), client.key/client.crt (clientAuth). Returns the paths
 * and which files it wrote.
 */
export function initCerts(o: CertsInitOptions): { files: TlsFiles; created: string[] } {
  const days = o.days ?? 825;
  const sans = subjectAltNames(o.hosts ?? []);
  mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  chmodSync(o.dir, 0o700);
  const f = tlsFilesIn(o.dir);
  const created: string[] = [];
  const caKey = join(o.dir, CA_KEY);
  if (!existsSync(caKey) || !existsSync(f.ca)) {
    newKey(caKey);
    openssl(["req", "-x509", "-new", "-key", caKey, "-subj", "/O=Proxist/CN=Proxist local CA", "-days", String(days * 2), "-sha256", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", f.ca]);
    created.push(caKey, f.ca);
    // Certificates signed by an earlier CA would not verify against the new one.
    for (const p of [f.serverCert, f.clientCert]) rmSync(p, { force: true });
  }
  // New --hosts: the server certificate is reissued (same CA, so clients keep trusting it).
  if (existsSync(f.serverCert) && !namesAll(f.serverCert, sans)) rmSync(f.serverCert);
  if (!existsSync(f.serverCert) || !existsSync(f.serverKey)) {
    signLeaf(o.dir, "server", "/O=Proxist/CN=proxist server", `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(",")}\n`, days);
    created.push(f.serverKey, f.serverCert);
  }
  if (!existsSync(f.clientCert) || !existsSync(f.clientKey)) {
    signLeaf(o.dir, "client", "/O=Proxist/CN=proxist client", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n", days);
    created.push(f.clientKey, f.clientCert);
  }
  rmSync(join(o.dir, "ca.srl"), { force: true });
  return { files: f, created };
}

/**
 * A certificate for NATS routes (cluster members dialing each other) in `dir`,
 * next to what initCerts made there (its CA must exist): route.key/route.crt,
 * for `hosts` and with both serverAuth and clientAuth, because nats-server
 * verifies the certificate a dialing member presents as a client certificate
 * (route TLS is always mutual) while the member it dials presents it as a
 * server certificate. Made once; reissued when `hosts` change.
 */
export function initRouteCert(o: CertsInitOptions): { cert: string; key: string; created: boolean } {
  const days = o.days ?? 825;
  const sans = subjectAltNames(o.hosts ?? []);
  const cert = join(o.dir, "route.crt");
  const key = join(o.dir, "route.key");
  if (!existsSync(tlsFilesIn(o.dir).ca) || !existsSync(join(o.dir, CA_KEY))) throw new CertsError(`${o.dir}: no CA to sign the route certificate with; make it first (pxctl certs init --dir ${o.dir})`);
  if (existsSync(cert) && existsSync(key) && namesAll(cert, sans) && signedBy(cert, tlsFilesIn(o.dir).ca)) return { cert, key, created: false };
  signLeaf(o.dir, "route", "/O=Proxist/CN=proxist nats route", `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${sans.join(",")}\n`, days);
  rmSync(join(o.dir, "ca.srl"), { force: true });
  return { cert, key, created: true };
}

/** Whether `certPath` was signed by the CA in `caPath` (a CA made anew invalidates it). */
function signedBy(certPath: string, caPath: string): boolean {
  return new X509Certificate(readFileSync(certPath)).checkIssued(new X509Certificate(readFileSync(caPath)));
}

/** Does the certificate name every subjectAltName entry in `sans` ("DNS:x", "IP:y")? */
function namesAll(certPath: string, sans: readonly string[]): boolean {
  const x = new X509Certificate(readFileSync(certPath));
  return sans.every((san) => (san.startsWith("IP:") ? x.checkIP(san.slice(3)) !== undefined : x.checkHost(san.slice(4), { wildcards: false }) !== undefined));
}

/** The server certificate's subjectAltName line (what `certs init` prints). */
export function certificateNames(certPath: string): string {
  return new X509Certificate(readFileSync(certPath)).subjectAltName ?? "";
}
