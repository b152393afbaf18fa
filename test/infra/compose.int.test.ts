// The docker-compose.yml cluster for real: `./proxist compose up -d --demo`
// (Podman here, on the local images; the first run makes the Debian base and
// the images, later runs reuse them), then everything through the published
// ports, all over TLS (the stack's CA in infra/secrets/tls_ca.crt): pxctl
// status, the console over HTTPS, the demo's ticks, pyarrow.flight over
// grpc+tls against both nodes, a Proxist node and a NATS server stopped, and
// `compose down -v` leaving nothing.
// Run alone: npx vitest run --project int test/infra/compose.int.test.ts
import { execFile, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createToken } from "../../src/auth/index.js";
import { controlRequest } from "../../src/control/index.js";
import type { StatusView } from "../../src/control/index.js";
import { natsCredsOptions } from "../../src/runtime/natsclient.js";
import { PYTHON, havePython } from "../api/python.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const SCRIPT = fileURLToPath(new URL("./compose_flight.py", import.meta.url));
const PROJECT = "proxist";
const NODES = { "proxist-1": { grpc: 50051, http: 8080 }, "proxist-2": { grpc: 50052, http: 8081 } } as const;
type NodeName = keyof typeof NODES;
// NATS in the stack is locked: `compose up` generated this identity; the test and pxctl use its admin role.
const ADMIN_CREDS = `${root}infra/secrets/nats-auth/admin.creds`;
// Clients speak TLS only and trust the stack's CA, also made by `compose up`.
const CA = `${root}infra/secrets/tls_ca.crt`;
const NATS_URL = "tls://127.0.0.1:4222";
const UP_TIMEOUT_MS = 20 * 60_000; // a cold run builds the base and three images (~5 min here); a warm one ~1 min

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (line: string): void => console.log(`compose test: ${line}`);

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: root, timeout: timeoutMs, maxBuffer: 64 << 20, env: { ...process.env, PX_SKIP_SETUP: "1", PX_NATS_CREDS: ADMIN_CREDS, PX_NATS_URL: NATS_URL, PX_TLS_CA: CA } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stderr.slice(-4000)}`));
      else resolve(stdout + stderr);
    });
  });
}
const podman = (...args: string[]): string => spawnSync("podman", args, { encoding: "utf8" }).stdout ?? "";
const container = (service: string): string => `${PROJECT}_${service}_1`;

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await sleep(500);
  }
}

/** GET over HTTPS trusting the stack's CA (`trust` "system": the system's roots only). */
function httpsGet(port: number, path: string, trust: "stack" | "system" = "stack"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, path, ...(trust === "stack" ? { ca: readFileSync(CA) } : {}) }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET https://127.0.0.1:${port}${path}: no answer in 10 s`)));
    req.end();
  });
}

async function clickhouseCount(table: string): Promise<number> {
  // ClickHouse has the password `compose up` generated (infra/secrets/clickhouse_password).
  const password = readFileSync(`${root}/infra/secrets/clickhouse_password`, "utf8").trim();
  const r = await fetch("http://127.0.0.1:8123/", { method: "POST", body: `SELECT count() FROM px_default.${table}`, headers: { authorization: `Basic ${Buffer.from(`default:${password}`).toString("base64")}` } });
  if (!r.ok) throw new Error(`ClickHouse: ${r.status} ${await r.text()}`);
  return Number((await r.text()).trim());
}

