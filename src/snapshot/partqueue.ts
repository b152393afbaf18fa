// Packed snapshot parts handed from the packing loop to the object store
// writer on the same thread, a few at a time: the packer waits while the
// writer is `limit` parts behind (compressed bytes do not pile up in memory
// when the store is slower), and learns at once when the writer failed.
// Pure: one producer, one consumer.

export class PartQueue implements AsyncIterable<Uint8Array> {
  private readonly items: Uint8Array[] = [];
  private closed = false;
  private failure: Error | undefined;
  private wakeReader: (() => void) | undefined;
  private wakeWriter: (() => void) | undefined;

  constructor(private readonly limit = 8) {}

  /** Adds a part, waiting while `limit` are unread; throws once the reader failed. */
  async push(part: Uint8Array): Promise<void> {
    while (this.items.length >= this.limit && this.failure === undefined) await new Promise<void>((r) => (this.wakeWriter = r));
    if (this.failure !== undefined) throw this.failure;
    this.items.push(part);
    this.wake();
  }

  /** No more parts: the reader ends once it has the last. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  /** The reader failed (or the job did): a waiting or later push throws it, parts not read are dropped. */
  fail(e: Error): void {
    this.failure ??= e;
    this.items.length = 0;
    this.wake();
  }

  private wake(): void {
    const r = this.wakeReader;
    const w = this.wakeWriter;
    this.wakeReader = undefined;
    this.wakeWriter = undefined;
    r?.();
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const next = this.items.shift();
      if (next !== undefined) {
        this.wake();
        yield next;
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.closed) return;
      await new Promise<void>((r) => (this.wakeReader = r));
    }
  }
}
