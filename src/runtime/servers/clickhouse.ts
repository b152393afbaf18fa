// Launches a real clickhouse-server as a child process on free loopback ports,
// with a generated config and all state (data, tmp, user files, logs) under one
// directory: used by integration tests and local runs. The handle can stop,
// kill (any signal) and restart the server on the same ports and data.
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pingClickhouse } from "../../clickhouse/index.js";
import { freePorts } from "./ports.js";
import { logTail, spawnLogged } from "./process.js";
import type { Spawned } from "./process.js";
import { TaggedError } from "../../../protocols/tagged.js";

/** How to run the server: `path` then `args` then `--config-file=...`. */
export interface ClickhouseBinary {
  readonly path: string;
  /** `["server"]` for the single `clickhouse` binary of current releases, else empty. */
  readonly args: readonly string[];
}

export class ClickhouseBinaryNotFoundError extends TaggedError("ClickhouseBinaryNotFoundError") {}

export class ClickhouseStartError extends TaggedError("ClickhouseStartError") {}

export interface ClickhouseServerOptions {
  /** Config, data and logs go here; a fresh temp dir (removed by `dispose`) when omitted. */
  readonly dir?: string;
  readonly httpPort?: number;
  readonly tcpPort?: number;
  /** Only replicated tables need it; not opened when omitted. */
  readonly interserverPort?: number;
  readonly binary?: ClickhouseBinary;
  /** How long to wait for `GET /ping` to answer `Ok.` (default 60 s). */
  readonly startTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL (default 15 s). */
  readonly stopGraceMs?: number;
  /** Server log level (default `information`). */
  readonly logLevel?: "trace" | "debug" | "information" | "warning" | "error";
}

