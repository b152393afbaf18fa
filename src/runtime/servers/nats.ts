// Launches a real nats-server with JetStream on free loopback ports: used by the
// local cluster (`proxist up`) and by integration tests. Supports a cluster of
// servers with routes. The handle stops the server by PID.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { logTail, spawnLogged, stopProcess, waitUntil } from "./process.js";
import type { Spawned } from "./process.js";
import { loadOrCreateNatsAuth, natsAuthConfigLines } from "./natsauth.js";
import type { NatsAuthFiles } from "./natsauth.js";
import { natsServerVersion, syncIntervalLine } from "./natssync.js";

export interface NatsServerOptions {
  /** Data and logs go here; a fresh temp dir (removed by `dispose`) when omitted. */
  readonly dir?: string;
  readonly port?: number;
  readonly monitorPort?: number;
  readonly serverName?: string;
  /** Cluster membership: this server's route port and the route URLs of all members. */
  readonly cluster?: { readonly name: string; readonly port: number; readonly routes: readonly string[] };
  readonly maxPayloadBytes?: number;
  /**
   * Unsent bytes a client connection may have before the server cuts it off as
   * a slow consumer (max_pending). Default 256 MB, not the server's 64 MB: a
   * node's WAL consumers each pull up to one max_payload (8 MB) at once
   * (src/wal/pull.ts), and a node runs two per shard (shard and sink).
   */
  readonly maxPendingBytes?: number;
  /**
   * Authentication: operator-mode JWT auth with this deployment's identity
   * (a directory of natsauth.ts files; several servers of a cluster share one),
   * or "open" (no auth: benchmarks' baseline, the security suite's negative
   * control). Omitted: locked, with a new identity in `<dir>/auth`.
   */
  readonly auth?: NatsAuthFiles | "open";
  /** JetStream fsync: "always" or a duration (nats-server 2.10+ only; ./natssync.ts). Omitted: the server's default. */
  readonly syncInterval?: string;
  /**
   * TLS on the client port (PEM files, e.g. from `pxctl certs init`): every
   * client must speak TLS; a plaintext one is refused. Omitted: plaintext.
   */
  readonly tls?: NatsServerTls;
  /** Interface of the client port: 127.0.0.1 unless asked (a TLS server may be given 0.0.0.0). */
  readonly host?: string;
  /**
   * JetStream's file store limit (max_file_store), e.g. "64G". Omitted: the
   * environment's PX_NATS_MAX_FILE_STORE, else nats-server's default of 75% of
   * the disk free at start (streams reserve their max_bytes against it).
   */
  readonly maxFileStore?: string;
  /**
   * Run inside this network namespace (`ip netns exec`; the fault suite's
   * partitions): every port (client, monitor, cluster) binds `address`, the
   * namespace's own, instead of loopback. Needs root.
   */
  readonly netns?: { readonly name: string; readonly address: string };
}

export interface NatsServerTls {
  readonly cert: string;
  readonly key: string;
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  readonly dir: string;
  readonly pid: number;
  readonly options: NatsServerOptions;
  /** The auth material clients connect with; undefined on an open server. */
  readonly auth: NatsAuthFiles | undefined;
  stop(): Promise<void>;
  /** Stops the server and removes its data directory if this call made it (a benchmark's JetStream store is gigabytes). */
  dispose(): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
  /** Starts again on the same ports and data directory. */
  restart(): Promise<void>;
}

/** A max_file_store value nats-server reads: digits with an optional K/M/G/T unit. */
function checkedStoreSize(text: string): string {
  if (!/^\d+[KMGT]?B?$/i.test(text.trim())) throw new Error(`PX_NATS_MAX_FILE_STORE=${JSON.stringify(text)}: expected a size such as 64G or 1T (nats-server's max_file_store)`);
  return text.trim();
}

export function findNatsServerBinary(): string {
  try {
    return execFileSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("nats-server is not installed; run `bash scripts/setup.sh` (it installs it with apt-get) or install nats-server 2.9+");
  }
}

