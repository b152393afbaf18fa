// Snapshots that do not stop the node. The hot set's rows are staged on the
// event loop in slices of a few milliseconds, straight from its chunks into a
// few recycled staging buffers (src/snapshot/staging.ts): series by series,
// rows up to the LSN the snapshot covers (records applied in between are left
// out), evictions held until every row is copied. Each staged chunk is handed
// to a worker thread (one of two, by priority: see below; the staging buffers
// are a pool the thread shares), which frames, compresses and hashes it and
// gives the buffer back; the packed
// chunks stream into the object store while ingest and queries go on.
// PX_SNAPSHOT_WORKER=off writes on the event loop as before (benchmarks
// compare the two).
import { setTimeout as sleep, setImmediate as yieldToLoop } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import type { ShardAddress } from "../../../protocols/subjects.js";
import type { HotTable } from "../../hotset/index.js";
import type { SeamRow } from "../../hotset/index.js";
import type { SnapshotHead, SnapshotStore, UploadTarget, WrittenSnapshot } from "../../snapshot/store.js";
import type { SnapshotSummary } from "../../snapshot/codec.js";
import { ChunkStager, stagingBytes } from "../../snapshot/staging.js";
import type { StagedChunk } from "../../snapshot/staging.js";
import type { ChunkOnWire, SnapshotJobMessage, SnapshotWorkerData, SnapshotWorkerMessage } from "./snapshotworker.js";
import { snapshotNice } from "./snapshotnice.js";
import type { SnapshotPriority } from "./snapshotnice.js";
import { TaggedError } from "../../../protocols/tagged.js";
import { workerEntry } from "../workerentry.js";

const SLICE_MS = 5;
const WORKER = workerEntry("snapshotworker", import.meta.url);
/** Rows per chunk: the first bytes reach the object store early, no part is huge. */
const CHUNK_ROWS = 1 << 16;
/** Staged chunks handed to the thread and not yet given back: the thread always has the next one, and the buffers stay few. */
const AHEAD = 3;

/**
 * Whether the snapshot thread writes the data object itself (over a NATS
 * connection of its own) when the store allows it. PX_SNAPSHOT_UPLOAD=main
 * streams it from the event loop as before (benchmarks compare the two).
 */
const uploadOffLoop = (env: Record<string, string | undefined> = process.env): boolean => env.PX_SNAPSHOT_UPLOAD !== "main";

export const snapshotWorkerEnabled = (env: Record<string, string | undefined> = process.env): boolean => env.PX_SNAPSHOT_WORKER !== "off";

/**
 * Snapshot data streaming out of the thread (or, `stored`, what the thread
 * stored itself), what the manifest says of it, and its figures once the last
 * chunk is packed.
 */
interface Encoding {
  readonly head: SnapshotHead;
  readonly parts: AsyncIterable<Uint8Array>;
  readonly stored: Promise<{ readonly bytes: number; readonly sha256: string }> | undefined;
  readonly summary: Promise<SnapshotSummary & { readonly sha256: string }>;
}

/**
 * A snapshot thread, started on first use and kept (starting one loads the
 * codec through tsx, which takes a second or more on a busy machine). Jobs run
 * one at a time; a thread that failed is replaced on the next job. `nice`:
 * the thread lowers its own priority to it when it starts (0: it keeps the
 * node's; "idle": SCHED_IDLE).
 */
class SnapshotThread {
  private worker: Worker | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Staging buffers shared with the thread, kept from job to job (fresh
   * memory costs page faults; a buffer sent to the thread costs a GC: see
   * ChunkOnWire), all of `poolBytes`. Dropped when a job fails: a thread
   * being terminated may still read one.
   */
  private pool: SharedArrayBuffer[] = [];
  private poolBytes = 0;

  constructor(private readonly nice: () => SnapshotPriority) {}

  private get(): Worker {
    if (this.worker === undefined) {
      const workerData: SnapshotWorkerData = { nice: this.nice() };
      const w = new Worker(WORKER.url, { execArgv: WORKER.execArgv, workerData });
      // Never keeps the process alive on its own.
      w.unref();
      w.on("exit", () => {
        if (this.worker === w) this.worker = undefined;
      });
      this.worker = w;
    }
    return this.worker;
  }

  /** Starts the thread if it is not running (it boots while the caller waits for its turn). */
  warm(): void {
    this.get();
  }

  /**
   * Encodes `table` as of its applied LSN when the job's turn comes: staged
   * here in slices, packed on the thread. The head is known once staging began.
   */
  encode(table: HotTable, target: (head: SnapshotHead) => UploadTarget | undefined = () => undefined): Promise<Encoding> {
    const ready = new Promise<Encoding>((resolve, reject) => {
      const run = (): Promise<void> => this.stage(table, target, resolve).catch((e: unknown) => reject(e));
      this.queue = this.queue.then(run, run);
    });
    return ready;
  }