export interface ClickhouseServer {
  readonly httpUrl: string;
  readonly httpPort: number;
  readonly tcpPort: number;
  readonly interserverPort: number | undefined;
  /** The directory holding config, data and logs. */
  readonly dir: string;
  /** ClickHouse's data `path` (inside `dir`). */
  readonly dataDir: string;
  readonly logFile: string;
  readonly errorLogFile: string;
  /** PID of the current server process (changes on restart). */
  readonly pid: number;
  readonly running: boolean;
  /** SIGTERM, then SIGKILL after the grace period; resolves once the process has exited. Keeps the data. */
  stop(): Promise<void>;
  /** Sends `signal` (default SIGKILL); for a terminating signal, resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same ports and data; resolves when it answers ping. */
  restart(): Promise<void>;
  /** `stop()`, then removes `dir` if this launcher created it. */
  dispose(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const INSTALL_HINT =
  "install it with `apt-get install clickhouse-server clickhouse-client` (or run `bash scripts/setup.sh`), " +
  "or point PX_CLICKHOUSE_SERVER at a clickhouse-server (or single `clickhouse`) binary";

function isExecutable(path: string): boolean {
  try {
    return statSync(path).isFile() && (statSync(path).mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  try {
    const found = execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8", env, stdio: ["ignore", "pipe", "ignore"] }).trim();
    return found === "" ? undefined : found;
  } catch {
    return undefined;
  }
}

/**
 * Finds clickhouse-server: `$PX_CLICKHOUSE_SERVER`, then `clickhouse-server` on
 * PATH or in /usr/sbin, /usr/bin, then a single `clickhouse` binary.
 * Throws `ClickhouseBinaryNotFoundError` saying how to install it.
 */
export function findClickhouseBinary(env: NodeJS.ProcessEnv = process.env): ClickhouseBinary {
  const explicit = env["PX_CLICKHOUSE_SERVER"];
  if (explicit !== undefined && explicit !== "") {
    if (!isExecutable(explicit)) {
      throw new ClickhouseBinaryNotFoundError(`PX_CLICKHOUSE_SERVER=${explicit} is not an executable file; fix the path or unset it`);
    }
    return { path: explicit, args: /(^|\/)clickhouse$/.test(explicit) ? ["server"] : [] };
  }
  const server = onPath("clickhouse-server", env) ?? ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"].find(isExecutable);
  if (server !== undefined) return { path: server, args: [] };
  const single = onPath("clickhouse", env) ?? ["/usr/bin/clickhouse", "/usr/local/bin/clickhouse"].find(isExecutable);
  if (single !== undefined) return { path: single, args: ["server"] };
  throw new ClickhouseBinaryNotFoundError(`clickhouse-server is not installed (looked on PATH, /usr/sbin, /usr/bin); ${INSTALL_HINT}`);
}

/** True when `findClickhouseBinary()` would succeed. */
export function hasClickhouseBinary(env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    findClickhouseBinary(env);
    return true;
  } catch {
    return false;
  }
}

function xmlText(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Where the server keeps config, data and logs, all under `dir`. */
export interface ClickhouseLayout {
  readonly dir: string;
  readonly dataDir: string;
  readonly tmpDir: string;
  readonly userFilesDir: string;
  readonly formatSchemasDir: string;
  readonly logDir: string;
  readonly logFile: string;
  readonly errorLogFile: string;
  readonly stdoutFile: string;
  readonly configFile: string;
  readonly usersFile: string;
}

function layoutOf(dir: string): ClickhouseLayout {
  const logDir = join(dir, "log");
  return {
    dir,
    dataDir: join(dir, "data"),
    tmpDir: join(dir, "tmp"),
    userFilesDir: join(dir, "user_files"),
    formatSchemasDir: join(dir, "format_schemas"),
    logDir,
    logFile: join(logDir, "clickhouse-server.log"),
    errorLogFile: join(logDir, "clickhouse-server.err.log"),
    stdoutFile: join(logDir, "stdout.log"),
    configFile: join(dir, "config.xml"),
    usersFile: join(dir, "users.xml"),
  };
}

/**
 * The server config. `<yandex>` is the root element 18.16 requires; current
 * releases accept it as well as `<clickhouse>`. Paths end with `/` as
 * ClickHouse expects. Timezone is UTC so partition dates are UTC dates.
 */
export function clickhouseConfigXml(l: ClickhouseLayout, ports: { http: number; tcp: number; interserver: number | undefined }, logLevel: string): string {
  const interserver = ports.interserver === undefined ? "" : `  <interserver_http_port>${ports.interserver}</interserver_http_port>\n  <interserver_http_host>127.0.0.1</interserver_http_host>\n`;
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>${logLevel}</level>
    <log>${xmlText(l.logFile)}</log>
    <errorlog>${xmlText(l.errorLogFile)}</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${ports.http}</http_port>
  <tcp_port>${ports.tcp}</tcp_port>
${interserver}  <path>${xmlText(l.dataDir)}/</path>
  <tmp_path>${xmlText(l.tmpDir)}/</tmp_path>
  <user_files_path>${xmlText(l.userFilesDir)}/</user_files_path>
  <format_schema_path>${xmlText(l.formatSchemasDir)}/</format_schema_path>
  <users_config>${xmlText(l.usersFile)}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_connections>1024</max_connections>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mlock_executable>false</mlock_executable>
  <!-- On SIGTERM, wait at most this many seconds for open connections (default 5). -->
  <shutdown_wait_unfinished>1</shutdown_wait_unfinished>
</yandex>
`;
}

/** One user, `default`, no password, loopback only. */
export function clickhouseUsersXml(): string {
  return `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks>
        <ip>127.0.0.1</ip>
        <ip>::1</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default></default>
  </quotas>
</yandex>
`;
}


/** True when the log, from byte `offset` on, says the server is ready. */
function readySince(logFile: string, offset: number): boolean {
  try {
    const fd = openSync(logFile, "r");
    try {
      const length = Math.max(0, fstatSync(fd).size - offset);
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, offset);
      return buf.includes("Ready for connections");
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

function hasExited(p: Spawned): boolean {
  return p.child.exitCode !== null || p.child.signalCode !== null;
}

/** Signals after which a process is gone (or, for SIGSTOP/SIGCONT and friends, not). */
const TERMINATING = new Set<NodeJS.Signals>(["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGABRT"]);

/**
 * Starts clickhouse-server and resolves once `GET /ping` answers `Ok.`.
 * Without fixed ports it picks free ones and retries with fresh ports when
 * another process took them first.
 */
export async function startClickhouseServer(options: ClickhouseServerOptions = {}): Promise<ClickhouseServer> {
  const binary = options.binary ?? findClickhouseBinary();
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "px-ch-"));
  const l = layoutOf(dir);
  for (const d of [l.dataDir, l.tmpDir, l.userFilesDir, l.formatSchemasDir, l.logDir]) mkdirSync(d, { recursive: true });
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const stopGraceMs = options.stopGraceMs ?? 15_000;
  const logLevel = options.logLevel ?? "information";
  const fixedPorts = options.httpPort !== undefined || options.tcpPort !== undefined;

  let ports = { http: 0, tcp: 0, interserver: options.interserverPort };
  let proc: Spawned | undefined;

  const launch = async (): Promise<void> => {
    writeFileSync(l.configFile, clickhouseConfigXml(l, ports, logLevel));
    writeFileSync(l.usersFile, clickhouseUsersXml());
    const logOffset = existsSync(l.logFile) ? statSync(l.logFile).size : 0;
    const p = spawnLogged(binary.path, [...binary.args, `--config-file=${l.configFile}`], l.stdoutFile);
    proc = p;
    const httpUrl = `http://127.0.0.1:${ports.http}`;
    // A ping could be answered by another server that took the port first:
    // only our own log saying it is ready makes the answer ours.
    const checkLog = logLevel === "information" || logLevel === "debug" || logLevel === "trace";
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      if (hasExited(p)) break;
      if ((await pingClickhouse(httpUrl)) && (!checkLog || readySince(l.logFile, logOffset)) && !hasExited(p)) return;
      await sleep(50);
    }
    const exited = hasExited(p);
    if (!exited) {
      p.child.kill("SIGKILL");
      await p.exited;
    }
    const errors = logTail(l.errorLogFile, 2_000) || logTail(l.stdoutFile, 2_000);
    throw new ClickhouseStartError(
      `clickhouse-server (${binary.path}) on http port ${ports.http} ${exited ? `exited with ${p.child.exitCode ?? p.child.signalCode} before it was ready` : `did not answer ping within ${startTimeoutMs} ms`}; ` +
        `logs in ${l.logDir}${errors ? `; last errors:\n${errors}` : ""}`,
    );
  };

  for (let attempt = 1; ; attempt++) {
    const [http, tcp] = await freePorts(2);
    ports = { http: options.httpPort ?? http!, tcp: options.tcpPort ?? tcp!, interserver: options.interserverPort };
    try {
      await launch();
      break;
    } catch (err) {
      // The ports were free when chosen; someone may have taken them since.
      const raced = err instanceof ClickhouseStartError && /Address already in use/i.test(err.message);
      if (fixedPorts || !raced || attempt >= 3) throw err;
    }
  }

  const current = (): Spawned => {
    if (proc === undefined) throw new ClickhouseStartError("clickhouse-server was never started");
    return proc;
  };

  const waitExit = async (p: Spawned, graceMs: number): Promise<boolean> =>
    Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)]);

  const stop = async (): Promise<void> => {
    const p = current();
    if (hasExited(p)) return;
    p.child.kill("SIGTERM");
    // A stopped (SIGSTOP) server only sees SIGTERM once continued.
    p.child.kill("SIGCONT");
    if (!(await waitExit(p, stopGraceMs))) {
      p.child.kill("SIGKILL");
      await p.exited;
    }
  };

  // Safety net: never leave a server behind when the test process exits.
  const onExit = (): void => {
    if (proc !== undefined && !hasExited(proc)) proc.child.kill("SIGKILL");
  };
  process.on("exit", onExit);

  const dispose = async (): Promise<void> => {
    await stop();
    process.off("exit", onExit);
    if (ownsDir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  };

  return {
    get httpUrl() {
      return `http://127.0.0.1:${ports.http}`;
    },
    get httpPort() {
      return ports.http;
    },
    get tcpPort() {
      return ports.tcp;
    },
    get interserverPort() {
      return ports.interserver;
    },
    dir,
    dataDir: l.dataDir,
    logFile: l.logFile,
    errorLogFile: l.errorLogFile,
    get pid() {
      return current().child.pid ?? -1;
    },
    get running() {
      return proc !== undefined && !hasExited(proc);
    },
    stop,
    kill: async (signal: NodeJS.Signals = "SIGKILL") => {
      const p = current();
      if (hasExited(p)) return;
      p.child.kill(signal);
      if (TERMINATING.has(signal)) {
        if (signal !== "SIGKILL") p.child.kill("SIGCONT");
        await p.exited;
      }
    },
    restart: async () => {
      await stop();
      await launch();
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}
