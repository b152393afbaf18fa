// In-order pipelining for streamed ingest: up to `max` batches are being stored
// at once, and their acks go out in the order the batches came in. The first
// failure stops delivery; later results are dropped (the call ends with that
// failure, and batches acked before it stay stored).

export class OrderedPipeline<T> {
  private tail: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private failed = false;
  private readonly spaceWaiters: (() => void)[] = [];

  constructor(
    private readonly max: number,
    private readonly deliver: (result: T) => void,
    private readonly fail: (error: unknown) => void,
  ) {}

  get isFull(): boolean {
    return this.inFlight >= this.max;
  }

  get hasFailed(): boolean {
    return this.failed;
  }

  /** Stops delivery (the call was cancelled); nothing more is written. */
  abandon(): void {
    this.failed = true;
  }

  /** `work` must already be started; its result is delivered after every earlier one. */
  submit(work: Promise<T>): void {
    this.inFlight++;
    // Rejections are handled in order below; this keeps them from being "unhandled" meanwhile.
    work.catch(() => {});
    this.tail = this.tail.then(async () => {
      try {
        const result = await work;
        if (!this.failed) this.deliver(result);
      } catch (e) {
        if (!this.failed) {
          this.failed = true;
          this.fail(e);
        }
      } finally {
        this.inFlight--;
        this.spaceWaiters.splice(0).forEach((w) => w());
      }
    });
  }

  /** Submits work that failed before it could start (e.g. a malformed message). */
  reject(error: unknown): void {
    this.submit(Promise.reject(error));
  }

  whenSpace(): Promise<void> {
    if (!this.isFull) return Promise.resolve();
    return new Promise((resolve) => this.spaceWaiters.push(resolve));
  }

  /** Resolves when every submitted batch has been delivered (or dropped). */
  finished(): Promise<void> {
    return this.tail;
  }
}
