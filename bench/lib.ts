// Shared benchmark plumbing: machine facts, percentiles, result files.
import { cpus, loadavg, totalmem } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function machine(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model ?? "unknown cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ${process.platform}/${process.arch}`;
}

/** CPU seconds (user + system) process `pid` has used so far, from /proc (Linux; NaN elsewhere or once it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th, in clock ticks (100 a second on Linux).
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Busy CPU time of the whole machine (all cores), seconds, from /proc/stat (NaN off Linux). */
function machineBusySeconds(): number {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * Waits until the machine is quiet: less than `busyCores` cores busy over two windows of `windowMs` in a row
 * (servers of a benchmark still persisting or snapshotting after a load would time the peers of a
 * comparison against a background that decays while they run). Gives up after `maxMs`; returns
 * { waitedMs, busyCores } of the last window.
 */
export async function waitQuiet(busyCores = 0.15, windowMs = 2_000, maxMs = 180_000): Promise<{ waitedMs: number; busyCores: number }> {
  const t0 = performance.now();
  let calm = 0;
  let busy = Number.NaN;
  while (performance.now() - t0 < maxMs) {
    const a = machineBusySeconds();
    await new Promise((r) => setTimeout(r, windowMs));
    busy = (machineBusySeconds() - a) / (windowMs / 1000);
    if (!(busy >= 0)) break;
    calm = busy < busyCores ? calm + 1 : 0;
    if (calm >= 2) break;
  }
  return { waitedMs: Math.round(performance.now() - t0), busyCores: round(busy, 2) };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(xs: readonly number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 50);
}

export const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/** `n` timings (ms, sorted) of `once` after 50 untimed calls of warm-up, one call at a time. */
export async function latencies(n: number, once: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 50; i++) await once();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await once();
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

/**
 * Calls `send(0)` .. `send(n - 1)` with at most `window` calls in flight, as fast
 * as they complete (unpaced); resolves with the seconds from the first call to the last answer.
 */
export async function pipelined(n: number, send: (i: number) => Promise<unknown>, window: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < n) await send(next++);
    }),
  );
  return (performance.now() - t0) / 1000;
}

/**
 * Adds `figures` (and notes under `section`) to a result file several benchmarks
 * share (observability.json: bench:ingest and bench:query each add their ratio).
 */
export function mergeResult(name: string, section: string, figures: Record<string, number>, notes: Record<string, unknown> = {}): void {
  const file = `${fileURLToPath(new URL("./results/", import.meta.url))}${name}.json`;
  let prior: { figures?: Record<string, number>; runs?: Record<string, unknown> } = {};
  try {
    prior = JSON.parse(readFileSync(file, "utf8")) as typeof prior;
  } catch {
    // First benchmark to write this file.
  }
  writeResult(name, { ...prior.figures, ...figures }, { runs: { ...prior.runs, [section]: { date: new Date().toISOString(), load_avg_at_end: loadavg().map((x) => Number(x.toFixed(2))), ...notes } } });
}

/** Writes bench/results/<name>.json and prints it. */
export function writeResult(name: string, figures: Record<string, number>, notes: Record<string, unknown> = {}): void {
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  // The load average says how shared the machine was while the figures were taken.
  const out = { machine: machine(), date: new Date().toISOString(), node: process.version, load_avg_at_end: loadavg().map((x) => Number(x.toFixed(2))), figures, ...notes };
  writeFileSync(`${dir}${name}.json`, JSON.stringify(out, null, 2) + "\n");
  console.log(JSON.stringify(out, null, 2));
}
