// The background snapshot thread's priority (src/node/threadnice.ts):
// PX_SNAPSHOT_NICE, "idle" (SCHED_IDLE: it runs when no other thread wants a
// core; the default) or a nice value from 0 (the node's own priority) to 19.

export type SnapshotPriority = number | "idle";

export const DEFAULT_SNAPSHOT_NICE: SnapshotPriority = "idle";

/** PX_SNAPSHOT_NICE as a priority; anything but "idle" or an integer in 0..19 is refused with what to set instead. */
export function snapshotNice(env: Record<string, string | undefined> = process.env): SnapshotPriority {
  const raw = env.PX_SNAPSHOT_NICE;
  if (raw === undefined || raw === "") return DEFAULT_SNAPSHOT_NICE;
  if (raw === "idle") return "idle";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 19)
    throw new RangeError(`PX_SNAPSHOT_NICE=${raw}: the background snapshot thread's priority must be "idle" (it runs only when a core is free) or a nice value, an integer from 0 (the node's priority) to 19 (the lowest); unset it for ${DEFAULT_SNAPSHOT_NICE}`);
  return n;
}
