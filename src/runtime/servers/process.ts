// Child-process plumbing shared by the server launchers: spawn detached with
// output to a log file, stop by PID (SIGTERM, then SIGKILL), wait for readiness.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface Spawned {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

export function spawnLogged(cmd: string, args: readonly string[], logFile: string): Spawned {
  const fd = openSync(logFile, "a");
  const child = spawn(cmd, args, { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    child.once("exit", (code) => resolve(code));
    child.once("error", () => resolve(null));
  });
  return { child, exited };
}

/** The last `maxChars` of a log file, trimmed ("" when it cannot be read). */
export function logTail(path: string, maxChars = 2_000): string {
  try {
    const text = readFileSync(path, "utf8");
    return text.slice(Math.max(0, text.length - maxChars)).trim();
  } catch {
    return "";
  }
}

export async function stopProcess(p: Spawned, graceMs = 10_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  const done = await Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    p.child.kill("SIGKILL");
    await p.exited;
  }
}

/** Polls `probe` until it resolves true; fails with `what` when the process dies or time runs out. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, p: Spawned | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let died = false;
  void p?.exited.then(() => (died = true));
  while (Date.now() < deadline) {
    if (died) throw new Error(`${what}: the process exited before it was ready`);
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms`);
}
