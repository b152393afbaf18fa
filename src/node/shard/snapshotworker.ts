// Worker thread body of off-loop snapshots (./snapshotwriter.ts; two threads
// per process, one at a lower priority, kept for the next snapshot). The main thread stages the hot set's
// rows chunk by chunk (src/snapshot/staging.ts) into staging buffers it
// shares with this thread (a pool of slots); this thread lays a chunk out as
// a format-2 frame in a buffer of its own, gives the slot straight back for
// the next chunk, delta-encodes and compresses the frame (zstd on libuv's thread pool),
// hashes it and, when the job names an upload target, writes it into the
// object store over a connection of its own (the main thread then only
// stages: its event loop carries the ingest); else posts the packed frame
// back for the main thread to stream there. After the last chunk, the SHA-256.
import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Objm, setSha256Backend } from "@nats-io/obj";
import { natsCredsOptions, natsTlsOptions } from "../../runtime/natsclient.js";
import { putObject } from "../../snapshot/objects.js";
import type { PutResult } from "../../snapshot/objects.js";
import { PartQueue } from "../../snapshot/partqueue.js";
import type { UploadTarget } from "../../snapshot/store.js";
import type { ColumnSpec } from "../../../protocols/tablespec.js";
import { frameBytes } from "../../snapshot/columnar.js";
import { packFrameParts, packFramePartsSync } from "../../snapshot/packed.js";
import { frameOfStaged } from "../../snapshot/staging.js";
import { idleThisThread, niceThisThread } from "../threadnice.js";
import type { SnapshotPriority } from "./snapshotnice.js";

/** What a snapshot thread is started with. */
export interface SnapshotWorkerData {
  /** Priority the thread takes when it starts: SCHED_IDLE or a nice value (0: the node's priority). */
  readonly nice: SnapshotPriority;
}

/**
 * A staged chunk (src/snapshot/staging.ts) as sent: its rows are in slot
 * `slot` of the job's shared staging buffers, which comes along (`buffer`)
 * the first time the job uses the slot; or, slot -1, in `buffer` of its own
 * (transferred: the small seam chunk). Shared slots, not buffers transferred
 * there and back (fresh ones each snapshot): bench:ops wrote 10 M ticks in
 * 1.71-1.75 s against 1.82-1.96 s, and ingest during snapshots ran at
 * 0.80-0.87 of idle against 0.78-0.88 (3 runs each).
 */
export interface ChunkOnWire {
  readonly kind: number;
  readonly cap: number;
  readonly rows: number;
  /** Symbol id, row count pairs, in row order. */
  readonly runs: Uint32Array;
  readonly slot: number;
  readonly buffer?: ArrayBufferLike;
}

/** What the main thread sends: one job is begin, its chunks in order, end. */
export type SnapshotJobMessage =
  /** `upload`: this thread writes the data object itself (a "stored" message before "done"); without, it posts the parts. */
  | { readonly type: "begin"; readonly columns: readonly ColumnSpec[]; readonly upload?: UploadTarget }
  /** `busy`: the shard is ingesting: the thread then packs one frame at a time, leaving a core to the ingest. */
  | { readonly type: "chunk"; readonly chunk: ChunkOnWire; readonly busy: boolean }
  | { readonly type: "end" };

export type SnapshotWorkerMessage =
  /** A chunk's staging buffer is read: its slot (-1: a buffer of its own, not given back) takes the next chunk. */
  | { readonly type: "free"; readonly slot: number }
  /** One packed frame: its head and compressed bytes (the data object is every part's head and bytes, in order). */
  | { readonly type: "part"; readonly head: Uint8Array; readonly bytes: Uint8Array }
  /** The data object is stored (upload jobs): its size and the SHA-256 of the bytes sent. */
  | { readonly type: "stored"; readonly bytes: number; readonly sha256: string }
  | { readonly type: "done"; readonly sha256: string }
  | { readonly type: "error"; readonly message: string };

/** A buffer is transferable when it is a whole ArrayBuffer (a small Buffer lives in Node's shared pool and is copied). */
const whole = (b: Uint8Array): ArrayBuffer[] => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? [b.buffer as ArrayBuffer] : []);

/**
 * Frames compressed at once (zstd on libuv's thread pool) while the next one is
 * laid out. Two keep both cores of these machines busy when the node has
 * nothing else to do: a 10 M-tick snapshot wrote in 1.8 s instead of 2.6.
 * While the shard ingests, one: with two, a snapshot took a third of the
 * ingest rate (bench:ops, ingest_during_snapshot_vs_idle_ratio 0.69, against
 * 0.85 before).
 */
const PACK_AHEAD_IDLE = 2;