  private stage(table: HotTable, target: (head: SnapshotHead) => UploadTarget | undefined, ready: (e: Encoding) => void): Promise<void> {
    const w = this.get();
    const columns = table.spec.columns;
    const parts: Uint8Array[] = [];
    // The staging loop (waiting for a buffer) and the reader of parts (waiting for one) may both wait.
    let waiters: (() => void)[] = [];
    const poke = (): void => {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    };
    const wait = (): Promise<void> => new Promise<void>((r) => waiters.push(r));
    let finished = false;
    let failure: Error | undefined;
    let abandoned = false;
    let settle!: { resolve: (d: { sha256: string }) => void; reject: (e: Error) => void };
    const done = new Promise<{ sha256: string }>((resolve, reject) => (settle = { resolve, reject }));
    done.catch(() => {});
    let settleStored!: { resolve: (s: { bytes: number; sha256: string }) => void; reject: (e: Error) => void };
    const stored = new Promise<{ bytes: number; sha256: string }>((resolve, reject) => (settleStored = { resolve, reject }));
    stored.catch(() => {});
    const bytes = stagingBytes(columns, CHUNK_ROWS);
    if (this.poolBytes !== bytes) {
      this.pool = [];
      this.poolBytes = bytes;
    }
    const pool = this.pool;
    // Every slot is free when a job starts: the previous job's thread gave each back before its "done".
    const free = pool.map((_, slot) => slot);
    const slotOf = new Map<ArrayBufferLike, number>(pool.map((b, slot) => [b, slot]));
    /** Slots this job sent the thread already. */
    const shared = new Set<number>();
    let handedOver = 0;
    return new Promise<void>((release) => {
      const end = (e?: Error): void => {
        if (finished) return;
        finished = true;
        failure = e;
        w.off("message", onMessage);
        w.off("error", onError);
        w.off("exit", onExit);
        if (e !== undefined) {
          settle.reject(e);
          settleStored.reject(e);
          if (this.pool === pool) this.pool = [];
          if (this.worker === w) this.worker = undefined;
          void w.terminate();
        }
        poke();
        release();
      };
      const onMessage = (m: SnapshotWorkerMessage): void => {
        if (m.type === "free") {
          handedOver--;
          if (m.slot >= 0) free.push(m.slot);
        } else if (m.type === "part") {
          parts.push(m.head, m.bytes);
        } else if (m.type === "stored") {
          settleStored.resolve(m);
        } else if (m.type === "done") {
          settle.resolve(m);
          // A series staged whole in one slice (every chunk of one huge symbol) grew the pool: it keeps only what the next job needs to start.
          if (this.pool === pool && pool.length > AHEAD + 1) pool.length = AHEAD + 1;
          end();
          return;
        } else end(new SnapshotWorkerError(`snapshot worker: ${m.message}`));
        poke();
      };
      const onError = (e: Error): void => end(e);
      const onExit = (code: number): void => end(new SnapshotWorkerError(`snapshot worker exited with code ${code} before it finished`));
      w.on("message", onMessage);
      w.on("error", onError);
      w.on("exit", onExit);
      const post = (m: SnapshotJobMessage, transfer: ArrayBuffer[] = []): void => w.postMessage(m, transfer);
      const waitFor = async (ok: () => boolean): Promise<void> => {
        while (!ok() && !finished) await wait();
      };

      const appliedLsn = table.appliedLsn;
      const count = table.symbolCount;
      const symbols: string[] = [];
      for (let id = 0; id < count; id++) symbols.push(table.symbolAt(id));
      const head: SnapshotHead = { appliedLsn, persistedLsn: table.persistedLsn, horizonMicros: table.horizonMicros, symbols, schemaVersion: table.spec.version };
      const upload = target(head);
      const ingesting = new Ingesting(table);
      const take = (): SharedArrayBuffer => {
        const slot = free.pop();
        if (slot !== undefined) return pool[slot]!;
        // A slice staged more chunks than the pool holds: it grows to what the staging needs.
        const b = new SharedArrayBuffer(bytes);
        slotOf.set(b, pool.length);
        pool.push(b);
        return b;
      };
      const stager = new ChunkStager(columns, CHUNK_ROWS, take, (c: StagedChunk) => {
        handedOver++;
        const slot = slotOf.get(c.buffer);
        const { kind, cap, rows, runs } = c;
        if (slot === undefined) {
          // A buffer of its own (the seam chunk): transferred.
          post({ type: "chunk", chunk: { kind, cap, rows, runs, slot: -1, buffer: c.buffer }, busy: ingesting.busy() }, [c.buffer as ArrayBuffer]);
          return;
        }
        const chunk: ChunkOnWire = shared.has(slot) ? { kind, cap, rows, runs, slot } : { kind, cap, rows, runs, slot, buffer: c.buffer };
        shared.add(slot);
        post({ type: "chunk", chunk, busy: ingesting.busy() });
      });
      const summary = (async () => {
        post({ type: "begin", columns, ...(upload === undefined ? {} : { upload }) });
        // Every series is read as of one horizon: an eviction asked for meanwhile waits until the last row is copied.
        const releaseHold = table.holdEvictions();
        let figures: SnapshotSummary;
        try {
          const seam: { sym: number; row: SeamRow }[] = [];
          let sliceStart = performance.now();
          for (let id = 0; id < count; id++) {
            for (const slice of table.viewSeries(id, appliedLsn)) stager.add(id, slice);
            const row = table.seam(id);
            if (row !== null) seam.push({ sym: id, row });
            if (performance.now() - sliceStart > SLICE_MS) {
              await waitFor(() => handedOver < AHEAD || abandoned);
              await yieldToLoop();
              if (failure !== undefined) throw failure;
              if (abandoned) throw new SnapshotWorkerError("snapshot abandoned by its writer");
              sliceStart = performance.now();
            }
          }
          figures = stager.finish(seam);
        } finally {
          releaseHold();
        }
        post({ type: "end" });
        const { sha256 } = await done;
        return { ...figures, sha256 };
      })();
      summary.catch((e: Error) => end(e));
      const iterate: AsyncIterable<Uint8Array> = {
        async *[Symbol.asyncIterator]() {
          try {
            for (;;) {
              const next = parts.shift();
              if (next !== undefined) {
                yield next;
                continue;
              }
              if (failure !== undefined) throw failure;
              if (finished) return;
              await wait();
            }
          } finally {
            // A writer that stopped reading (its store failed) stops the staging too.
            abandoned = true;
            poke();
          }
        },
      };
      ready({ head, parts: iterate, stored: upload === undefined ? undefined : stored, summary });
    });
  }
}

