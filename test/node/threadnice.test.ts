// The background snapshot thread (the one a shard that is ingesting writes
// with) runs at a lower priority than the node's other threads (SCHED_IDLE by
// default, src/node/threadnice.ts): ingest and queries get the CPU first on a
// busy machine. PX_SNAPSHOT_NICE is checked, with the fix named. In a fresh
// process: the threads are the process's own, kept once started.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DEFAULT_SNAPSHOT_NICE, snapshotNice } from "../../src/node/shard/snapshotnice.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** In a fresh process: the nice value (or "idle" for SCHED_IDLE) of each of its threads, before and after the snapshot threads are warmed. */
function threadNicesAroundWarm(env: Record<string, string>): { before: (number | string)[]; after: (number | string)[] } {
  const script = `
    import { readFileSync, readdirSync } from "node:fs";
    import { warmSnapshotThread } from "./src/node/shard/snapshotwriter.ts";
    // A thread can end between listing the tasks and reading one (Node's own helper threads come and go): skip it.
    const read = (t, file) => { try { return readFileSync("/proc/self/task/" + t + "/" + file, "utf8"); } catch { return undefined; } };
    const nices = () => readdirSync("/proc/self/task").flatMap((t) => {
      const stat = read(t, "stat");
      if (stat === undefined) return [];
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // Fields from the state (3rd) on: nice is the 19th, policy the 41st (5: SCHED_IDLE).
      return [f[38] === "5" ? "idle" : Number(f[16])];
    });
    const workers = () => readdirSync("/proc/self/task").filter((t) => read(t, "comm")?.trim() === "WorkerThread").length;
    const before = nices();
    warmSnapshotThread();
    const end = Date.now() + 20000;
    while (workers() < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    // Each thread lowers its priority as its module starts: give the second one the time to load (a busy machine takes seconds).
    const lowered = () => nices().some((n) => n !== 0);
    while (!lowered() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1000));
    console.log(JSON.stringify({ before, after: nices() }));
    process.exit(0);
  `;
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 });
  return JSON.parse(out.trim().split("\n").at(-1)!) as { before: (number | string)[]; after: (number | string)[] };
}

describe("node - snapshot thread priority", () => {
  it("nice - of the two snapshot threads, the background one lowers its own priority to PX_SNAPSHOT_NICE (default SCHED_IDLE, or a nice value), the foreground one and every other thread keep the node's", () => {
    const { before, after } = threadNicesAroundWarm({});
    expect(before.filter((n) => n !== 0)).toEqual([]);
    expect(after.filter((n) => n !== 0)).toEqual([DEFAULT_SNAPSHOT_NICE]);
    const seven = threadNicesAroundWarm({ PX_SNAPSHOT_NICE: "7" });
    expect(seven.after.filter((n) => n !== 0)).toEqual([7]);
    // Without chrt (util-linux) the background thread takes the lowest nice value instead.
    const noChrt = threadNicesAroundWarm({ PATH: "/nonexistent" });
    expect(noChrt.after.filter((n) => n !== 0)).toEqual([19]);
  }, 120_000);

  it("nice - PX_SNAPSHOT_NICE outside 0..19 or not an integer is refused, naming the range and the default", () => {
    expect(snapshotNice({})).toBe("idle");
    expect(snapshotNice({ PX_SNAPSHOT_NICE: "idle" })).toBe("idle");
    expect(snapshotNice({ PX_SNAPSHOT_NICE: "0" })).toBe(0);
    expect(snapshotNice({ PX_SNAPSHOT_NICE: "19" })).toBe(19);
    for (const bad of ["20", "-1", "5.5", "low", "IDLE"]) expect(() => snapshotNice({ PX_SNAPSHOT_NICE: bad })).toThrow(new RegExp(`PX_SNAPSHOT_NICE=${bad}: .*"idle" .*integer from 0 .* to 19 .*unset it for idle`));
  });
});
