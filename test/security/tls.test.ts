// TLS material and secrets without servers: `pxctl certs init`'s arguments and
// files (openssl, keys 0600, kept on a second run, the server certificate
// reissued for new --hosts), the ClickHouse password file a node reads, and
// the error a client without the CA gets.
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parsePxctlArgs } from "../../src/cli/args.js";
import type { CliError} from "../../src/cli/exitcodes.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { CertsError, initCerts, subjectAltNames } from "../../src/runtime/certs.js";
import { clickhouseAuthFromEnv } from "../../src/runtime/clickhouseauth.js";
import { explainNatsTlsError } from "../../src/runtime/natsclient.js";

const tmp = mkdtempSync(join(tmpdir(), "px-tls-unit-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("certs", () => {
  it("certs init - args: --dir, --hosts list, --days; --tls-ca from the flag or PX_TLS_CA; bad --days is a usage error", () => {
    expect(parsePxctlArgs(["certs", "init", "--dir", "d", "--hosts", "a.example, 10.0.0.5", "--days", "30"]).command).toEqual({ kind: "certs.init", dir: "d", hosts: ["a.example", "10.0.0.5"], days: 30 });
    expect(parsePxctlArgs(["status"], { PX_TLS_CA: "/ca.crt" }).tlsCa).toBe("/ca.crt");
    expect(parsePxctlArgs(["status", "--tls-ca", "x.crt"], { PX_TLS_CA: "/ca.crt" }).tlsCa).toBe("x.crt");
    const err = (() => {
      try {
        parsePxctlArgs(["certs", "init", "--days", "0"]);
      } catch (e) {
        return e as CliError;
      }
      return undefined;
    })();
    expect(err?.code).toBe(EXIT.usage);
    expect(err?.message).toMatch(/--days 0: give a whole number of days/);
  });

  it("certs init - a host that is not a name or an address is refused by name", () => {
    expect(subjectAltNames(["nats-1", "10.1.2.3"])).toEqual(expect.arrayContaining(["DNS:localhost", "DNS:nats-1", "IP:127.0.0.1", "IP:10.1.2.3"]));
    expect(() => subjectAltNames(["bad host"])).toThrow(CertsError);
    expect(() => subjectAltNames(["bad host"])).toThrow(/--hosts bad host: not a host name or IP address/);
  });

  it("certs init - keys 0600 even under a permissive umask, kept on a second run, server certificate reissued for new hosts by the same CA", () => {
    const dir = join(tmp, "tls");
    const old = process.umask(0o000);
    let first;
    try {
      first = initCerts({ dir, hosts: ["nats-1"] });
    } finally {
      process.umask(old);
    }
    expect(first.created).toHaveLength(6);
    for (const k of ["ca.key", "server.key", "client.key"]) expect(statSync(join(dir, k)).mode & 0o777, k).toBe(0o600);
    const ca = readFileSync(first.files.ca, "utf8");
    expect(initCerts({ dir, hosts: ["nats-1"] }).created).toEqual([]);
    const again = initCerts({ dir, hosts: ["nats-2"] });
    expect(again.created).toEqual([first.files.serverKey, first.files.serverCert]);
    expect(readFileSync(first.files.ca, "utf8")).toBe(ca);
    const server = new X509Certificate(readFileSync(again.files.serverCert));
    expect(server.checkHost("nats-2")).toBe("nats-2");
    expect(server.verify(new X509Certificate(ca).publicKey)).toBe(true);
  });
});

describe("secrets and errors", () => {
  it("clickhouse auth - password from a file (its trailing newline dropped), default user; a missing file names the variable", () => {
    const f = join(tmp, "pw");
    writeFileSync(f, "s3cret\n", { mode: 0o600 });
    expect(clickhouseAuthFromEnv({ PX_CLICKHOUSE_PASSWORD_FILE: f })).toEqual({ user: "default", password: "s3cret" });
    expect(clickhouseAuthFromEnv({ PX_CLICKHOUSE_USER: "px", PX_CLICKHOUSE_PASSWORD_FILE: f })).toEqual({ user: "px", password: "s3cret" });
    expect(clickhouseAuthFromEnv({})).toBeUndefined();
    expect(() => clickhouseAuthFromEnv({ PX_CLICKHOUSE_PASSWORD_FILE: join(tmp, "nope") })).toThrow(/PX_CLICKHOUSE_PASSWORD_FILE=.*nope: cannot read the ClickHouse password/);
  });

  it("nats tls errors - an untrusted certificate names --tls-ca and PX_TLS_CA; a server without TLS says so; others pass through", () => {
    const untrusted = Object.assign(new Error("unable to verify the first certificate"), { code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
    expect(explainNatsTlsError(untrusted, "tls://h:4222", undefined).message).toMatch(/requires TLS.*--tls-ca FILE or PX_TLS_CA/);
    expect(explainNatsTlsError(untrusted, "tls://h:4222", "/ca.crt").message).toMatch(/TLS handshake failed with CA \/ca\.crt/);
    expect(explainNatsTlsError(new Error("server does not support 'tls'"), "nats://h:4222", "/ca.crt").message).toMatch(/does not speak TLS.*drop --tls-ca/);
    const other = new Error("Authorization Violation");
    expect(explainNatsTlsError(other, "nats://h:4222", undefined)).toBe(other);
  });
});
