// TLS as a user meets it: certificates from `pxctl certs init`'s code, a locked
// nats-server and a node's gRPC/Flight server that speak TLS only, and real
// clients trusting the CA: nats-py with a tenant publisher's .creds ingests,
// pyarrow.flight writes and reads over grpc+tls. Plaintext clients to the TLS
// listeners are refused, with errors that name the fix for our own clients;
// plaintext listeners stay on loopback.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { request as httpsRequest } from "node:https";
import { connect as tcpConnect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProxistClient, channelCredentials, speaksTls, tlsHint } from "../../src/api/index.js";
import { createToken, mintUser } from "../../src/auth/index.js";
import { runPxctl } from "../../src/cli/commands.js";
import { explainNatsTlsError, natsCredsOptions, natsTlsOptions } from "../../src/runtime/natsclient.js";
import { writeSecretFile } from "../../src/runtime/servers/natsauth.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn, serviceCreds, testNatsAuth } from "../helpers/cluster.js";
import { startNode } from "../../src/node/node.js";
import { tlsNatsFixture } from "../helpers/tls.js";
import type { TlsNatsFixture } from "../helpers/tls.js";
import { havePython, pyFlight, PYTHON } from "../api/python.js";
import { status } from "../api/fixture.js";
import { freeBasePort, startLauncher } from "../launcher/launcher.js";
import type { IngestReply } from "../../protocols/ingest.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const PUBLISHER = join(root, "test/ingest/python_publisher.py");

let f: TlsNatsFixture;
let node: ProxistNode;
let grpcPort: number;
let writer: string;
beforeAll(async () => {
  if (!havePython()) throw new Error("the Python venv is missing: run `bash scripts/setup.sh` (it creates .venv with pyarrow and nats-py)");
  f = await tlsNatsFixture();
  node = await nodeOn(f.server, f.nc, { natsCa: f.tls.ca, grpcPort: 0, grpcTls: { cert: f.tls.serverCert, key: f.tls.serverKey } });
  grpcPort = node.grpcPort!;
  writer = await createToken(f.nc, { tenant: "default", role: "writer", ttlSeconds: 3_600 });
}, 60_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

function py(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(PYTHON, args, { timeout: 60_000 }, (err, stdout, stderr) => resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 }));
  });
}

describe("tls - certificates", () => {
  it("certs - keys are mode 0600 in a 0700 dir, and the server and client certificates chain to the CA", () => {
    for (const key of [f.tls.serverKey, f.tls.clientKey, join(f.tls.dir, "ca.key")]) expect(statSync(key).mode & 0o777, key).toBe(0o600);
    expect(statSync(f.tls.dir).mode & 0o777).toBe(0o700);
    const ca = new X509Certificate(readFileSync(f.tls.ca));
    const server = new X509Certificate(readFileSync(f.tls.serverCert));
    const client = new X509Certificate(readFileSync(f.tls.clientCert));
    expect(ca.ca).toBe(true);
    expect(server.verify(ca.publicKey) && client.verify(ca.publicKey)).toBe(true);
    expect(server.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(server.checkHost("localhost")).toBe("localhost");
  });
});

describe("tls - NATS", () => {
  it("nats-py - a tenant publisher with its .creds and the CA ingests over TLS", async () => {
    const creds = join(f.server.dir, "pub.creds");
    writeSecretFile(creds, (await mintUser((await testNatsAuth()).identity, { role: "publisher", tenant: "default", ttlSeconds: 3_600 })).creds);
    const out = await py([PUBLISHER, f.server.url, creds, f.tls.ca]);
    expect(out.code, out.stderr).toBe(0);
    const [good] = out.stdout.trim().split("\n").map((l) => JSON.parse(l) as IngestReply);
    expect(good!.ok).toBe(true);
    if (good!.ok) expect(good!.rows).toBe(4);
  });

  it("nats-py - without the CA the TLS server is refused (certificate not trusted); plaintext nats:// too", async () => {
    const creds = join(f.server.dir, "pub2.creds");
    writeSecretFile(creds, (await mintUser((await testNatsAuth()).identity, { role: "publisher", tenant: "default", ttlSeconds: 3_600 })).creds);
    const noCa = await py([PUBLISHER, f.server.url, creds]);
    expect(noCa.code).not.toBe(0);
    expect(noCa.stderr).toMatch(/CERTIFICATE_VERIFY_FAILED|certificate verify failed/);
    const plain = await py([PUBLISHER, f.server.url.replace("tls://", "nats://"), creds]);
    expect(plain.code).not.toBe(0);
    expect(plain.stdout).toBe("");
  });

  it("nats.js - a client without the CA gets an error naming PX_TLS_CA; pxctl with --tls-ca works, without it says how", async () => {
    const err = await connect({ servers: f.server.url, ...(await serviceCreds()), timeout: 5_000, maxReconnectAttempts: 0 }).then(
      async (nc) => {
        await nc.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(explainNatsTlsError(err, f.server.url, undefined).message).toMatch(/requires TLS.*--tls-ca FILE or PX_TLS_CA/);

    const admin = (await testNatsAuth()).credsPath("admin");
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), readFile: () => Promise.resolve(""), prompt: () => Promise.resolve(""), env: {} };
    expect(await runPxctl(["--nats", f.server.url, "--creds", admin, "--tls-ca", f.tls.ca, "-o", "json", "get", "tenants"], io)).toBe(0);
    expect(out.join("\n")).toContain('"default"');
    out.length = 0;
    expect(await runPxctl(["--nats", f.server.url, "--creds", admin, "get", "tenants"], io)).toBe(3);
    expect(out.join("\n")).toMatch(/requires TLS.*--tls-ca/);
  });

  it("nats.js - pxctl creds revoke against a TLS NATS (--tls-ca) pushes the account update over TLS: the user is disconnected", async () => {
    const auth = await testNatsAuth();
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), readFile: () => Promise.resolve(""), prompt: () => Promise.resolve(""), env: { PX_AUTH_DIR: auth.dir } };
    const pxctl = (...argv: string[]): Promise<number> => runPxctl(["--nats", f.server.url, "--creds", auth.credsPath("admin"), "--tls-ca", f.tls.ca, "-o", "json", ...argv], io);
    const file = join(f.server.dir, "revoked-pub.creds");
    expect(await pxctl("creds", "create", "--tenant", "default", "--role", "publisher", "--out", file), out.join("\n")).toBe(0);
    const made = JSON.parse(out.pop()!) as { id: string };
    const nc = await connect({ servers: f.server.url, maxReconnectAttempts: 0, ...natsCredsOptions(file), ...natsTlsOptions(f.tls.ca) });
    const closed = nc.closed().then(() => "closed");
    expect(await pxctl("creds", "revoke", made.id), out.join("\n")).toBe(0);
    expect(await Promise.race([closed, new Promise((r) => setTimeout(r, 5_000)).then(() => "open")])).toBe("closed");
  });

  it("node - without the CA it refuses to start naming PX_TLS_CA; with a CA against a plaintext NATS it says that NATS has no TLS", async () => {
    await expect(startNode({ natsUrl: f.server.url, natsCa: "", log: () => {} })).rejects.toThrow(/requires TLS.*PX_TLS_CA/);
    const plain = await natsFixture();
    try {
      await expect(startNode({ natsUrl: plain.server.url, natsCa: f.tls.ca, log: () => {} })).rejects.toThrow(/does not speak TLS/);
    } finally {
      await plain.close();
    }
  });
});

