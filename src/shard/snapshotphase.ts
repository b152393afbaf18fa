// A shard's snapshot phase in [0, 1) (actors/shard.ts, ShardInput.snapshotPhase):
// a hash of its address, so the shards a node starts together spread their
// first scheduled snapshots over half an interval instead of all writing in
// the same second, and keep that spread after.
import type { ShardAddress } from "../../protocols/subjects.js";

export function snapshotPhaseOf(shard: ShardAddress): number {
  // FNV-1a over the address: stable across processes and releases.
  let h = 0x811c9dc5;
  for (const ch of `${shard.tenant}.${shard.table}.${shard.bucket}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  // Murmur3's finalizer: FNV leaves addresses that differ in the last character close in the high bits.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}
