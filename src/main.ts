// Proxist entry point.
//   up    — a local single-node cluster on the embedded default: nats-server with
//           JetStream, clickhouse-server when installed, one Proxist node, the
//           default tenant with tables trades and quotes; --demo streams ticks.
//   node  — one Proxist node against an existing NATS (and ClickHouse).
//   demo  — the random-walk demo publisher against an existing cluster.
//   nats-auth — the NATS identity for a NATS you run yourself (compose): creds files and a config include.
import { parseArgs } from "node:util";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { connect } from "@nats-io/transport-node";
import { DEFAULT_PORTS, ENV } from "./config/defaults.js";
import { DEFAULT_CLUSTER_SPEC } from "../protocols/tablespec.js";
import { startNatsServer } from "./runtime/servers/nats.js";
import { loadOrCreateNatsAuth, natsAuthConfigLines, writeSecretFile } from "./runtime/servers/natsauth.js";
import { NATS_CREDS_ENV, TLS_CA_ENV, natsCredsOptions, natsTlsOptions } from "./runtime/natsclient.js";
import { initCerts } from "./runtime/certs.js";
import type { TlsFiles } from "./runtime/certs.js";
import { clickhouseAuthFromEnv } from "./runtime/clickhouseauth.js";
import type { NatsServer } from "./runtime/servers/nats.js";
import { hasClickhouseBinary, startClickhouseServer } from "./runtime/servers/clickhouse.js";
import type { ClickhouseServer } from "./runtime/servers/clickhouse.js";
import { portInUse } from "./runtime/servers/portcheck.js";
import { watchParent } from "./runtime/servers/watchdog.js";
import { DataDirInUseError, reapStale, removeUpState, writeUpState } from "./runtime/servers/upstate.js";
import type { UpServer } from "./runtime/servers/upstate.js";
import { startNode } from "./node/node.js";
import type { ProxistNode } from "./node/node.js";
import { startDemoPublisher } from "./demo/publisher.js";
import { WELL_KNOWN_SYMBOLS } from "./demo/randomwalk.js";
import { createToken } from "./auth/index.js";
import { createLogger, enableContext, lineLog, startTracing, tracingOptionsFromEnv } from "./node/obs/index.js";
import { controlRequest } from "./control/index.js";
import type { GetReply } from "./control/index.js";

/** Queries `up --demo` prints, ready to paste (scripts/query.py turns "now-5m" into microseconds). */
const DEMO_QUERIES = [
  `{"op":"lastBy","table":"trades","symbols":["AAPL","MSFT","NVDA"]}`,
  `{"op":"bars","table":"trades","symbols":["AAPL"],"t0":"now-5m","t1":"now","bucket":"1m","fill":"previous"}`,
  `{"op":"asof","table":"trades","symbols":["MSFT"],"t0":"now-1m","t1":"now","right":{"table":"quotes","columns":["bid","ask"]}}`,
];

/** What `up` prints for people (the banner, the demo's queries); the node's own records go through `nodeLog`. */
const log = (line: string): void => console.log(line);

/** The node's log: JSON records (pino), readable lines on a terminal; PX_LOG_LEVEL, PX_LOG_FORMAT. */
function nodeLog(nodeId: string): (line: string) => void {
  enableContext();
  // PX_TRACE_SAMPLE (0..1, default off) and PX_OTLP_URL: spans of sampled batches and queries go to an OTLP collector.
  startTracing(tracingOptionsFromEnv(process.env));
  return lineLog(createLogger({ nodeId }));
}

/** Environment switch of the sink's negative-control test; never set it in production. */
const UNSAFE_SKIP_LANDED_CHECK = "PX_SINK_UNSAFE_SKIP_LANDED_CHECK";

const USAGE = `usage:
  proxist up   [--demo] [--rate TICKS_PER_S] [--data-dir DIR] [--no-clickhouse] [--base-port N] [--tls]
  proxist node [--nats URL[,URL...]] [--creds FILE] [--clickhouse URL] [--http-port N] [--grpc-port N] [--node-id ID] [--snapshot-interval-ms N] [--sink-batch-ms N]
               [--shards all|assigned|none] [--replicas N]
  proxist nats-auth --dir DIR [--resolver-dir DIR]
  proxist demo [--nats URL] [--creds FILE] [--tls-ca FILE] [--rate TICKS_PER_S] [--symbols N]
  node and demo read PX_TLS_CA (the CA of a NATS with TLS); node also PX_TLS_CERT/PX_TLS_KEY (gRPC/Flight TLS; with PX_HTTP_TLS=1 HTTPS too), PX_GRPC_HOST,
  and PX_AUTH_DIR (the NATS auth directory: the node then holds the account key and serves the gRPC credentials calls)`;

