// A small pool of byte buffers for the ingest hot path. Tens of KB per batch
// allocated as fresh ArrayBuffers count as external memory, and V8 answers a
// steady stream of it with frequent full (mark-compact) collections; reusing
// the buffers of batches already acknowledged avoids that.
//
// Only release a buffer once nothing can read it any more: for a NATS publish
// that is after its reply arrived (the connection wrote it out in order before).

export class BytePool {
  private readonly free: ArrayBuffer[][] = [];
  private readonly out = new WeakSet<ArrayBuffer>();

  constructor(private readonly maxPerClass = 64) {}

  /** `n` bytes (contents undefined) at offset 0 of a pooled ArrayBuffer (so 8-aligned). */
  acquire(n: number): Uint8Array {
    const c = Math.max(12, Math.ceil(Math.log2(Math.max(1, n))));
    const ab = this.free[c]?.pop() ?? new ArrayBuffer(2 ** c);
    this.out.add(ab);
    return new Uint8Array(ab, 0, n);
  }

  /** Gives a buffer back (ignored unless it came from acquire() and was not released since). */
  release(buf: ArrayBufferLike): void {
    const ab = buf as ArrayBuffer;
    if (!this.out.has(ab)) return;
    this.out.delete(ab);
    const c = Math.log2(ab.byteLength);
    const list = (this.free[c] ??= []);
    if (list.length < this.maxPerClass) list.push(ab);
  }
}