/**
 * Whether the shard is ingesting: its table applied records since the last
 * look, at least 50 ms ago. (The event loop's own utilization cannot tell: the
 * snapshot's streaming keeps it 50-80% busy on an idle node.)
 */
class Ingesting {
  private lsn: number;
  private at = performance.now();
  private last = false;

  constructor(private readonly table: HotTable) {
    this.lsn = table.appliedLsn;
  }

  busy(): boolean {
    const now = performance.now();
    if (now - this.at < 50) return this.last;
    this.last = this.table.appliedLsn !== this.lsn;
    this.lsn = this.table.appliedLsn;
    this.at = now;
    return this.last;
  }
}

/** The snapshot thread failed or died mid-job (the snapshot fails; the next one starts a new thread). */
export class SnapshotWorkerError extends TaggedError("SnapshotWorkerError") {}

/**
 * Two threads. A shard that is ingesting when its snapshot starts is written
 * by the background thread, at a lower priority (PX_SNAPSHOT_NICE: SCHED_IDLE
 * by default, or a nice value): on a busy machine the ingest gets the CPU first. A shard at rest is written by
 * the foreground thread, at the node's priority: the snapshot's own stages
 * (this thread's staging and streaming, the object store's server, the
 * packing thread) share the cores, and a niced packing thread slowed a
 * 10 M-tick write from 1.7 s to 2.1 s on an idle machine. A thread cannot
 * raise its priority again without privileges, hence two. (bench:ops and the
 * README's Benchmarks give what each arrangement measured.)
 */
const foreground = new SnapshotThread(() => 0);
const background = new SnapshotThread(() => snapshotNice());

/** Whether `table` applied records within `ms` (it is sampled twice, `ms` apart). */
async function ingestingNow(table: HotTable, ms = 50): Promise<boolean> {
  const lsn = table.appliedLsn;
  await sleep(ms);
  return table.appliedLsn !== lsn;
}

/** Below this many rows a snapshot is encoded on the event loop: it takes a few ms, less than handing it over. */
const OFF_LOOP_MIN_ROWS = 100_000;

/** Writes a snapshot of `table` without holding the event loop for more than a slice at a time. */
export async function writeSnapshotOffLoop(snapshots: SnapshotStore, shard: ShardAddress, table: HotTable): Promise<WrittenSnapshot> {
  if (table.rowCount < OFF_LOOP_MIN_ROWS) {
    // A growing shard starts the threads ahead of its first snapshot off the loop (booting one takes a second or more under tsx).
    if (table.rowCount >= OFF_LOOP_MIN_ROWS / 4) warmSnapshotThread();
    return snapshots.write(shard, table);
  }
  warmSnapshotThread();
  const thread = (await ingestingNow(table)) ? background : foreground;
  const { head, parts, stored, summary } = await thread.encode(table, (h) => (uploadOffLoop() ? snapshots.uploadTarget?.(shard, h) : undefined));
  return stored === undefined ? snapshots.writeStream(shard, head, parts, summary) : snapshots.writeUploaded(shard, head, stored, summary);
}

/** Starts the snapshot threads ahead of the first snapshot (as a shard's small snapshots do once it grows: benchmarks that build a big table at once call it). */
export function warmSnapshotThread(): void {
  foreground.warm();
  background.warm();
}
