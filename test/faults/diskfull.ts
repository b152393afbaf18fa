// Small disks for the NATS servers (the nats-disk-full fault with
// PX_FAULTS_DISK_FULL=enospc; see diskFullMode): each server's
// directory (JetStream store, log, config) is a tmpfs of its own, mounted by
// the harness; the fault fills one to the last byte with a filler file
// (fallocate) and heal() deletes it. Mount points are named
// /tmp/px-faults-tmpfs-<pid>-*: create() first unmounts those a crashed run
// (dead PID) left. Needs root.
import { execFileSync } from "node:child_process";
import { alive } from "./pids.js";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync } from "node:fs";
import { join } from "node:path";

const PREFIX = "/tmp/px-faults-tmpfs-";

/**
 * How the nats-disk-full fault fills a store: "store" (default) fills the
 * WAL's JetStream store limit (walfull.ts), as on a server whose
 * max_file_store is below its disk; "enospc" (PX_FAULTS_DISK_FULL=enospc)
 * fills a NATS server's tmpfs to the last block, which nats-server 2.9 does
 * not survive without losing acknowledged writes (README, Durability): kept
 * to reproduce that.
 */
export function diskFullMode(env: Record<string, string | undefined> = process.env): "store" | "enospc" {
  const v = env.PX_FAULTS_DISK_FULL ?? "";
  if (v === "" || v === "store") return "store";
  if (v === "enospc") return "enospc";
  throw new Error(`PX_FAULTS_DISK_FULL=${JSON.stringify(v)}: expected "store" (the WAL's store limit reached; the default) or "enospc" (a NATS server's disk filled to the last block)`);
}

function mounts(): string[] {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(PREFIX));
}

function unmount(dir: string): void {
  execFileSync("umount", ["-l", dir], { stdio: ["ignore", "ignore", "pipe"] });
  rmSync(dir, { recursive: true, force: true });
}

export class SmallDisks {
  private constructor(readonly dirs: readonly string[]) {}

  /** `n` tmpfs mounts of `sizeMb` MiB each. */
  static create(n: number, sizeMb: number): SmallDisks {
    if (process.getuid?.() !== 0) throw new Error(`the fault suite's small disks (mount -t tmpfs) need root; this process runs as uid ${process.getuid?.()}: run the suite as root (CI does)`);
    for (const m of mounts()) {
      const pid = Number(/^\/tmp\/px-faults-tmpfs-(\d+)-/.exec(m)?.[1]);
      if (!alive(pid)) unmount(m);
    }
    const dirs: string[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const dir = mkdtempSync(`${PREFIX}${process.pid}-`);
        dirs.push(dir);
        execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMb}m`, "tmpfs", dir], { stdio: ["ignore", "ignore", "pipe"] });
      }
    } catch (e) {
      new SmallDisks(dirs).close();
      throw e;
    }
    return new SmallDisks(dirs);
  }

  private fillers(i: number): string[] {
    return readdirSync(this.dirs[i]!)
      .filter((f) => f.startsWith("px-filler-"))
      .map((f) => join(this.dirs[i]!, f));
  }

  /** Bytes free on disk `i`. */
  free(i: number): number {
    const s = statfsSync(this.dirs[i]!);
    return s.bavail * s.bsize;
  }

  /**
   * Fills disk `i` to (nearly: under 64 KiB left) the last block; returns the
   * bytes taken. The server writes meanwhile: a fallocate that loses the race
   * (ENOSPC) is tried again smaller, in more filler files.
   */
  fill(i: number): number {
    let taken = 0;
    for (let k = 0, share = 1; k < 40 && this.free(i) >= 64 * 1024; k++) {
      const bytes = Math.floor((this.free(i) * share) / 4096) * 4096;
      try {
        execFileSync("fallocate", ["-l", String(bytes), join(this.dirs[i]!, `px-filler-${k}`)], { stdio: ["ignore", "ignore", "pipe"] });
        taken += bytes;
      } catch {
        share /= 2;
      }
    }
    return taken;
  }

  /** Deletes disk `i`'s fillers. */
  release(i: number): void {
    for (const f of this.fillers(i)) rmSync(f, { force: true });
  }

  close(): void {
    const errors: string[] = [];
    for (const d of this.dirs) {
      try {
        unmount(d);
      } catch (e) {
        errors.push(`${d}: ${(e as Error).message}`);
      }
    }
    if (errors.length > 0) throw new Error(`the fault suite's small disks were not all unmounted: ${errors.join("; ")}`);
  }
}