const port = parentPort;
if (port !== null) {
  // The background thread (./snapshotwriter.ts): the ingest and queries of the node come first.
  const { nice } = workerData as SnapshotWorkerData;
  if (nice === "idle") idleThisThread();
  else if (nice > 0) niceThisThread(nice);
  let columns: readonly ColumnSpec[] = [];
  let hash: Hash | undefined;
  /** Frames are laid out in these, reused chunk after chunk (fresh memory is what a snapshot must not spend). */
  let frameBuffers: ArrayBuffer[] = [];
  /** Frames being compressed, oldest first, each with the buffer it was laid out in. */
  let packing: { readonly packed: Promise<readonly [Uint8Array, Uint8Array]>; readonly buffer: ArrayBuffer }[] = [];
  /** Set when a chunk failed: the job's remaining chunks are dropped until the next begin. */
  let failed = false;
  /** The job's shared staging buffers, by slot. */
  let slots = new Map<number, ArrayBufferLike>();
  /** An upload job's writer: the parts it reads, its connection, what it stored. */
  let upload: { readonly parts: PartQueue; readonly nc: Promise<NatsConnection>; readonly put: Promise<PutResult> } | undefined;

  /** Posts the oldest packed frame (hashed in order), or hands it to the upload, and frees its frame buffer. */
  const emitOldest = async (): Promise<void> => {
    const p = packing.shift()!;
    const [head, bytes] = await p.packed;
    frameBuffers.push(p.buffer);
    hash!.update(head);
    hash!.update(bytes);
    if (upload !== undefined) {
      await upload.parts.push(head);
      await upload.parts.push(bytes);
    } else port.postMessage({ type: "part", head, bytes } satisfies SnapshotWorkerMessage, [...whole(head), ...whole(bytes)]);
  };

  /** A connection per job: a process may run nodes on several servers (tests), and a snapshot is long beside a connect. */
  const startUpload = (t: UploadTarget): NonNullable<typeof upload> => {
    setSha256Backend("native");
    const parts = new PartQueue();
    const nc = connect({ servers: t.dial.servers, name: `${t.dial.name} snapshot`, maxReconnectAttempts: 10, ...natsCredsOptions(t.dial.credsPath), ...natsTlsOptions(t.dial.caPath) });
    const put = (async () => {
      const c = await nc;
      const os = await new Objm(c).open(t.bucket);
      return putObject(jetstream(c), os, t.bucket, t.name, parts, t.chunkBytes);
    })();
    // The packer learns of a failed writer at its next part.
    put.catch((e: unknown) => parts.fail(e as Error));
    nc.catch(() => {});
    return { parts, nc, put };
  };

  /** Ends an upload job's writer and closes its connection; a failure ends the job. */
  const finishUpload = async (u: NonNullable<typeof upload>, ok: boolean): Promise<PutResult | undefined> => {
    if (ok) u.parts.close();
    else u.parts.fail(new Error("snapshot job failed"));
    try {
      return ok ? await u.put : undefined;
    } finally {
      await u.put.catch(() => {});
      await u.nc.then((c) => c.close()).catch(() => {});
    }
  };

  const handle = async (m: SnapshotJobMessage): Promise<void> => {
    if (m.type === "begin") {
      columns = m.columns;
      hash = createHash("sha256");
      failed = false;
      slots = new Map();
      frameBuffers = [];
      packing = [];
      try {
        upload = m.upload === undefined ? undefined : startUpload(m.upload);
      } catch (e) {
        // Credentials or CA unreadable: this job fails with the reason; its chunks are dropped.
        failed = true;
        upload = undefined;
        port.postMessage({ type: "error", message: (e as Error).message } satisfies SnapshotWorkerMessage);
      }
      return;
    }
    if (failed) {
      if (m.type === "chunk") port.postMessage({ type: "free", slot: m.chunk.slot } satisfies SnapshotWorkerMessage);
      return;
    }
    try {
      if (m.type === "end") {
        while (packing.length > 0) await emitOldest();
        if (upload !== undefined) {
          const u = upload;
          upload = undefined;
          const stored = (await finishUpload(u, true))!;
          port.postMessage({ type: "stored", bytes: stored.bytes, sha256: stored.sha256 } satisfies SnapshotWorkerMessage);
        }
        port.postMessage({ type: "done", sha256: hash!.digest("hex") } satisfies SnapshotWorkerMessage);
        frameBuffers = [];
        return;
      }
      const c = m.chunk;
      if (c.slot >= 0 && c.buffer !== undefined) slots.set(c.slot, c.buffer);
      const staged = c.slot >= 0 ? slots.get(c.slot) : c.buffer;
      if (staged === undefined) throw new Error(`chunk in staging slot ${c.slot}, which this job never shared`);
      const need = frameBytes(columns, c.runs.length / 2, c.rows);
      let buffer = frameBuffers.pop();
      if (buffer === undefined || buffer.byteLength < need) buffer = new ArrayBuffer(need);
      const frame = frameOfStaged(columns, { kind: c.kind, buffer: staged, cap: c.cap, rows: c.rows, runs: c.runs }, buffer);
      port.postMessage({ type: "free", slot: c.slot } satisfies SnapshotWorkerMessage);
      // Busy: compressed here, one frame at a time at this thread's priority; idle: on libuv's pool, beside the next frame's layout.
      // An upload copies the bytes into its own chunks: nothing to post, no copy of their own.
      const packed = m.busy ? Promise.resolve(packFramePartsSync(columns, frame, upload === undefined)) : packFrameParts(columns, frame);
      // A failure surfaces when its turn comes to be posted.
      packed.catch(() => {});
      packing.push({ packed, buffer });
      while (packing.length >= (m.busy ? 1 : PACK_AHEAD_IDLE)) await emitOldest();
    } catch (e) {
      failed = true;
      packing = [];
      if (upload !== undefined) {
        const u = upload;
        upload = undefined;
        await finishUpload(u, false);
      }
      port.postMessage({ type: "error", message: (e as Error).message } satisfies SnapshotWorkerMessage);
    }
  };
  // One message at a time, in order: at most PACK_AHEAD_IDLE frames are being compressed at once.
  let queue: Promise<void> = Promise.resolve();
  port.on("message", (m: SnapshotJobMessage) => {
    queue = queue.then(() => handle(m));
  });
}