describe("tls - gRPC and Arrow Flight", () => {
  it("flight - pyarrow.flight over grpc+tls with the CA: DoPut of a DataFrame and DoGet give the same rows", async () => {
    const out = await pyFlight("roundtrip", { port: grpcPort, token: writer, "tls-ca": f.tls.ca, host: "localhost", rows: 2000, "batch-rows": 500, t0: 1_700_000_000_000_000 });
    expect(out.error, out.message).toBeUndefined();
    expect(out.got_rows).toBe(2000);
    expect(out.equal).toBe(true);
  });

  it("flight - a plaintext pyarrow.flight client to the TLS port is refused", async () => {
    const out = await pyFlight("get", { port: grpcPort, token: writer, query: '{"table":"trades","t0":0,"t1":1}' });
    expect(out.error).toBe("FlightUnavailableError");
  });

  it("grpc - the TS client with channelCredentials(ca) calls Status; a plaintext one fails with a hint naming PX_TLS_CA", async () => {
    const tlsClient = new ProxistClient(`127.0.0.1:${grpcPort}`, channelCredentials(f.tls.ca));
    const ok = await status(tlsClient, writer);
    expect(ok.error).toBeUndefined();
    tlsClient.close();
    const plain = new ProxistClient(`127.0.0.1:${grpcPort}`, channelCredentials(undefined));
    const bad = await status(plain, writer);
    plain.close();
    expect(bad.error?.code).toBe(14);
    expect(await tlsHint(bad.error!, `127.0.0.1:${grpcPort}`, false)).toMatch(/speaks TLS.*PX_TLS_CA/);
    // The reverse: a TLS client to a plaintext port.
    const plainNode = await nodeOn(f.server, f.nc, { natsCa: f.tls.ca, grpcPort: 0, nodeId: "plain-grpc" });
    try {
      const tlsToPlain = new ProxistClient(`127.0.0.1:${plainNode.grpcPort!}`, channelCredentials(f.tls.ca));
      const r = await status(tlsToPlain, writer);
      tlsToPlain.close();
      expect(r.error?.code).toBe(14);
      expect(await tlsHint(r.error!, `127.0.0.1:${plainNode.grpcPort!}`, true)).toMatch(/does not answer TLS/);
    } finally {
      await plainNode.stop();
    }
  });

  it("listeners - the TLS gRPC port answers on every interface; a plaintext node's gRPC and HTTP ports only on loopback", async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a !== undefined && a.family === "IPv4" && !a.internal)?.address;
    if (external === undefined) return; // no interface but loopback: nothing to tell apart
    const reachable = (host: string, port: number): Promise<boolean> =>
      new Promise((resolve) => {
        const s = tcpConnect({ host, port, timeout: 3_000 }, () => {
          s.destroy();
          resolve(true);
        });
        s.once("error", () => resolve(false));
        s.once("timeout", () => {
          s.destroy();
          resolve(false);
        });
      });
    expect(await reachable(external, grpcPort)).toBe(true);
    const plain = await nodeOn(f.server, f.nc, { natsCa: f.tls.ca, grpcPort: 0, nodeId: "plain" });
    try {
      expect(await reachable("127.0.0.1", plain.grpcPort!)).toBe(true);
      expect(await reachable(external, plain.grpcPort!)).toBe(false);
      expect(await reachable(external, plain.httpPort)).toBe(false);
      expect(await reachable(external, f.server.port)).toBe(false); // the test NATS: loopback unless asked
    } finally {
      await plain.stop();
    }
  });
});