function configText(o: Required<Pick<NatsServerOptions, "port" | "monitorPort" | "serverName" | "maxPayloadBytes" | "maxPendingBytes">> & NatsServerOptions, storeDir: string, auth: NatsAuthFiles | undefined, dir: string, sync: string | undefined): string {
  const lines = [
    `server_name: ${o.serverName}`,
    `listen: ${o.netns?.address ?? o.host ?? "127.0.0.1"}:${o.port}`,
    `http: ${o.netns?.address ?? "127.0.0.1"}:${o.monitorPort}`,
    `max_payload: ${o.maxPayloadBytes}`,
    `max_pending: ${o.maxPendingBytes}`,
    `jetstream {`,
    `  store_dir: "${storeDir}"`,
    ...(o.maxFileStore === undefined ? [] : [`  max_file_store: ${o.maxFileStore}`]),
    ...(sync === undefined ? [] : [sync]),
    `}`,
  ];
  if (auth) lines.push(...natsAuthConfigLines(auth, join(dir, "jwt")));
  // No `verify`: clients authenticate with their JWT credentials, TLS protects the wire and proves the server.
  if (o.tls) lines.push(`tls {`, `  cert_file: "${o.tls.cert}"`, `  key_file: "${o.tls.key}"`, `  timeout: 5`, `}`);
  if (o.cluster) {
    lines.push(
      `cluster {`,
      `  name: ${o.cluster.name}`,
      `  listen: ${o.netns?.address ?? "127.0.0.1"}:${o.cluster.port}`,
      `  routes: [${o.cluster.routes.map((r) => `"${r}"`).join(", ")}]`,
      `}`,
    );
  }
  return lines.join("\n") + "\n";
}

export async function startNatsServer(given: NatsServerOptions = {}): Promise<NatsServer> {
  const envStore = process.env.PX_NATS_MAX_FILE_STORE;
  const options: NatsServerOptions = given.maxFileStore === undefined && envStore ? { ...given, maxFileStore: checkedStoreSize(envStore) } : given;
  const bin = findNatsServerBinary();
  const sync = syncIntervalLine(options.syncInterval, options.syncInterval === undefined ? undefined : natsServerVersion(bin));
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "px-nats-"));
  mkdirSync(dir, { recursive: true });
  let port = options.port ?? (await freePort());
  let monitorPort = options.monitorPort ?? (await freePort());
  const serverName = options.serverName ?? `px_${port}`;
  const conf = join(dir, "nats.conf");
  const auth = options.auth === "open" ? undefined : (options.auth ?? (await loadOrCreateNatsAuth(join(dir, "auth"))));
  // Rewritten on every launch: a restart preloads the account JWT as last revoked.
  const writeConf = (): void =>
    writeFileSync(conf, configText({ ...options, port, monitorPort, serverName, maxPayloadBytes: options.maxPayloadBytes ?? 8 * 1024 * 1024, maxPendingBytes: options.maxPendingBytes ?? 256 * 1024 * 1024 }, join(dir, "jetstream"), auth, dir, sync), { mode: 0o600 });
  let proc: Spawned;
  const launch = async (): Promise<void> => {
    writeConf();
    // `ip netns exec` execs the server in place: the child's PID is the server's (signals reach it).
    proc = options.netns ? spawnLogged("ip", ["netns", "exec", options.netns.name, bin, "-c", conf], join(dir, "nats.log")) : spawnLogged(bin, ["-c", conf], join(dir, "nats.log"));
    await waitUntil(
      `nats-server on port ${port} (log: ${join(dir, "nats.log")})`,
      async () => {
        const res = await fetch(`http://${options.netns?.address ?? "127.0.0.1"}:${monitorPort}/healthz${options.cluster ? "" : "?js-enabled-only=true"}`);
        return res.ok;
      },
      proc,
      30_000,
    );
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      // The ports were free when chosen; someone may have taken one since (a client's ephemeral port, another server).
      const raced = /address already in use/i.test(logTail(join(dir, "nats.log")));
      if (options.port !== undefined || options.monitorPort !== undefined || !raced || attempt >= 3) throw err;
      port = options.port ?? (await freePort());
      monitorPort = options.monitorPort ?? (await freePort());
    }
  }
  return {
    // tls:// tells clients (nats-py, the nats CLI) to speak TLS; nats.js ignores the scheme and takes its tls option.
    url: `${options.tls ? "tls" : "nats"}://${options.netns?.address ?? "127.0.0.1"}:${port}`,
    port,
    monitorPort,
    dir,
    get pid() {
      return proc.child.pid ?? -1;
    },
    options: { ...options, port, monitorPort, serverName, dir, ...(auth ? { auth } : { auth: "open" as const }) },
    auth,
    stop: () => stopProcess(proc),
    dispose: async () => {
      await stopProcess(proc);
      if (ownsDir) rmSync(dir, { recursive: true, force: true });
    },
    kill: (signal = "SIGKILL") => {
      proc.child.kill(signal);
    },
    restart: async () => {
      await stopProcess(proc);
      await launch();
    },
  };
}
