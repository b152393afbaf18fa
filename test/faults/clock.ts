// Wall-clock jumps of one node (the clock-jump fault): every node runs with
// libfaketime preloaded (Debian package faketime; scripts/setup.sh installs
// it), reading its offset from a file of its own that libfaketime re-reads
// every second (FAKETIME_TIMESTAMP_FILE, FAKETIME_CACHE_DURATION=1). Only the
// wall clock (CLOCK_REALTIME: Date.now, timestamps) moves, as an NTP step
// would; the monotonic clock (timers, performance.now) does not
// (FAKETIME_DONT_FAKE_MONOTONIC=1). A node started while its file holds an
// offset starts with that offset.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CANDIDATES = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"];

export class LibfaketimeMissingError extends Error {}

export function libfaketime(): string {
  const found = CANDIDATES.find((p) => existsSync(p));
  if (found === undefined) {
    throw new LibfaketimeMissingError(`libfaketime not found (looked at ${CANDIDATES.join(", ")}): the fault suite's clock-jump needs it; run \`bash scripts/setup.sh\` as root (it installs the Debian package faketime) or apt-get install faketime`);
  }
  return found;
}

export class Clocks {
  private readonly dir = mkdtempSync(join(tmpdir(), "px-faults-clock-"));
  readonly lib = libfaketime();

  private file(node: string): string {
    return join(this.dir, node);
  }

  /** The environment a node `node` is started with (its offset file made at +0 when new). */
  env(node: string): Record<string, string> {
    const f = this.file(node);
    if (!existsSync(f)) writeFileSync(f, "+0\n");
    return { FAKETIME_TIMESTAMP_FILE: f, FAKETIME_CACHE_DURATION: "1", FAKETIME_DONT_FAKE_MONOTONIC: "1" };
  }

  /** Sets node `node`'s wall clock `seconds` off true time (0: back to true time); read by it within a second. */
  set(node: string, seconds: number): void {
    writeFileSync(this.file(node), `${seconds >= 0 ? "+" : ""}${seconds}s\n`);
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** How far a node's wall clock is off ours, s, from the Date header of its HTTP answer (1 s resolution); undefined when it does not answer. */
export async function clockOffsetOf(host: string, httpPort: number): Promise<number | undefined> {
  const t0 = Date.now();
  const res = await fetch(`http://${host}:${httpPort}/readyz`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
  const date = res?.headers.get("date");
  if (!date) return undefined;
  return (Date.parse(date) - (t0 + Date.now()) / 2) / 1000;
}
