// An in-memory ControlKv with the revision rules of a JetStream KV bucket (one
// sequence for the whole bucket, compare-and-set per key and per bucket). Unit
// tests and the simulated cluster use it; `unavailable` simulates a partition.
import { KvConflictError, KvWatchError } from "./kv.js";
import type { ControlKv, KvChange, KvRecord, WatchOptions } from "./kv.js";

interface Slot {
  readonly value: Uint8Array | undefined;
  readonly revision: number;
  readonly createdMs: number;
}

export class MemoryKv implements ControlKv {
  private readonly slots = new Map<string, Slot>();
  private readonly watchers = new Set<(c: KvChange) => void>();
  private readonly breakers = new Map<(c: KvChange) => void, (e: KvWatchError) => void>();
  private seq = 0;
  /** While true every operation fails as if NATS could not be reached. */
  unavailable = false;

  constructor(
    readonly bucket: string,
    private readonly now: () => number = Date.now,
  ) {}

  private async gate(): Promise<void> {
    await Promise.resolve();
    if (this.unavailable) throw new Error(`${this.bucket}: NATS is not reachable (simulated)`);
  }

  private write(key: string, value: Uint8Array | undefined): number {
    const slot: Slot = { value, revision: ++this.seq, createdMs: this.now() };
    this.slots.set(key, slot);
    const change: KvChange = { key, ...slot };
    for (const w of this.watchers) w(change);
    return slot.revision;
  }

  async get(key: string): Promise<KvRecord | undefined> {
    await this.gate();
    const s = this.slots.get(key);
    return s?.value === undefined ? undefined : { key, value: s.value, revision: s.revision, createdMs: s.createdMs };
  }

  async list(): Promise<KvRecord[]> {
    await this.gate();
    return [...this.slots].flatMap(([key, s]) => (s.value === undefined ? [] : [{ key, value: s.value, revision: s.revision, createdMs: s.createdMs }]));
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    await this.gate();
    const s = this.slots.get(key);
    if (s?.value !== undefined) throw new KvConflictError(`${this.bucket}: create ${key}: key exists (revision ${s.revision})`);
    return this.write(key, value);
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    await this.gate();
    const s = this.slots.get(key);
    if ((s?.revision ?? 0) !== revision) {
      throw new KvConflictError(`${this.bucket}: update ${key}: wrong last sequence: ${s?.revision ?? 0} (expected ${revision})`);
    }
    return this.write(key, value);
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    await this.gate();
    return this.write(key, value);
  }

  async delete(key: string, revision?: number): Promise<void> {
    await this.gate();
    const s = this.slots.get(key);
    if (revision !== undefined && (s?.revision ?? 0) !== revision) {
      throw new KvConflictError(`${this.bucket}: delete ${key}: wrong last sequence: ${s?.revision ?? 0} (expected ${revision})`);
    }
    this.write(key, undefined);
  }

  async writeIfBucketAt(key: string, value: Uint8Array | undefined, lastRevision: number): Promise<number> {
    await this.gate();
    if (this.seq !== lastRevision) throw new KvConflictError(`${this.bucket}: wrong last sequence: ${this.seq} (expected ${lastRevision})`);
    return this.write(key, value);
  }

  async lastRevision(): Promise<number> {
    await this.gate();
    return this.seq;
  }

  async watch(onChange: (change: KvChange) => void, onSynced?: () => void, onError?: (e: KvWatchError) => void): Promise<() => void> {
    await this.gate();
    for (const [key, s] of this.slots) if (s.value !== undefined) onChange({ key, ...s });
    onSynced?.();
    this.watchers.add(onChange);
    if (onError) this.breakers.set(onChange, onError);
    return () => {
      this.watchers.delete(onChange);
      this.breakers.delete(onChange);
    };
  }

  /** Breaks every open watcher (as a lost consumer would): each gets onError once and nothing after. */
  breakWatchers(reason = "watcher consumer lost (simulated)"): void {
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      const onError = this.breakers.get(w);
      this.breakers.delete(w);
      onError?.(new KvWatchError(`${this.bucket}: ${reason}`));
    }
  }
}

/** One client's view of a shared bucket that can be cut off (`down`) to simulate a partition of that client only. */
export class PartitionedKv implements ControlKv {
  down = false;
  constructor(private readonly inner: ControlKv) {}
  get bucket(): string {
    return this.inner.bucket;
  }
  private async check(): Promise<void> {
    if (this.down) throw new Error(`${this.inner.bucket}: NATS is not reachable (simulated partition)`);
  }
  get = async (key: string) => (await this.check(), this.inner.get(key));
  list = async () => (await this.check(), this.inner.list());
  create = async (key: string, value: Uint8Array) => (await this.check(), this.inner.create(key, value));
  update = async (key: string, value: Uint8Array, revision: number) => (await this.check(), this.inner.update(key, value, revision));
  put = async (key: string, value: Uint8Array) => (await this.check(), this.inner.put(key, value));
  delete = async (key: string, revision?: number) => (await this.check(), this.inner.delete(key, revision));
  writeIfBucketAt = async (key: string, value: Uint8Array | undefined, lastRevision: number) => (await this.check(), this.inner.writeIfBucketAt(key, value, lastRevision));
  lastRevision = async () => (await this.check(), this.inner.lastRevision());
  watch = async (onChange: (c: KvChange) => void, onSynced?: () => void, onError?: (e: KvWatchError) => void, o?: WatchOptions) => {
    await this.check();
    // Changes made while cut off are lost to this client, as with a real partition (a watcher would resync).
    return this.inner.watch(
      (c) => {
        if (!this.down) onChange(c);
      },
      onSynced,
      onError,
      o,
    );
  };
}