class UsageError extends Error {}

/** "nats://a:4222,nats://b:4222" -> the cluster members; one URL stays a string. */
function natsServers(v: string): string | string[] {
  const list = v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (list.length === 0) throw new UsageError("--nats (PX_NATS_URL) is empty");
  return list.length === 1 ? list[0]! : list;
}

function intOption(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got "${v}"`);
  return n;
}

/**
 * The sink's flush delay: how long a WAL record may wait for others before its
 * INSERT. Longer makes fewer, larger ClickHouse parts (fewer merges) and a
 * longer persistence lag; undefined keeps the default.
 */
function sinkBatchDelay(v: string | undefined): number | undefined {
  if (v === undefined || v === "") return undefined;
  const n = intOption(v, "sink-batch-ms", 0);
  if (n < 10 || n > 60_000) throw new UsageError(`--sink-batch-ms (${ENV.sinkBatchMs}) must be 10 to 60000 milliseconds, got ${v}; the persistence lag is about this long plus the INSERT`);
  return n;
}

async function requireFreePort(port: number, what: string, flagHint: string): Promise<void> {
  if (await portInUse(port)) {
    throw new UsageError(`port ${port} (${what}) is already in use on 127.0.0.1; stop what holds it or ${flagHint}`);
  }
}

/** Runs until SIGINT/SIGTERM, then calls the cleanups in reverse order. */
function untilSignal(cleanups: (() => Promise<void>)[]): Promise<void> {
  return new Promise((done) => {
    let stopping = false;
    const stop = async (sig: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log(`\n${sig}: stopping...`);
      for (const c of cleanups.reverse()) await c().catch((e: unknown) => log(`  cleanup failed: ${(e as Error).message}`));
      log("stopped.");
      done();
    };
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGTERM", () => void stop("SIGTERM"));
  });
}

/** Test-only: `up` starts no watchdogs (the negative control of the orphan reaping). */
const NO_WATCHDOG = "PX_UP_UNSAFE_NO_WATCHDOG";

type UpPorts = { readonly [K in keyof typeof DEFAULT_PORTS]: number };

/** The default ports, or six consecutive ones from --base-port (NATS, its monitor, ClickHouse HTTP and native, node HTTP, gRPC). */
function portsFrom(base: string | undefined): UpPorts {
  if (base === undefined) return DEFAULT_PORTS;
  const b = intOption(base, "base-port", 0);
  if (b < 1024 || b > 65_530) throw new UsageError(`--base-port must be 1024 to 65530 (it uses six ports from there), got ${b}`);
  return { nats: b, natsMonitor: b + 1, clickhouseHttp: b + 2, clickhouseTcp: b + 3, http: b + 4, grpc: b + 5 };
}

async function up(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      demo: { type: "boolean", default: false },
      rate: { type: "string" },
      "data-dir": { type: "string" },
      "no-clickhouse": { type: "boolean", default: false },
      "base-port": { type: "string" },
      tls: { type: "boolean", default: false },
    },
  });
  const dataDir = resolve(values["data-dir"] ?? process.env[ENV.dataDir] ?? ".data");
  mkdirSync(dataDir, { recursive: true });
  const ports = portsFrom(values["base-port"]);
  // Servers a SIGKILLed launcher left on this data dir are stopped first (proxist-up.json says which).
  await reapStale(dataDir, log).catch((e: unknown) => {
    throw e instanceof DataDirInUseError ? new UsageError(e.message) : e;
  });
  const started: UpServer[] = [];
  const record = (name: string, pid: number): void => {
    started.push({ name, pid });
    writeUpState({ launcherPid: process.pid, startedAt: new Date().toISOString(), dataDir, servers: started });
    // Test-only switch: no watchdog, so the next `up` has to reap the orphans itself.
    if (process.env[NO_WATCHDOG] !== "1") watchParent(pid);
  };
  const cleanups: (() => Promise<void>)[] = [async () => removeUpState(dataDir)];
  let nats: NatsServer | undefined;
  let ch: ClickhouseServer | undefined;
  let node: ProxistNode | undefined;
  try {
    await requireFreePort(ports.nats, "NATS", "use `proxist node --nats URL` against your own NATS, or --base-port N");
    await requireFreePort(ports.http, "Proxist HTTP", "free it or pass --base-port N");
    log(`starting nats-server (JetStream data in ${dataDir}/nats) ...`);
    // NATS runs locked: operator-mode JWT auth; the identity and the service/admin credentials live in <data-dir>/auth (0600).
    const auth = await loadOrCreateNatsAuth(`${dataDir}/auth`);
    // --tls: NATS and gRPC/Flight speak TLS only (certificates of <data-dir>/tls, made on first use) and listen on every interface;
    // the HTTP port (API, console, metrics) speaks HTTPS with the same certificate and stays on loopback (PX_HTTP_HOST widens it).
    const tls: TlsFiles | undefined = values.tls ? initCerts({ dir: `${dataDir}/tls` }).files : undefined;
    // PX_NATS_SYNC: JetStream fsync ("always" or a duration; nats-server 2.10+), see src/runtime/servers/natssync.ts.
    nats = await startNatsServer({ dir: `${dataDir}/nats`, port: ports.nats, monitorPort: ports.natsMonitor, serverName: "px_local", auth, ...(tls ? { tls: { cert: tls.serverCert, key: tls.serverKey }, host: "0.0.0.0" } : {}), ...(process.env.PX_NATS_SYNC ? { syncInterval: process.env.PX_NATS_SYNC } : {}) });
    record("nats-server", nats.pid);
    cleanups.push(() => nats!.stop());

    if (values["no-clickhouse"]) {
      log("clickhouse: skipped (--no-clickhouse); ticks stay in the WAL and RAM only");
    } else if (!hasClickhouseBinary()) {
      log("clickhouse: NOT STARTED — clickhouse-server is not installed (run `bash scripts/setup.sh` or apt-get install clickhouse-server); ticks stay in the WAL and RAM only");
    } else {
      await requireFreePort(ports.clickhouseHttp, "ClickHouse HTTP", "pass --no-clickhouse or --base-port N");
      log(`starting clickhouse-server (data in ${dataDir}/clickhouse) ...`);
      ch = await startClickhouseServer({ dir: `${dataDir}/clickhouse`, httpPort: ports.clickhouseHttp, tcpPort: ports.clickhouseTcp });
      record("clickhouse-server", ch.pid);
      cleanups.push(() => ch!.stop());
    }

    await requireFreePort(ports.grpc, "Proxist gRPC/Flight", "free it or pass --base-port N");
    // "assigned": the node runs the control plane too (it elects itself leader), so pxctl works against it.
    // authDir: the node serves the gRPC credentials calls (ProxistAdmin CreateCreds...) with the identity up made.
    node = await startNode({ natsUrl: nats.url, natsCreds: auth.credsPath("service"), authDir: auth.dir, ...(tls ? { natsCa: tls.ca, grpcTls: { cert: tls.serverCert, key: tls.serverKey }, httpTls: { cert: tls.serverCert, key: tls.serverKey } } : {}), nodeId: "local", httpPort: ports.http, grpcPort: ports.grpc, shards: "assigned", log: nodeLog("local"), ...(ch ? { clickhouseUrl: ch.httpUrl } : {}) });
    cleanups.push(() => node!.stop());
    const store = node.store;
    const existing = await store.tenants();
    if (!existing.has("default")) {
      await store.applyCurrent(DEFAULT_CLUSTER_SPEC);
      log("applied the default spec: tenant default, tables trades (sym, ts, price, size) and quotes (sym, ts, bid, ask, bid_size, ask_size)");
    } else {
      log("tenant default already exists; kept its spec");
    }

    log("");
    log("Proxist local cluster is up:");
    const web = `${tls ? "https" : "http"}://127.0.0.1:${node.httpPort}`;
    if (tls) log(`  TLS         NATS, gRPC/Flight and HTTP speak TLS only; clients trust ${tls.ca} (export ${TLS_CA_ENV}=${tls.ca}; Python: ssl.create_default_context(cafile=...), flight.connect("grpc+tls://...", tls_root_certs=...))`);
    log(`  NATS        ${nats.url}   (monitor http://127.0.0.1:${nats.monitorPort}); locked: credentials in ${auth.dir} (admin.creds for pxctl, service.creds for nodes; tenant ones: pxctl creds create)`);
    log(`  ingest      px.default.ingest.trades | px.default.ingest.quotes  (Arrow IPC; request/reply acks with LSNs)`);
    log(`  WAL         stream PX_WAL_default, subjects px.default.wal.<table>.<bucket>`);
    log(`  ClickHouse  ${ch ? ch.httpUrl : "not running"}`);
    log(`  HTTP        ${web}/healthz  /readyz  /metrics  /v1/shards  /v1/query (SQL)  /v1/ingest/<table>`);
    log(`  gRPC/Flight ${tls ? "grpc+tls" : "grpc"}://127.0.0.1:${node.grpcPort}  (proxist.v1 and Arrow Flight; tokens: ./proxist pxctl token create --tenant default --role writer)`);
    log(`  console     ${web}/  (web console: SQL, charts, live board, cluster; sign in with an API token)`);
    log(`  pxctl       ./proxist pxctl status`);
    log("Ctrl-C stops everything.");

    if (values.demo) {
      const tenant = DEFAULT_CLUSTER_SPEC.tenants[0]!;
      // The node serves a tenant once its WAL stream exists: the demo's first ticks must not arrive before.
      const served = Date.now() + 30_000;
      while (!node.catalog().get(tenant.name)?.has("quotes") && Date.now() < served) await new Promise((r) => setTimeout(r, 50));
      const nc = await connect({ servers: nats.url, name: "proxist demo", ...natsCredsOptions(auth.credsPath("service")), ...natsTlsOptions(tls?.ca) });
      const demo = startDemoPublisher(nc, {
        tenant: tenant.name,
        trades: tenant.tables.find((t) => t.name === "trades")!,
        quotes: tenant.tables.find((t) => t.name === "quotes")!,
        ticksPerSecond: intOption(values.rate, "rate", 10_000),
        symbols: 100,
        log,
      });
      cleanups.push(async () => {
        await demo.stop();
        await nc.close();
      });
      log(`demo publisher: streaming ${intOption(values.rate, "rate", 10_000)} ticks/s of random-walk trades and quotes over 100 symbols (${WELL_KNOWN_SYMBOLS.join(", ")} and synthetic ones)`);
      const seeded = await demo.seeded.then(
        () => true,
        () => false,
      );
      if (!seeded) return untilSignal(cleanups);
      // A reader token for the printed examples (only its hash is stored; it is shown once, here).
      const token = await createToken(node.nc, { tenant: tenant.name, role: "reader", ttlSeconds: 86_400 });
      const grpc = `${ports.grpc === DEFAULT_PORTS.grpc ? "" : `PX_GRPC=127.0.0.1:${ports.grpc} `}${tls ? `${TLS_CA_ENV}=${tls.ca} ` : ""}`;
      log("");
      log("Every symbol has ticked. Try (a reader token valid 24 h was created for these):");
      log(`  export TOKEN=${token}`);
      for (const q of DEMO_QUERIES) log(`  ${grpc}.venv/bin/python scripts/query.py '${q}'`);
      const http = node.httpPort === DEFAULT_PORTS.http && !tls ? "" : ` --url ${web}`;
      const pxctl = `${tls ? `${TLS_CA_ENV}=${tls.ca} ` : ""}./proxist pxctl`;
      log(`  ${pxctl} query${http} --token $TOKEN "SELECT * FROM trades WHERE ts > now() - INTERVAL '1m' LATEST ON ts PARTITION BY sym"`);
      log(`  ${pxctl} sql${http} --token $TOKEN        (SQL prompt; HTTP: POST /v1/query, POST /v1/ingest/<table>)`);
      log(`  open ${web}/ and sign in with $TOKEN     (the web console)`);
    }
  } catch (e) {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    throw e;
  }
  await untilSignal(cleanups);
}

