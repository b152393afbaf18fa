// Per-shard placement overrides in KV px_placement: key `<tenant>.<table>.<bucket>`,
// value JSON PlacementOverride (protocols/placement.ts). Any node writes one
// when it answers a `move` request; the leader watches the bucket, places the
// shard on the override's node while that node is placeable, and deletes the
// override (compare-and-set on its revision) once its node died or the shard is gone.
import type { PlacementOverride } from "../../protocols/placement.js";
import { STALLS, jsonValue } from "./kv.js";
import type { ControlKv, KvChange, KvWatchError } from "./kv.js";
import { parseShardKey } from "./shard.js";

export interface StoredOverride {
  readonly override: PlacementOverride;
  /** The KV revision of the write (a clear compares it, so a newer override survives). */
  readonly revision: number;
}

export interface OverrideChange {
  readonly key: string;
  /** undefined: the override was cleared. */
  readonly stored: StoredOverride | undefined;
}

function decodeOverride(value: Uint8Array): PlacementOverride {
  const v = jsonValue.decode<Partial<PlacementOverride>>(value);
  return { node: String(v.node ?? ""), from: String(v.from ?? ""), by: v.by === "remediation" ? "remediation" : "operator", reason: String(v.reason ?? ""), requestedAtMs: Number(v.requestedAtMs ?? 0) };
}

export class OverrideStore {
  constructor(private readonly kv: ControlKv) {}

  async read(): Promise<Map<string, StoredOverride>> {
    const out = new Map<string, StoredOverride>();
    for (const r of await this.kv.list()) if (parseShardKey(r.key)) out.set(r.key, { override: decodeOverride(r.value), revision: r.revision });
    return out;
  }

  /** Writes (replaces) the shard's override; returns its revision. */
  set(key: string, o: PlacementOverride): Promise<number> {
    return this.kv.put(key, jsonValue.encode(o));
  }

  /** Drops the override; with `revision`, only if it was not replaced since (KvConflictError otherwise). */
  clear(key: string, revision?: number): Promise<void> {
    return this.kv.delete(key, revision);
  }

  /** Current overrides first, then `onSynced`, then every change. */
  watch(onChange: (c: OverrideChange) => void, onSynced?: () => void, onError?: (e: KvWatchError) => void): Promise<() => void> {
    return this.kv.watch((c: KvChange) => {
      if (!parseShardKey(c.key)) return;
      onChange({ key: c.key, stored: c.value === undefined ? undefined : { override: decodeOverride(c.value), revision: c.revision } });
    }, onSynced, onError, STALLS);
  }
}
