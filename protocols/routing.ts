// Stable symbol -> bucket routing. FNV-1a (32 bit) over the symbol's UTF-8
// bytes, modulo the table's shard count. It is part of the wire protocol:
// publishers and every node must agree on it, so never change it in place.

const encoder = new TextEncoder();

export function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function bucketOf(symbol: string, shards: number): number {
  return fnv1a32(encoder.encode(symbol)) % shards;
}
