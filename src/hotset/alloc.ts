// Storage for the chunks of one table: one ArrayBuffer per chunk, so dropping a
// chunk hands its memory to the GC. Buffers freed by tail growth and eviction
// are kept by size for the next chunks, up to min(poolBytes, 1/16 of the bytes
// in use): on a shard in steady state (append and evict) that reuses memory the
// process has already touched instead of zeroing and faulting in fresh pages.

export class ChunkAllocator {
  private readonly poolBytes: number;
  private readonly free = new Map<number, ArrayBuffer[]>();
  private idle = 0;
  private inUse = 0;

  constructor(poolBytes: number) {
    this.poolBytes = poolBytes;
  }

  /** Bytes held for reuse (allocated, not holding a chunk). */
  get idleBytes(): number {
    return this.idle;
  }

  /** A buffer of exactly `bytes` bytes; its contents are undefined. */
  take(bytes: number): ArrayBuffer {
    this.inUse += bytes;
    const buf = this.free.get(bytes)?.pop();
    // Uninitialised memory: rows past a chunk's len are never read, and zeroing
    // fresh memory only to overwrite it costs as much as the appends themselves.
    if (buf === undefined) return Buffer.allocUnsafeSlow(bytes).buffer;
    this.idle -= bytes;
    return buf;
  }

  /** Hands back a buffer no chunk uses any more. */
  give(buf: ArrayBuffer): void {
    const n = buf.byteLength;
    this.inUse -= n;
    if (this.idle + n > Math.min(this.poolBytes, this.inUse / 16)) return; // over budget: the GC takes it
    let list = this.free.get(n);
    if (list === undefined) this.free.set(n, (list = []));
    list.push(buf);
    this.idle += n;
  }
}