/** GET over HTTPS trusting `ca` (undefined: the system's CAs only). */
function httpsGet(port: number, path: string, ca: Buffer | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, path, servername: "localhost", ...(ca === undefined ? {} : { ca }) }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("tls - HTTPS on the node's HTTP port (PX_HTTP_TLS=1)", () => {
  it("https - the API answers over TLS to a client trusting the CA; plaintext and an untrusting client are refused; pxctl query over https with PX_TLS_CA", async () => {
    const n = await startNode({ natsUrl: f.server.url, natsCa: f.tls.ca, httpTls: { cert: f.tls.serverCert, key: f.tls.serverKey }, log: () => {} });
    try {
      const ca = readFileSync(f.tls.ca);
      const deadline = Date.now() + 60_000;
      while ((await httpsGet(n.httpPort, "/readyz", ca)).status !== 200) {
        if (Date.now() > deadline) throw new Error("the HTTPS node did not become ready");
        await new Promise((r) => setTimeout(r, 100));
      }
      await expect(httpsGet(n.httpPort, "/healthz", undefined)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
      await expect(fetch(`http://127.0.0.1:${n.httpPort}/healthz`)).rejects.toThrow();
      const reader = await createToken(f.nc, { tenant: "default", role: "reader", ttlSeconds: 600 });
      const q = (env: Record<string, string>) =>
        new Promise<{ code: number; out: string }>((resolve) =>
          execFile(join(root, "proxist"), ["pxctl", "query", "--url", `https://localhost:${n.httpPort}`, "--token", reader, "-o", "json", "SELECT * FROM trades LIMIT 1"], { cwd: root, env: { ...process.env, PX_SKIP_SETUP: "1", NODE_EXTRA_CA_CERTS: "", ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
          ),
        );
      const trusted = await q({ PX_TLS_CA: f.tls.ca });
      expect(trusted.code, trusted.out).toBe(0);
      const untrusted = await q({ PX_TLS_CA: "" });
      expect(untrusted.code).not.toBe(0);
      expect(untrusted.out).toMatch(/its TLS certificate is not trusted .*PX_TLS_CA=/);
    } finally {
      await n.stop();
    }
  }, 120_000);
});

describe("tls - proxist up --tls", () => {
  it("up --tls - makes the certificates (keys 0600), says how to connect; pxctl and nats-py connect over TLS as printed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "px-up-tls-"));
    const base = await freeBasePort();
    const up = await startLauncher(["--tls", "--no-clickhouse", "--data-dir", dir, "--base-port", String(base)]);
    try {
      const ca = join(dir, "tls", "ca.crt");
      for (const key of ["ca.key", "server.key", "client.key"]) expect(statSync(join(dir, "tls", key)).mode & 0o777, key).toBe(0o600);
      expect(up.output()).toContain(`PX_TLS_CA=${ca}`);
      expect(up.output()).toContain(`tls://127.0.0.1:${base}`);
      expect(up.output()).toContain(`grpc+tls://127.0.0.1:${base + 5}`);
      // pxctl as a user: the data dir's admin credentials and CA (a tls:// URL finds it next to the auth dir).
      const out: string[] = [];
      const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), readFile: () => Promise.resolve(""), prompt: () => Promise.resolve(""), env: { PX_DATA_DIR: dir } };
      const creds = join(dir, "pub.creds");
      expect(await runPxctl(["--nats", `tls://127.0.0.1:${base}`, "creds", "create", "--tenant", "default", "--role", "publisher", "--out", creds], io), out.join("\n")).toBe(0);
      const py_ = await py([PUBLISHER, `tls://127.0.0.1:${base}`, creds, ca]);
      expect(py_.code, py_.stderr).toBe(0);
      expect((JSON.parse(py_.stdout.trim().split("\n")[0]!) as IngestReply).ok).toBe(true);
      expect(await speaksTls(`127.0.0.1:${base + 5}`)).toBe(true);
      // HTTP (API, console, probes) is HTTPS with the same certificate: trusted through the CA, plaintext refused.
      expect(up.output()).toContain(`https://127.0.0.1:${base + 4}/healthz`);
      const health = await httpsGet(base + 4, "/healthz", readFileSync(ca));
      expect(health.status, health.body).toBe(200);
      await expect(fetch(`http://127.0.0.1:${base + 4}/healthz`)).rejects.toThrow();
    } finally {
      await up.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