async function ingestedRows(node: NodeName): Promise<number> {
  const text = (await httpsGet(NODES[node].http, "/metrics")).body;
  const m = /^px_ingest_rows_accepted_total\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

interface FlightAnswer {
  rows?: number;
  digest?: string;
  metadata?: Record<string, string>;
  error?: string;
  message?: string;
}
function flightQuery(port: number, token: string, query: object): Promise<FlightAnswer> {
  return run(PYTHON, [SCRIPT, "--port", String(port), "--token", token, "--ca", CA, "--query", JSON.stringify(query)], 60_000).then(
    (out) => JSON.parse(out.trim().split("\n").at(-1)!) as FlightAnswer,
  );
}

const liveShards = (s: StatusView): boolean => s.shards.length > 0 && s.shards.every((sh) => sh.state === "running.live");

const engineHere = spawnSync("sh", ["-c", "command -v podman || (command -v apt-get && [ $(id -u) = 0 ])"]).status === 0;

describe("compose cluster (docker-compose.yml on Podman)", () => {
  // No skip: a machine without a container engine (and no root apt-get to install Podman) or without the
  // Python venv is a missing install step, which this test reports instead of passing silently.
  beforeAll(() => {
    if (!engineHere) throw new Error("no container engine: install podman (apt-get install podman runc podman-compose, as root) or run as root so ./proxist compose can");
    if (!havePython()) throw new Error(`no Python client venv at ${PYTHON}: run scripts/setup.sh (./proxist test does)`);
  });
  let nc: NatsConnection;
  let token = "";

  beforeAll(async () => {
    await run("./proxist", ["compose", "down", "-v"], 5 * 60_000).catch(() => "");
    const t0 = Date.now();
    const out = await run("./proxist", ["compose", "up", "-d", "--demo"], UP_TIMEOUT_MS);
    log(`compose up -d --demo took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(out).toContain("compose: up:");
    nc = await connect({ servers: NATS_URL, name: "compose test", maxReconnectAttempts: -1, tls: { caFile: CA }, ...natsCredsOptions(ADMIN_CREDS) });
    token = await until("a reader token", 60_000, () => createToken(nc, { tenant: "default", role: "reader", ttlSeconds: 3_600 }));
  }, UP_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    await nc?.close().catch(() => {});
    const t0 = Date.now();
    await run("./proxist", ["compose", "down", "-v"], 10 * 60_000);
    log(`compose down -v took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Nothing of the project is left: no container, network or volume.
    expect(podman("ps", "-aq", "--filter", `label=io.podman.compose.project=${PROJECT}`).trim()).toBe("");
    expect(podman("volume", "ls", "-q", "--filter", `label=io.podman.compose.project=${PROJECT}`).trim()).toBe("");
    expect(podman("network", "ls", "--format", "{{.Name}}").split("\n")).not.toContain(`${PROJECT}_default`);
  }, 11 * 60_000);

  it("compose - pxctl status shows the leader, both nodes and every shard live", async () => {
    const s = await until("every shard live", 90_000, async () => {
      const v = await controlRequest<StatusView>(nc, "status", {});
      return v.leader && v.nodes.length === 2 && liveShards(v) ? v : undefined;
    });
    expect(s.nodes.map((n) => n.id).sort()).toEqual(["proxist-1", "proxist-2"]);
    expect(["proxist-1", "proxist-2"]).toContain(s.leader!.holder);
    expect(s.shards.length).toBeGreaterThanOrEqual(8); // trades and quotes, 4 buckets each
    const pxctl = await run("./proxist", ["pxctl", "status"], 60_000);
    expect(pxctl).toMatch(/leader: proxist-\d/);
    expect(pxctl).toContain("running.live");
  }, 150_000);

  it("compose - both nodes serve the web console at / over HTTPS; a client not trusting the CA and a plaintext one are refused", async () => {
    for (const node of Object.keys(NODES) as NodeName[]) {
      const r = await httpsGet(NODES[node].http, "/");
      expect(r.status, node).toBe(200);
      expect(r.body, node).toContain("<title>Proxist console</title>");
      await expect(httpsGet(NODES[node].http, "/healthz", "system"), node).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
      const plain = await fetch(`http://127.0.0.1:${NODES[node].http}/healthz`).then((x) => `HTTP ${x.status}`, (e: Error) => `refused: ${e.message}`);
      expect(plain, node).toMatch(/^refused/);
    }
  });

  it("compose - NATS refuses a client without credentials, and one that does not trust the stack's CA", async () => {
    const attempt = (opts: object): Promise<string> =>
      connect({ servers: NATS_URL, name: "compose test, refused", maxReconnectAttempts: 0, ...opts }).then(
        async (c) => (await c.close(), "connected"),
        (e: Error) => `${e.message} ${(e.cause as Error | undefined)?.message ?? ""}`,
      );
    expect(await attempt({ tls: { caFile: CA } })).toMatch(/authorization|authentication/i);
    expect(await attempt(natsCredsOptions(ADMIN_CREDS))).toMatch(/certificate|self[- ]signed|tls/i);
  });

  it("compose - the NATS routes and monitor speak TLS: the members are routed to each other; a plaintext route and a plaintext monitor request are refused", async () => {
    // The cluster formed over TLS with the route certificate and the password: each member sees the other two as routes.
    // The monitor speaks HTTPS only (the stack's certificate); plaintext HTTP gets no JSON.
    const routez = JSON.parse((await httpsGet(8222, "/routez")).body) as { num_routes: number };
    expect(routez.num_routes).toBeGreaterThanOrEqual(2);
    const varz = JSON.parse((await httpsGet(8222, "/varz")).body) as { cluster?: { tls_required?: boolean; tls_verify?: boolean } };
    const plain = await fetch("http://127.0.0.1:8222/varz");
    expect(plain.status).toBe(400);
    expect(await plain.text()).toMatch(/HTTP request to an HTTPS server/);
    expect(varz.cluster).toMatchObject({ tls_required: true, tls_verify: true });
    // From inside the compose network (nats-2's container), a plaintext route CONNECT to nats-1: the port accepts the
    // connection and waits for a TLS handshake, so nothing comes back in clear (before route TLS: INFO, then
    // "Authorization Violation" for a CONNECT without the password).
    const probe = "exec 3<>/dev/tcp/nats-1/6222; printf 'CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"intruder\"}\\r\\nPING\\r\\n' >&3; timeout 3 cat <&3; true";
    const out = spawnSync("podman", ["exec", container("nats-2"), "bash", "-c", probe], { encoding: "utf8", timeout: 20_000 });
    const said = `${out.stdout}${out.stderr}`;
    expect(out.status, said).toBe(0);
    expect(said).not.toMatch(/refused|No route|INFO|PONG|Authorization/i);
  });

  it("compose - the demo's ticks arrive: ingest counters and ClickHouse row counts grow", async () => {
    const before = { ingest: (await ingestedRows("proxist-1")) + (await ingestedRows("proxist-2")), trades: await clickhouseCount("trades").catch(() => 0) };
    await until("ingest and ClickHouse rows grow", 60_000, async () => {
      const ingest = (await ingestedRows("proxist-1")) + (await ingestedRows("proxist-2"));
      const trades = await clickhouseCount("trades");
      return ingest > before.ingest && trades > before.trades ? true : undefined;
    });
  }, 90_000);

  it("compose - pyarrow.flight against either node returns the same complete answer", async () => {
    // A closed window a few seconds back: both nodes must see every tick of it.
    const t1 = Date.now() * 1000 - 3_000_000;
    const query = { table: "trades", t0: t1 - 20_000_000, t1 };
    const [a, b] = await until("both nodes answer", 60_000, async () => {
      const r = await Promise.all([flightQuery(NODES["proxist-1"].grpc, token, query), flightQuery(NODES["proxist-2"].grpc, token, query)]);
      return r.every((x) => x.error === undefined && (x.rows ?? 0) > 0) ? r : undefined;
    });
    expect(a.metadata?.["proxist.complete"]).toBe("true");
    expect(b.metadata?.["proxist.complete"]).toBe("true");
    expect(b.rows).toBe(a.rows);
    expect(b.digest).toBe(a.digest);
  }, 120_000);

  it("compose - podman stop of a Proxist node moves its shards to the other one, nothing lost", async () => {
    const s = await controlRequest<StatusView>(nc, "status", {});
    // Stop the node that owns shards and is not the one pxctl and the test reach NATS through.
    const owners = new Set(s.shards.map((sh) => sh.owner));
    const victim: NodeName = owners.has("proxist-2") ? "proxist-2" : "proxist-1";
    const survivor: NodeName = victim === "proxist-1" ? "proxist-2" : "proxist-1";
    const t1 = Date.now() * 1000 - 3_000_000;
    const query = { table: "trades", t0: t1 - 20_000_000, t1 };
    const before = await flightQuery(NODES[survivor].grpc, token, query);
    expect(before.error).toBeUndefined();
    const stopped = Date.now();
    podman("stop", "-t", "10", container(victim));
    const moved = await until("every shard live on the survivor", 60_000, async () => {
      const v = await controlRequest<StatusView>(nc, "status", {});
      return v.shards.length === s.shards.length && v.shards.every((sh) => sh.owner === survivor && sh.state === "running.live") ? Date.now() : undefined;
    });
    // The issue asks for < 5 s; measured, not asserted (the machine is shared and loaded).
    log(`${victim} stopped: its shards live on ${survivor} after ${((moved - stopped) / 1000).toFixed(1)} s`);
    const after = await until("a complete answer after failover", 60_000, async () => {
      const r = await flightQuery(NODES[survivor].grpc, token, query);
      return r.metadata?.["proxist.complete"] === "true" ? r : undefined;
    });
    expect(after.rows).toBe(before.rows);
    expect(after.digest).toBe(before.digest);
    podman("start", container(victim));
  }, 180_000);

  it("compose - podman stop of one NATS server leaves the cluster working", async () => {
    podman("stop", "-t", "10", container("nats-2"));
    const s = await until("status answers with a leader and live shards", 60_000, async () => {
      const v = await controlRequest<StatusView>(nc, "status", {});
      return v.leader && liveShards(v) ? v : undefined;
    });
    expect(s.leader).toBeDefined();
    const before = await clickhouseCount("trades");
    const beforeIngest = (await ingestedRows("proxist-1").catch(() => 0)) + (await ingestedRows("proxist-2").catch(() => 0));
    await until("ticks still stored and persisted", 60_000, async () => {
      const ingest = (await ingestedRows("proxist-1").catch(() => 0)) + (await ingestedRows("proxist-2").catch(() => 0));
      return (await clickhouseCount("trades")) > before && ingest > beforeIngest ? true : undefined;
    });
    podman("start", container("nats-2"));
  }, 150_000);
});
