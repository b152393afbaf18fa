// Shard assignments in KV px_assign: key `<tenant>.<table>.<bucket>`, value
// JSON {node, leaseRevision, term, assignedAtMs}. Only the leader writes, and
// every write expects the bucket's last revision to be the one the leader
// itself wrote last: a new leader writes the `_leader` marker at takeover, and
// from then on every write of the old leader is rejected by NATS (FencedError).
// The KV revision of an assignment is its lease revision, the fencing token a
// shard carries.
import { STALLS, jsonValue, isConflict } from "./kv.js";
import type { ControlKv, KvChange, KvWatchError } from "./kv.js";
import { parseShardKey } from "./shard.js";
import type { ShardRef } from "./shard.js";
import { TaggedError } from "../../protocols/tagged.js";

export interface Assignment {
  readonly node: string;
  /** The KV revision of the write that made this assignment (the fencing token). */
  readonly leaseRevision: number;
  /** The leader term that wrote it. */
  readonly term: number;
  /** The leader's clock at the write (display only). */
  readonly assignedAtMs: number;
  /** Placed by a placement override (px_placement): once the override is gone the shard is placed afresh (it goes home). */
  readonly pinned?: boolean;
}

/** Written by each new leader before anything else; fences every earlier writer. */
export const LEADER_MARKER_KEY = "_leader";

export interface LeaderMarker {
  readonly holder: string;
  readonly term: number;
  readonly atMs: number;
}

/** A planned change: assign the shard to `node`, or delete its assignment when `node` is undefined. */
export interface AssignmentWrite {
  readonly key: string;
  readonly node: string | undefined;
  /** The node is the shard's placement override. */
  readonly pinned?: boolean;
}

/** The writer is no longer the leader: someone wrote to px_assign since its last write. */
export class FencedError extends TaggedError("FencedError") {}

export interface AssignmentTable {
  /** Every assignment by shard key. */
  readonly assignments: Map<string, Assignment>;
  /** The bucket revision the writer may expect next. */
  readonly lastRevision: number;
}

function decodeAssignment(value: Uint8Array, revision: number): Assignment {
  const v = jsonValue.decode<Partial<Assignment>>(value);
  // The revision of the entry is authoritative: a value cannot forge its own token.
  return { node: String(v.node ?? ""), leaseRevision: revision, term: Number(v.term ?? 0), assignedAtMs: Number(v.assignedAtMs ?? 0), ...(v.pinned === true ? { pinned: true } : {}) };
}

export interface AssignmentChange {
  readonly key: string;
  readonly shard: ShardRef;
  /** undefined: the assignment was deleted (the shard is no longer wanted). */
  readonly assignment: Assignment | undefined;
}

export class AssignmentStore {
  constructor(private readonly kv: ControlKv) {}

  /** Every assignment (readers: pxctl, control server). */
  async read(): Promise<Map<string, Assignment>> {
    const out = new Map<string, Assignment>();
    for (const r of await this.kv.list()) if (parseShardKey(r.key)) out.set(r.key, decodeAssignment(r.value, r.revision));
    return out;
  }

  async marker(): Promise<LeaderMarker | undefined> {
    const r = await this.kv.get(LEADER_MARKER_KEY);
    return r && jsonValue.decode<LeaderMarker>(r.value);
  }

  /**
   * Takes over the bucket for `holder` in `term`: writes the marker expecting
   * the revision seen now (retrying if a stale leader slips a write in between),
   * then loads every assignment. From here on only this writer's revisions count.
   */
  async fence(holder: string, term: number, nowMs: number, attempts = 5): Promise<AssignmentTable> {
    const marker = jsonValue.encode({ holder, term, atMs: nowMs } satisfies LeaderMarker);
    let lastRevision = -1;
    for (let i = 0; i < attempts && lastRevision < 0; i++) {
      const seen = await this.kv.lastRevision();
      try {
        lastRevision = await this.kv.writeIfBucketAt(LEADER_MARKER_KEY, marker, seen);
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
    if (lastRevision < 0) throw new FencedError(`px_assign: term ${term} could not write its marker in ${attempts} attempts; another writer keeps writing`);
    const assignments = new Map<string, Assignment>();
    for (const r of await this.kv.list()) {
      if (r.revision > lastRevision) throw new FencedError(`px_assign: ${r.key} was written at revision ${r.revision} after term ${term} took over; stepping down`);
      if (parseShardKey(r.key)) assignments.set(r.key, decodeAssignment(r.value, r.revision));
    }
    return { assignments, lastRevision };
  }

  /**
   * Applies `writes` in order, each expecting the revision of the previous one.
   * FencedError as soon as one is rejected: another leader wrote since.
   */
  async write(table: AssignmentTable, writes: readonly AssignmentWrite[], term: number, nowMs: number): Promise<AssignmentTable> {
    const assignments = new Map(table.assignments);
    let lastRevision = table.lastRevision;
    for (const w of writes) {
      const next = lastRevision + 1;
      const pin = w.pinned === true ? { pinned: true } : {};
      const value = w.node === undefined ? undefined : jsonValue.encode({ node: w.node, leaseRevision: next, term, assignedAtMs: nowMs, ...pin } satisfies Assignment);
      try {
        lastRevision = await this.kv.writeIfBucketAt(w.key, value, lastRevision);
      } catch (e) {
        if (isConflict(e)) throw new FencedError(`px_assign: write of ${w.key} by term ${term} rejected: another leader wrote since revision ${lastRevision}`, { cause: e });
        throw e;
      }
      if (w.node === undefined) assignments.delete(w.key);
      else assignments.set(w.key, { node: w.node, leaseRevision: lastRevision, term, assignedAtMs: nowMs, ...pin });
    }
    return { assignments, lastRevision };
  }

  /** Streams assignment changes (current ones first, then `onSynced`, then live changes). */
  watch(onChange: (c: AssignmentChange) => void, onSynced?: () => void, onError?: (e: KvWatchError) => void): Promise<() => void> {
    return this.kv.watch((c: KvChange) => {
      const shard = parseShardKey(c.key);
      if (!shard) return;
      onChange({ key: c.key, shard, assignment: c.value === undefined ? undefined : decodeAssignment(c.value, c.revision) });
    }, onSynced, onError, STALLS);
  }
}
