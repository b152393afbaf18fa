// Snapshots that do not stop the node. The event loop builds the snapshot's
// frames straight from the hot set's chunks (src/snapshot/liveframes.ts: a
// frame per turn, rows up to the LSN the snapshot covers, so records applied
// in between are left out) into a few buffers it recycles, and hands each to a
// worker thread (transferred), which compresses and hashes them; the packed
// frames stream into the object store while ingest and queries go on. If an
// eviction happens meanwhile the snapshot starts over; after three tries the
// table is exported in one go and framed from that copy.
// PX_SNAPSHOT_WORKER=off writes on the event loop as before (benchmarks compare the two).
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import type { ShardAddress } from "../../../protocols/subjects.js";
import type { HotTable } from "../../hotset/index.js";
import type { SnapshotStore, WrittenSnapshot } from "../../snapshot/store.js";
import { SnapshotInterruptedError, liveFrameBytes, liveFrames } from "../../snapshot/liveframes.js";
import type { SnapshotSummary } from "../../snapshot/codec.js";
import type { SnapshotWorkerMessage, SnapshotWorkerRequest } from "./snapshotworker.js";
import { TaggedError } from "../../../protocols/tagged.js";

const WORKER_URL = new URL("./snapshotworker.ts", import.meta.url);
/** Rows per frame: the first bytes reach the object store early, and a frame is a millisecond or two of copying on the event loop. */
const FRAME_ROWS = 1 << 16;
/** Frame buffers in use at once (being filled, queued, compressed): the worker's two compressions, one being built, one spare. */
const POOL = 4;

export const snapshotWorkerEnabled = (env: Record<string, string | undefined> = process.env): boolean => env.PX_SNAPSHOT_WORKER !== "off";

/**
 * Frame buffers, kept for the process's next snapshots: a snapshot of 10 M
 * ticks moves ~360 MB through them; fresh memory for each would be faulted in
 * page by page (on these machines slower than the copy itself).
 */
class FramePool {
  private readonly free: ArrayBuffer[] = [];
  private out = 0;
  private readonly waiting: (() => void)[] = [];

  async take(bytes: number): Promise<ArrayBuffer> {
    for (;;) {
      const i = this.free.findIndex((b) => b.byteLength >= bytes);
      if (i >= 0) {
        this.out++;
        return this.free.splice(i, 1)[0]!;
      }
      if (this.out + this.free.length < POOL) {
        this.out++;
        return prefaulted(bytes);
      }
      // A buffer too small for this table's frames makes room for a bigger one.
      if (this.free.length > 0) {
        this.free.shift();
        continue;
      }
      await new Promise<void>((r) => this.waiting.push(r));
    }
  }

  give(buffer: ArrayBuffer): void {
    this.out = Math.max(0, this.out - 1);
    this.free.push(buffer);
    this.waiting.shift()?.();
  }

  /** The thread holding buffers died: they are gone, new ones are allocated. */
  reset(): void {
    this.out = 0;
    for (const w of this.waiting.splice(0)) w();
  }
}

/** Bytes of a new pool buffer touched per turn of the event loop. */
const PREFAULT_STEP = 256 * 1024;

/**
 * A new buffer, its pages touched a slice per turn: faulting in a frame's
 * megabytes at once (the first frame copied into it) held the event loop for
 * tens of milliseconds on a loaded machine.
 */
async function prefaulted(bytes: number): Promise<ArrayBuffer> {
  const buf = Buffer.allocUnsafeSlow(bytes).buffer;
  for (let at = 0; at < bytes; at += PREFAULT_STEP) {
    new Uint8Array(buf, at, Math.min(PREFAULT_STEP, bytes - at)).fill(0);
    await yieldToLoop();
  }
  return buf;
}

type Handler = (m: SnapshotWorkerMessage) => void;

/**
 * The process's snapshot thread, started on first use (or by warm()) and kept
 * (starting one loads the codec through tsx, which takes a second or more on a
 * busy machine). Jobs run one at a time; a thread that failed is replaced on
 * the next job.
 */
class SnapshotThread {
  private worker: Worker | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly pool = new FramePool();
  /** The running job's handler of parts, done and errors (free buffers go to the pool whoever runs). */
  private handler: Handler | undefined;
  private onFailure: ((e: Error) => void) | undefined;

  /** Starts the thread if it is not running. */
  warm(): void {
    this.get();
  }

  private get(): Worker {
    if (this.worker === undefined) {
      // The main thread runs under tsx (src/main.ts) or vitest: the worker loads TypeScript through tsx either way.
      const w = new Worker(WORKER_URL, { execArgv: ["--import", "tsx"] });
      const gone = (e: Error): void => {
        if (this.worker !== w) return;
        this.worker = undefined;
        this.pool.reset();
        this.onFailure?.(e);
      };
      w.on("message", (m: SnapshotWorkerMessage) => {
        if (m.type === "free") this.pool.give(m.buffer);
        else this.handler?.(m);
      });
      w.on("error", gone);
      w.on("exit", (code) => gone(new SnapshotWorkerError(`snapshot worker exited with code ${code} before it finished`)));
      // Never keeps the process alive on its own (after the listeners: adding a "message" listener refs the thread's port again).
      w.unref();
      this.worker = w;
    }
    return this.worker;
  }

