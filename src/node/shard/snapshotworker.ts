// Worker thread body of off-loop snapshots (./snapshotwriter.ts; one thread per
// process, kept for the next snapshot): receives format-2 frames the event loop
// built from the hot set (each in a pool buffer, transferred), delta-encodes
// and compresses them (zstd on libuv's thread pool, PACK_AHEAD at once), hashes
// the packed frames in order and posts each back (transferred) for the main
// thread to stream into the object store. Each frame's buffer goes back to the
// main thread's pool once its compression has read it; then the SHA-256.
import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";
import { parentPort } from "node:worker_threads";
import type { ColumnSpec, TableSpec } from "../../../protocols/tablespec.js";
import { packFrameAsync } from "../../snapshot/packed.js";

/** From the main thread: a job is `start`, its frames in order, then `end` (or `abort`). */
export type SnapshotWorkerRequest =
  | { readonly type: "start"; readonly spec: TableSpec }
  | { readonly type: "frame"; readonly buffer: ArrayBuffer; readonly length: number }
  | { readonly type: "end" }
  | { readonly type: "abort" };

export type SnapshotWorkerMessage =
  | { readonly type: "part"; readonly bytes: Uint8Array }
  | { readonly type: "free"; readonly buffer: ArrayBuffer }
  | { readonly type: "done"; readonly sha256: string }
  | { readonly type: "error"; readonly message: string };

/**
 * Frames compressed at once on libuv's thread pool. One: with two, bench:ops
 * (1 M ticks, load ~6) measured ingest during a snapshot at 0.58 of idle and
 * the write no faster (6.3 vs 5.0 s/10M) than with one (0.65); the event loop
 * and the node's ingest need the second core (as codec.ts's PACK_AHEAD found).
 */
const PACK_AHEAD = 1;

interface Job {
  readonly stored: readonly ColumnSpec[];
  readonly hash: Hash;
  readonly queue: { buffer: ArrayBuffer; length: number }[];
  /** Packed frames in arrival order (settled out of order, posted in order). */
  readonly packing: Promise<Uint8Array>[];
  running: number;
  ended: boolean;
  failed: boolean;
  posting: boolean;
}

const port = parentPort;
if (port !== null) {
  let job: Job | undefined;
  const post = (m: SnapshotWorkerMessage, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
  /** Frames not started yet go straight back to the pool (started ones return when zstd is done with them). */
  const release = (j: Job): void => {
    for (const f of j.queue.splice(0)) post({ type: "free", buffer: f.buffer }, [f.buffer]);
  };
  const fail = (j: Job, e: unknown): void => {
    if (j.failed) return;
    j.failed = true;
    release(j);
    if (job === j) job = undefined;
    post({ type: "error", message: (e as Error).message });
  };
  // Starts compressions while fewer than PACK_AHEAD run; posts finished ones in order.
  const pump = (j: Job): void => {
    while (!j.failed && j.running < PACK_AHEAD && j.queue.length > 0) {
      const f = j.queue.shift()!;
      j.running++;
      const packed = packFrameAsync(j.stored, new Uint8Array(f.buffer, 0, f.length));
      packed.catch(() => {});
      j.packing.push(packed);
      void packed.then(
        () => {
          j.running--;
          // zstd has read the frame: its buffer goes back to the main thread's pool.
          post({ type: "free", buffer: f.buffer }, [f.buffer]);
          void drain(j);
          pump(j);
        },
        (e: unknown) => {
          j.running--;
          post({ type: "free", buffer: f.buffer }, [f.buffer]);
          fail(j, e);
        },
      );
    }
  };
  const drain = async (j: Job): Promise<void> => {
    if (j.posting) return;
    j.posting = true;
    try {
      while (!j.failed && j.packing.length > 0) {
        const bytes = await j.packing[0]!;
        void j.packing.shift();
        j.hash.update(bytes);
        // packFrameAsync's result owns its whole buffer: transferred, not copied.
        post({ type: "part", bytes }, [bytes.buffer as ArrayBuffer]);
      }
      if (!j.failed && j.ended && j.running === 0 && j.queue.length === 0) {
        post({ type: "done", sha256: j.hash.digest("hex") });
        if (job === j) job = undefined;
      }
    } catch (e) {
      fail(j, e);
    } finally {
      j.posting = false;
    }
  };
  port.on("message", (m: SnapshotWorkerRequest) => {
    if (m.type === "start") {
      job = { stored: m.spec.columns, hash: createHash("sha256"), queue: [], packing: [], running: 0, ended: false, failed: false, posting: false };
      return;
    }
    const j = job;
    if (j === undefined) {
      // A frame of a job that failed or was aborted: its buffer still belongs to the pool.
      if (m.type === "frame") post({ type: "free", buffer: m.buffer }, [m.buffer]);
      return;
    }
    if (m.type === "abort") {
      j.failed = true;
      release(j);
      job = undefined;
      return;
    }
    if (m.type === "frame") {
      if (j.failed) {
        post({ type: "free", buffer: m.buffer }, [m.buffer]);
        return;
      }
      j.queue.push({ buffer: m.buffer, length: m.length });
      pump(j);
      return;
    }
    j.ended = true;
    void drain(j);
  });
}
