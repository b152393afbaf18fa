// Stable symbol -> bucket routing. FNV-1a (32 bit) over the symbol's UTF-8
// bytes, modulo the table's shard count. It is part of the wire protocol:
// publishers and every node must agree on it, so never change it in place.
// This is the only copy: the hot paths (gateway fast path, IPC writer) call the
// byte-range and ASCII entry points below, which allocate nothing.

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const encoder = new TextEncoder();

/** FNV-1a (32 bit) of `bytes[start..end)` (the whole array by default). */
export function fnv1a32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/**
 * FNV-1a of an ASCII string straight from its char codes (its UTF-8 bytes are
 * the char codes), without encoding; -1 when `s` has a non-ASCII char (the
 * caller then hashes the UTF-8 bytes with `fnv1a32`).
 */
export function fnv1a32Ascii(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    h ^= c;
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/**
 * FNV-1a of `bytes[start..end)` when they are all ASCII, in the same single
 * pass; -1 otherwise (the caller validates the UTF-8, then uses `fnv1a32`).
 */
export function fnv1a32AsciiBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    if (c >= 0x80) return -1;
    h ^= c;
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/** FNV-1a of a symbol's UTF-8 bytes (encodes only when it is not ASCII). */
export function symbolHash(symbol: string): number {
  const h = fnv1a32Ascii(symbol);
  return h >= 0 ? h : fnv1a32(encoder.encode(symbol));
}

/** The bucket of a symbol in a table of `shards` shards. */
export function bucketOf(symbol: string, shards: number): number {
  return symbolHash(symbol) % shards;
}