  private send(w: Worker, m: SnapshotWorkerRequest, transfer: ArrayBuffer[] = []): void {
    w.postMessage(m, transfer);
  }

  /**
   * Writes a snapshot of `table` through the thread: frames built here, packed
   * there, streamed to the store. `frozen`: frame a one-go export instead.
   */
  write(snapshots: SnapshotStore, shard: ShardAddress, table: HotTable, frozen = false): Promise<WrittenSnapshot> {
    const run = (): Promise<WrittenSnapshot> => this.run(snapshots, shard, table, frozen);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }

  private async run(snapshots: SnapshotStore, shard: ShardAddress, table: HotTable, frozen: boolean): Promise<WrittenSnapshot> {
    const w = this.get();
    const chunks: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: Error | undefined;
    let settle!: { resolve: (sha256: string) => void; reject: (e: Error) => void };
    const sha = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
    sha.catch(() => {});
    const end = (e?: Error): void => {
      if (finished) return;
      finished = true;
      failure = e;
      this.handler = undefined;
      this.onFailure = undefined;
      if (e !== undefined) settle.reject(e);
      wake?.();
    };
    this.handler = (m) => {
      if (m.type === "part") {
        chunks.push(m.bytes);
        wake?.();
      } else if (m.type === "done") {
        settle.resolve(m.sha256);
        end();
      } else if (m.type === "error") end(new SnapshotWorkerError(`snapshot worker: ${m.message}`));
    };
    this.onFailure = (e) => end(e);
    const bytes = liveFrameBytes(table.spec.columns, FRAME_ROWS);
    const { head, frames } = liveFrames(table, FRAME_ROWS, () => this.pool.take(bytes), (b) => this.pool.give(b), frozen ? table.exportColumns() : undefined);
    this.send(w, { type: "start", spec: table.spec });
    // Frames go to the thread as they are built; the worker's "free" brings their buffers back.
    const feeding = (async (): Promise<SnapshotSummary> => {
      try {
        let r = await frames.next();
        while (r.done !== true) {
          if (finished) {
            this.pool.give(r.value.buffer);
            throw failure ?? new SnapshotWorkerError("snapshot worker: the job ended before its frames were sent");
          }
          this.send(w, { type: "frame", buffer: r.value.buffer, length: r.value.bytes.length }, [r.value.buffer]);
          r = await frames.next();
        }
        this.send(w, { type: "end" });
        return r.value;
      } catch (e) {
        if (!finished) this.send(w, { type: "abort" });
        end(e as Error);
        throw e;
      }
    })();
    feeding.catch(() => {});
    const parts: AsyncIterable<Uint8Array> = {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const next = chunks.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          if (failure !== undefined) throw failure;
          if (finished) return;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      },
    };
    const summary = Promise.all([feeding, sha]).then(([s, sha256]) => ({ ...s, sha256 }));
    summary.catch(() => {});
    try {
      return await snapshots.writeStream(shard, { ...head, schemaVersion: table.spec.version }, parts, summary);
    } finally {
      // A write that failed in the store (not in the thread) leaves the job running: the thread drops it.
      if (!finished) {
        this.send(w, { type: "abort" });
        end(new SnapshotWorkerError("snapshot write abandoned"));
      }
    }
  }
}

/** The snapshot thread failed or died mid-job (the snapshot fails; the next one starts a new thread). */
export class SnapshotWorkerError extends TaggedError("SnapshotWorkerError") {}

const thread = new SnapshotThread();

/**
 * Starts the snapshot thread ahead of the first snapshot (a shard runtime does
 * when it starts): booting it loads the codec through tsx, a second or more
 * that the first snapshot would otherwise wait for.
 */
export function warmSnapshotWriter(): void {
  thread.warm();
}

/** Below this many rows a snapshot is encoded on the event loop: it takes a few ms, less than handing it over. */
const OFF_LOOP_MIN_ROWS = 100_000;
/** Tries with the live table before the one-go export (evictions kept interleaving). */
const LIVE_TRIES = 3;

/** Writes a snapshot of `table` without holding the event loop for more than a slice at a time. */
export async function writeSnapshotOffLoop(snapshots: SnapshotStore, shard: ShardAddress, table: HotTable): Promise<WrittenSnapshot> {
  if (table.rowCount < OFF_LOOP_MIN_ROWS) return snapshots.write(shard, table);
  for (let attempt = 0; attempt < LIVE_TRIES; attempt++) {
    try {
      return await thread.write(snapshots, shard, table);
    } catch (e) {
      if (!(e instanceof SnapshotInterruptedError)) throw e;
    }
  }
  return thread.write(snapshots, shard, table, true);
}
