// Leftovers of snapshot writes that never finished, found and removed, so that
// a node that crashes or fails a snapshot now and then does not fill the
// snapshot bucket (its own byte limit) over months of running:
// - chunks of a data object whose info was never written (the write was cut
//   off: a crash, a snapshot thread terminated mid-upload);
// - data objects without their manifest (a crash between the two).
// Both look exactly like a write in progress, so only those untouched for a
// grace period go. A write that stalled that long and lost chunks to a sweep
// fails its own check before its info is written (putObject counts its chunks
// in the stream), so a sweep never leaves a readable object incomplete.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { ObjectInfo, ObjectStore } from "@nats-io/obj";

/** What a sweep removed. */
export interface SweepResult {
  /** Chunk subjects purged (writes cut off before their info). */
  readonly chunkSubjects: readonly string[];
  /** Data objects deleted (no manifest). */
  readonly dataObjects: readonly string[];
}

/** Data objects (`<base>.data`) of `infos` whose `<base>.manifest` does not exist, last written at least `graceMs` before `now`. Pure. */
export function dataWithoutManifest(infos: readonly Pick<ObjectInfo, "name" | "mtime" | "deleted">[], now: number, graceMs: number): string[] {
  const live = infos.filter((i) => !i.deleted);
  const names = new Set(live.map((i) => i.name));
  return live.filter((i) => i.name.endsWith(".data") && !names.has(`${i.name.slice(0, -".data".length)}.manifest`) && now - Date.parse(i.mtime) >= graceMs).map((i) => i.name);
}

/** Chunk subjects of `bucket` in `subjects` that no live object's info names (its nuid). Pure. */
export function unreferencedChunkSubjects(bucket: string, subjects: readonly string[], infos: readonly Pick<ObjectInfo, "nuid" | "deleted">[]): string[] {
  const prefix = `$O.${bucket}.C.`;
  const referenced = new Set(infos.filter((i) => !i.deleted).map((i) => `${prefix}${i.nuid}`));
  return subjects.filter((s) => s.startsWith(prefix) && !referenced.has(s));
}

/**
 * Removes the leftovers of `bucket` untouched for `graceMs` (see the file's
 * head). Chunk subjects are judged by their newest message: an upload in
 * progress publishes one every few milliseconds.
 */
export async function sweepSnapshotLeftovers(jsm: JetStreamManager, os: ObjectStore, bucket: string, graceMs: number, now = Date.now()): Promise<SweepResult> {
  const stream = `OBJ_${bucket}`;
  // Infos first: a write that finishes after this listing has chunks younger than the grace (or is judged next time).
  const infos = await os.list();
  const state = (await jsm.streams.info(stream, { subjects_filter: `$O.${bucket}.C.>` })).state;
  const chunkSubjects: string[] = [];
  for (const subject of unreferencedChunkSubjects(bucket, Object.keys(state.subjects ?? {}), infos)) {
    const last = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    if (last === null || now - last.time.getTime() < graceMs) continue;
    await jsm.streams.purge(stream, { filter: subject });
    chunkSubjects.push(subject);
  }
  const dataObjects = dataWithoutManifest(infos, now, graceMs);
  for (const name of dataObjects) await os.delete(name);
  return { chunkSubjects, dataObjects };
}