async function nodeCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      nats: { type: "string" },
      creds: { type: "string" },
      clickhouse: { type: "string" },
      "http-port": { type: "string" },
      "grpc-port": { type: "string" },
      "node-id": { type: "string" },
      "snapshot-interval-ms": { type: "string" },
      "sink-batch-ms": { type: "string" },
      shards: { type: "string" },
      replicas: { type: "string" },
    },
  });
  // A comma-separated list names the members of a NATS cluster.
  const natsUrl = natsServers(values.nats ?? process.env[ENV.natsUrl] ?? `nats://127.0.0.1:${DEFAULT_PORTS.nats}`);
  // Streams and KV buckets: 1 replica on one NATS server, 3 on a cluster.
  const replicas = intOption(values.replicas ?? process.env[ENV.replicas], "replicas", 1);
  if (replicas < 1 || replicas > 5) throw new UsageError(`--replicas (${ENV.replicas}) must be 1 to 5, got ${replicas}`);
  const grpcPort = intOption(values["grpc-port"] ?? process.env[ENV.grpcPort], "grpc-port", DEFAULT_PORTS.grpc);
  const httpPort = intOption(values["http-port"] ?? process.env[ENV.httpPort], "http-port", DEFAULT_PORTS.http);
  const nodeId = values["node-id"] ?? process.env[ENV.nodeId] ?? `node-${process.pid}`;
  const log = nodeLog(nodeId);
  const httpHost = process.env[ENV.httpHost];
  const snapshotIntervalMs = intOption(values["snapshot-interval-ms"], "snapshot-interval-ms", 60_000);
  const sinkBatchMs = sinkBatchDelay(values["sink-batch-ms"] ?? process.env[ENV.sinkBatchMs]);
  const shards = values.shards ?? "all";
  if (shards !== "all" && shards !== "none" && shards !== "assigned") throw new UsageError(`--shards must be all, none or assigned, got "${shards}"`);
  const clickhouseUrl = values.clickhouse ?? process.env[ENV.clickhouseUrl];
  // Test-only negative control: sinks that never ask what landed (duplicates after a crash).
  const unsafeSkipLandedCheck = process.env[UNSAFE_SKIP_LANDED_CHECK] === "1";
  if (unsafeSkipLandedCheck) log(`WARNING: ${UNSAFE_SKIP_LANDED_CHECK}=1: sinks skip the landed-LSN check; retries and restarts WILL duplicate rows (tests only)`);
  const natsCreds = values.creds ?? process.env[NATS_CREDS_ENV];
  const tlsCert = process.env[ENV.tlsCert];
  const tlsKey = process.env[ENV.tlsKey];
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError(`${ENV.tlsCert} and ${ENV.tlsKey} go together (the gRPC server's certificate and its key); set both or neither`);
  const grpcHost = process.env[ENV.grpcHost];
  // HTTPS on the HTTP port with the same certificate: asked for explicitly, as health probes and scrapers must then speak TLS.
  const httpTlsFlag = process.env[ENV.httpTls];
  if (httpTlsFlag !== undefined && httpTlsFlag !== "" && httpTlsFlag !== "0" && httpTlsFlag !== "1") throw new UsageError(`${ENV.httpTls}=${httpTlsFlag}: use 1 (HTTPS) or 0 (plaintext)`);
  const httpTls = httpTlsFlag === "1";
  if (httpTls && !(tlsCert && tlsKey)) throw new UsageError(`${ENV.httpTls}=1 serves HTTPS with ${ENV.tlsCert} and ${ENV.tlsKey}: set both (pxctl certs init writes server.crt and server.key)`);
  const clickhouseAuth = clickhouseAuthFromEnv(process.env);
  const node = await startNode({
    natsUrl,
    ...(natsCreds ? { natsCreds } : {}),
    ...(tlsCert && tlsKey ? { grpcTls: { cert: tlsCert, key: tlsKey } } : {}),
    ...(httpTls && tlsCert && tlsKey ? { httpTls: { cert: tlsCert, key: tlsKey } } : {}),
    ...(grpcHost ? { grpcHost } : {}),
    ...(clickhouseAuth ? { clickhouseAuth } : {}),
    httpPort,
    grpcPort,
    replicas,
    log,
    snapshotIntervalMs,
    shards,
    nodeId,
    ...(httpHost ? { httpHost } : {}),
    ...(clickhouseUrl ? { clickhouseUrl } : {}),
    sink: { ...(unsafeSkipLandedCheck ? { unsafeSkipLandedCheck } : {}), ...(sinkBatchMs === undefined ? {} : { limits: { maxBatchDelayMs: sinkBatchMs } }) },
  });
  await untilSignal([() => node.stop()]);
}

