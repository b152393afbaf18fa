// The launcher's record of what it started, `proxist-up.json` in the data dir:
// its own PID and the PIDs of its nats-server and clickhouse-server. A new
// `proxist up` on the same data dir reads it: a live launcher means the dir is in
// use; servers left by a dead launcher (checked to be ours: their command line
// names this data dir) are stopped before the new ones start.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TaggedError } from "../../../protocols/tagged.js";

export const UP_STATE_FILE = "proxist-up.json";

export interface UpServer {
  readonly name: string;
  readonly pid: number;
}

export interface UpState {
  readonly launcherPid: number;
  readonly startedAt: string;
  readonly dataDir: string;
  readonly servers: readonly UpServer[];
}

export const upStatePath = (dataDir: string): string => join(dataDir, UP_STATE_FILE);

export function writeUpState(s: UpState): void {
  writeFileSync(upStatePath(s.dataDir), JSON.stringify(s, null, 2) + "\n");
}

export function readUpState(dataDir: string): UpState | undefined {
  const p = upStatePath(dataDir);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as UpState;
  } catch {
    return undefined; // a torn write: nothing to trust in it
  }
}

export function removeUpState(dataDir: string): void {
  rmSync(upStatePath(dataDir), { force: true });
}

/** The process's command line (NUL-separated args joined by spaces), or undefined when it is gone. */
export function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** SIGTERM, up to `graceMs`, then SIGKILL; resolves once `pid` is gone. */
export async function stopPid(pid: number, graceMs = 15_000): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      return;
    }
    while (alive(pid)) await sleep(50);
  }
}

export class DataDirInUseError extends TaggedError("DataDirInUseError") {}

/**
 * Cleans up after a launcher that died on `dataDir`: stops its servers that
 * still run (only processes whose command line names the data dir) and says
 * what it did. Throws DataDirInUseError when that launcher is still alive.
 */
export async function reapStale(dataDir: string, log: (line: string) => void): Promise<void> {
  const s = readUpState(dataDir);
  if (!s) return;
  if (s.launcherPid !== process.pid && alive(s.launcherPid) && (cmdlineOf(s.launcherPid) ?? "").includes(" up")) {
    throw new DataDirInUseError(`another \`proxist up\` (pid ${s.launcherPid}, started ${s.startedAt}) is running on ${dataDir}; stop it (Ctrl-C in its terminal, or kill ${s.launcherPid}) or pass another --data-dir`);
  }
  for (const srv of s.servers) {
    const cmd = cmdlineOf(srv.pid);
    if (cmd === undefined) continue;
    if (!cmd.includes(dataDir)) {
      log(`previous launcher (pid ${s.launcherPid}) is gone; its ${srv.name} pid ${srv.pid} is now another process (${cmd.slice(0, 80)}), left alone`);
      continue;
    }
    log(`previous launcher (pid ${s.launcherPid}, started ${s.startedAt}) is gone but its ${srv.name} (pid ${srv.pid}) still runs on ${dataDir}: stopping it ...`);
    await stopPid(srv.pid);
    log(`  stopped ${srv.name} pid ${srv.pid}`);
  }
  removeUpState(dataDir);
}
