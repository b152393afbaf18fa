// `proxist up` as a user runs it, in its own process on a temp data dir and
// consecutive free ports (--base-port): resolves once it printed that the cluster
// is up; kill() sends a signal and waits for the exit.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { MALLOC_TUNABLES } from "../../src/config/defaults.js";
import { portInUse } from "../../src/runtime/servers/portcheck.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

export interface Launcher {
  readonly child: ChildProcess;
  readonly exited: Promise<unknown>;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A base port with the six ports `up --base-port` uses all free. */
export async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let free = true;
    for (let p = base; p < base + 6 && free; p++) free = !(await portInUse(p));
    if (free) return base;
  }
  throw new Error("no six consecutive free ports found");
}

export async function startLauncher(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Launcher> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "up", ...args], {
    cwd: root,
    env: { GLIBC_TUNABLES: MALLOC_TUNABLES, ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const launcher: Launcher = {
    child,
    exited,
    output: () => out,
    kill: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (!/Ctrl-C stops everything/.test(out)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`proxist up exited before it was up:\n${out}`);
    if (Date.now() > deadline) {
      await launcher.kill("SIGKILL");
      throw new Error(`proxist up not up after ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return launcher;
}
