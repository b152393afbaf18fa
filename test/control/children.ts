// Child processes for integration tests: run a TypeScript entry with tsx,
// collect stdout/stderr, wait for JSON-line events, stop by PID.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Parsed JSON lines printed so far. */
  events(): Record<string, unknown>[];
  waitFor(what: string, pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  waitOutput(what: string, pred: (stdout: string, stderr: string) => boolean, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

export function runTs(entry: string, args: readonly string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", entry, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiters = new Set<() => void>();
  const notify = (): void => waiters.forEach((w) => w());
  proc.stdout!.on("data", (d: Buffer) => ((out += d.toString()), notify()));
  proc.stderr!.on("data", (d: Buffer) => ((err += d.toString()), notify()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => (notify(), resolve(code))));
  const events = (): Record<string, unknown>[] =>
    out.split("\n").flatMap((l) => {
      try {
        return l.startsWith("{") ? [JSON.parse(l) as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  const wait = (what: string, check: () => boolean, timeoutMs: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = (): void => {
        if (check()) {
          clearTimeout(timer);
          waiters.delete(w);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`timed out waiting for ${what}\nstdout:\n${out}\nstderr:\n${err}`));
      }, timeoutMs);
      waiters.add(w);
      w();
    });
  return {
    proc,
    pid: proc.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    events,
    waitFor: async (what, pred, timeoutMs = 15_000) => {
      await wait(what, () => events().some(pred), timeoutMs);
      return events().find(pred)!;
    },
    waitOutput: (what, pred, timeoutMs = 15_000) => wait(what, () => pred(out, err), timeoutMs),
    exited,
    kill: (signal = "SIGKILL") => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
  };
}
