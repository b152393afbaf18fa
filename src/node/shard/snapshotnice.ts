// The snapshot thread's nice value (src/node/threadnice.ts): PX_SNAPSHOT_NICE,
// 0 (the node's own priority) to 19; default 10.

export const DEFAULT_SNAPSHOT_NICE = 10;

/** PX_SNAPSHOT_NICE as a nice value; a value that is not an integer in 0..19 is refused with what to set instead. */
export function snapshotNice(env: Record<string, string | undefined> = process.env): number {
  const raw = env.PX_SNAPSHOT_NICE;
  if (raw === undefined || raw === "") return DEFAULT_SNAPSHOT_NICE;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 19) throw new RangeError(`PX_SNAPSHOT_NICE=${raw}: the snapshot thread's nice value must be an integer from 0 (the node's priority) to 19 (the lowest); unset it for ${DEFAULT_SNAPSHOT_NICE}`);
  return n;
}