/**
 * A fresh cluster (docker-compose.yml) has no spec: the demo declares the default
 * tenant through the leader, as `up` does, and keeps a tenant that exists already.
 * Nodes may still be starting, so it asks again for up to a minute.
 */
async function declareDefaultTenant(nc: Awaited<ReturnType<typeof connect>>, tenant: string): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    try {
      const tenants = await controlRequest<GetReply>(nc, "get", { kind: "tenants" });
      if (tenants.kind === "tenants" && tenants.items.some((t) => t.name === tenant)) return;
      await controlRequest(nc, "apply", { spec: DEFAULT_CLUSTER_SPEC, dryRun: false });
      log(`demo: applied the default spec (tenant ${tenant}, tables trades and quotes)`);
      return;
    } catch (e) {
      if (Date.now() > until) throw new Error(`demo: cannot declare tenant ${tenant}: ${(e as Error).message}; apply a spec with pxctl apply -f`, { cause: e });
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

async function demoCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { nats: { type: "string" }, creds: { type: "string" }, "tls-ca": { type: "string" }, rate: { type: "string" }, symbols: { type: "string" } } });
  const natsUrl = values.nats ?? process.env[ENV.natsUrl] ?? `nats://127.0.0.1:${DEFAULT_PORTS.nats}`;
  const nc = await connect({ servers: natsServers(natsUrl), name: "proxist demo", maxReconnectAttempts: -1, ...natsCredsOptions(values.creds ?? process.env[NATS_CREDS_ENV]), ...natsTlsOptions(values["tls-ca"] ?? process.env[TLS_CA_ENV]) });
  const tenant = DEFAULT_CLUSTER_SPEC.tenants[0]!;
  await declareDefaultTenant(nc, tenant.name);
  const demo = startDemoPublisher(nc, {
    tenant: tenant.name,
    trades: tenant.tables.find((t) => t.name === "trades")!,
    quotes: tenant.tables.find((t) => t.name === "quotes")!,
    ticksPerSecond: intOption(values.rate, "rate", 10_000),
    symbols: intOption(values.symbols, "symbols", 100),
    log,
  });
  await untilSignal([() => demo.stop(), () => nc.close()]);
}

