// Where a materialized feed's checkpoints are kept: objects of the snapshot
// object store (px_snapshots, its byte limit shared with shard snapshots),
// named by feed, fingerprint and LSN (protocols/subjects.ts). Loading takes
// the newest of this definition of the feed; saving writes a new object, then
// removes all but the two newest and any of another definition under the same
// name. A feed removed from the spec has all of them removed (drop). The
// object store checks each object's SHA-256 on reading. The store is listed
// (every object's info, shard snapshots too) on load, on the first save and on
// drop; later saves go by the names already known and the ones they wrote: a
// checkpoint another writer of the feed wrote meanwhile (an owner that lost the
// feed) is left to the next listing.
import type { ObjectStore } from "@nats-io/obj";
import { FEED_CHECKPOINT_ROOT, feedCheckpointObject, feedCheckpointPrefix } from "../../../protocols/subjects.js";

/** How many checkpoints of a feed are kept (the newest, and one before it should the newest not read). */
const KEEP = 2;

export interface FeedCheckpoints {
  /** The newest checkpoint's bytes (undefined: none); an unreadable newest gives the one before it. */
  load(): Promise<Uint8Array | undefined>;
  save(foldedLsn: number, bytes: Uint8Array): Promise<void>;
  /** Removes every checkpoint under the feed's name (any definition), once a save under way settled; how many. */
  drop(): Promise<number>;
}

export function feedCheckpoints(os: ObjectStore, tenant: string, name: string, fingerprint: string): FeedCheckpoints {
  const prefix = feedCheckpointPrefix(tenant, name);
  const mine = `${prefix}${fingerprint}.`;
  /** This feed's checkpoint names, newest first, and the names of other definitions under its name. */
  const listed = async (): Promise<{ ours: string[]; others: string[] }> => {
    const names = (await os.list()).filter((i) => !i.deleted && i.name.startsWith(prefix)).map((i) => i.name);
    return { ours: names.filter((n) => n.startsWith(mine)).sort().reverse(), others: names.filter((n) => !n.startsWith(mine)) };
  };
  // The save under way: the next save and a drop wait for it (or the object it writes would outlive the drop).
  let saving: Promise<unknown> = Promise.resolve();
  /** Names as of the last listing and the saves since (undefined: not listed yet); a name whose delete failed stays. */
  let known: { ours: string[]; others: string[] } | undefined;
  return {
    async load() {
      known = await listed();
      const { ours } = known;
      let lastError: unknown;
      for (const n of ours) {
        try {
          const b = await os.getBlob(n);
          if (b !== null) return b;
        } catch (e) {
          // A corrupt object (its digest does not match): the one before it.
          lastError = e;
        }
      }
      if (lastError !== undefined) throw new Error(`no checkpoint of feed ${tenant}/${name} reads: ${(lastError as Error).message}`);
      return undefined;
    },
    save(foldedLsn, bytes) {
      const done = saving.then(async () => {
        const object = feedCheckpointObject(tenant, name, fingerprint, foldedLsn);
        await os.putBlob({ name: object }, bytes);
        const { ours, others } = known === undefined ? await listed() : { ours: [object, ...known.ours.filter((n) => n !== object)].sort().reverse(), others: known.others };
        const failed: string[] = [];
        for (const n of [...ours.slice(KEEP), ...others]) await os.delete(n).catch(() => failed.push(n));
        known = { ours: [...ours.slice(0, KEEP), ...failed.filter((n) => n.startsWith(mine))], others: failed.filter((n) => !n.startsWith(mine)) };
      });
      saving = done.catch(() => {});
      return done;
    },
    async drop() {
      await saving;
      const { ours, others } = await listed();
      for (const n of [...ours, ...others]) await os.delete(n);
      return ours.length + others.length;
    },
  };
}

/**
 * Removes the checkpoints of feeds not in `feeds` (tenant and name): those of a
 * feed removed from the spec while no node ran it. A name under a wanted feed's
 * prefix is kept whatever its definition (its feed's saves prune those).
 * Returns the names removed.
 */
export async function sweepFeedCheckpoints(os: ObjectStore, feeds: readonly { tenant: string; name: string }[]): Promise<string[]> {
  const keep = feeds.map((f) => feedCheckpointPrefix(f.tenant, f.name));
  const orphans = (await os.list()).filter((i) => !i.deleted && i.name.startsWith(FEED_CHECKPOINT_ROOT) && !keep.some((k) => i.name.startsWith(k))).map((i) => i.name);
  for (const n of orphans) await os.delete(n);
  return orphans;
}
