// Leftovers of snapshot writes that never finished, found and removed, so that
// a node that crashes or fails a snapshot now and then does not fill the
// snapshot bucket (its own byte limit) over months of running:
// - chunks of a data object whose info was never written (the write was cut
//   off: a crash, a snapshot thread terminated mid-upload);
// - data objects without their manifest (a crash between the two).
// Both look exactly like a write in progress, so only those untouched for a
// grace period go (at least a minute; 15 by default: see store.ts). What is
// judged a leftover is looked at again just before it goes (the infos listed
// anew, a data object's info and manifest read anew), so a write that finished
// or replaced it meanwhile keeps it. A write of objects.ts that stalled past
// the grace and lost chunks fails its own count of them before its info is
// written. Left open: a write that stalled past the grace and finishes in the
// milliseconds between that last look and the purge; and writes through the
// object store client's put (manifests, small snapshots), which count nothing:
// they take milliseconds, far below any grace.
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
  const infos = await os.list();
  const state = (await jsm.streams.info(stream, { subjects_filter: `$O.${bucket}.C.>` })).state;
  const stale: string[] = [];
  for (const subject of unreferencedChunkSubjects(bucket, Object.keys(state.subjects ?? {}), infos)) {
    const last = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    if (last !== null && now - last.time.getTime() >= graceMs) stale.push(subject);
  }
  // A write that stalled past the grace may have written its info since the listing: it keeps its chunks.
  const chunkSubjects = stale.length === 0 ? [] : unreferencedChunkSubjects(bucket, stale, await os.list());
  for (const subject of chunkSubjects) await jsm.streams.purge(stream, { filter: subject });
  const dataObjects: string[] = [];
  for (const name of dataWithoutManifest(infos, now, graceMs)) {
    // Rewritten meanwhile (a snapshot of the same LSN replaces it) or given its manifest: not a leftover any more.
    const listed = infos.find((i) => i.name === name)!;
    const current = await os.info(name);
    const manifest = await os.info(`${name.slice(0, -".data".length)}.manifest`);
    if (current === null || current.deleted || current.nuid !== listed.nuid || (manifest !== null && !manifest.deleted)) continue;
    await os.delete(name);
    dataObjects.push(name);
  }
  return { chunkSubjects, dataObjects };
}