/**
 * Creates (or keeps) the NATS identity in --dir and writes nats-auth.conf, to
 * `include` in a nats-server config: operator mode, full resolver in
 * --resolver-dir (default DIR/jwt). Nodes connect with DIR/service.creds, pxctl
 * with DIR/admin.creds (PX_NATS_CREDS, or PX_AUTH_DIR=DIR for creds create/revoke).
 */
async function natsAuthCmd(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { dir: { type: "string" }, "resolver-dir": { type: "string" } } });
  if (!values.dir) throw new UsageError("nats-auth: give --dir DIR (the identity and creds files go there, mode 0600)");
  const dir = resolve(values.dir);
  const files = await loadOrCreateNatsAuth(dir);
  writeSecretFile(`${dir}/nats-auth.conf`, natsAuthConfigLines(files, values["resolver-dir"] ?? `${dir}/jwt`).join("\n") + "\n");
  log(`NATS identity in ${dir}: include ${dir}/nats-auth.conf in nats-server's config; nodes: PX_NATS_CREDS=${files.credsPath("service")}; pxctl: PX_NATS_CREDS=${files.credsPath("admin")} PX_AUTH_DIR=${dir}`);
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  switch (cmd) {
    case "up":
      return up(rest);
    case "node":
      return nodeCmd(rest);
    case "demo":
      return demoCmd(rest);
    case "nats-auth":
      return natsAuthCmd(rest);
    default:
      throw new UsageError(cmd ? `unknown command "${cmd}"` : "missing command");
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    if (e instanceof UsageError || (e as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      console.error(`proxist: ${(e as Error).message}\n${USAGE}`);
      process.exit(2);
    }
    console.error(`proxist: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
