// Snapshot data objects in and out of the JetStream object store, faster than
// its client: the client awaits each chunk's PubAck before sending the next
// (one round trip per chunk) and reads through a push consumer with flow
// control (~70-80 MB/s on a quiet 2-core machine). Here the same object layout
// (ADR-20: chunks on $O.<bucket>.C.<nuid>, then the object's info, with its
// SHA-256 digest, rolled up on $O.<bucket>.M.<name>) is written with several
// PubAcks outstanding, and read through an ordered pull consumer into one
// buffer. Objects written here read with the client's get() and vice versa;
// list, info and delete stay the client's.
import { createHash } from "node:crypto";
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { headers, nuid } from "@nats-io/transport-node";
import type { ObjectStore } from "@nats-io/obj";
import { TaggedError } from "../../protocols/tagged.js";

/**
 * Publishes awaiting their PubAck at once: 4 measured ~3x one at a time on
 * loopback (1 MiB chunks). With 60 KiB chunks 16 wrote a 10 M-tick snapshot
 * ~0.1 s faster, but a burst of PubAcks then held the event loop 63-66 ms.
 */
const INFLIGHT = 4;

/**
 * How long a read waits for the next chunk before it gives up (a chunk purged
 * while the read runs would otherwise leave it waiting forever: the count is
 * checked before the read, not during it).
 */
const READ_IDLE_MS = 30_000;

/** Messages the object stream holds on one chunk subject (`$O.<bucket>.C.<nuid>`). */
export async function chunksHeld(js: JetStreamClient, bucket: string, nuid: string): Promise<number> {
  const subject = `$O.${bucket}.C.${nuid}`;
  const info = await js.jetstreamManager(false).then((jsm) => jsm.streams.info(`OBJ_${bucket}`, { subjects_filter: subject }));
  return info.state.subjects?.[subject] ?? 0;
}

/** A data object could not be read whole, or its bytes do not match its digest. */
export class SnapshotObjectError extends TaggedError("SnapshotObjectError") {}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");

export interface PutResult {
  readonly bytes: number;
  /** SHA-256 of the bytes, hex (what a snapshot manifest records). */
  readonly sha256: string;
}

/**
 * Stores `parts` (concatenated) as object `name` of `bucket`, in chunks of
 * `chunkBytes`. The object's info is written last, so until then the object
 * does not exist for readers; on failure its chunks are purged. A previous
 * object of the same name is replaced (its chunks purged after).
 */
export async function putObject(js: JetStreamClient, os: ObjectStore, bucket: string, name: string, parts: AsyncIterable<Uint8Array>, chunkBytes: number): Promise<PutResult> {
  const old = await os.info(name);
  const id = nuid.next();
  const chunkSubject = `$O.${bucket}.C.${id}`;
  const stream = `OBJ_${bucket}`;
  const sha = createHash("sha256");
  const inflight = new Set<Promise<PubAck>>();
  let failed: unknown;
  let chunks = 0;
  let size = 0;
  /**
   * Chunk buffers whose PubAck came back: the server has the bytes, so the
   * client holds no reference any more and the buffer takes the next chunk
   * (fresh ones cost page faults: ~0.2 s of a 10 M-tick snapshot's 80 MB).
   */
  const spare: Buffer[] = [];
  const send = async (payload: Buffer): Promise<void> => {
    sha.update(payload);
    chunks++;
    size += payload.length;
    const p = js.publish(chunkSubject, payload);
    inflight.add(p);
    p.then(
      () => {
        inflight.delete(p);
        if (payload.length === chunkBytes) spare.push(payload);
      },
      (e: unknown) => {
        inflight.delete(p);
        failed ??= e;
      },
    );
    while (inflight.size >= INFLIGHT && failed === undefined) await Promise.race(inflight).catch(() => {});
    if (failed !== undefined) throw failed;
  };
  try {
    // Parts are packed into whole chunks: a chunk is one JetStream message, the fewer the faster.
    let pending: Buffer = Buffer.allocUnsafeSlow(chunkBytes);
    let fill = 0;
    for await (const part of parts) {
      for (let at = 0; at < part.length; ) {
        const take = Math.min(chunkBytes - fill, part.length - at);
        pending.set(part.subarray(at, at + take), fill);
        fill += take;
        at += take;
        if (fill === chunkBytes) {
          // The published buffer may still be queued for the socket: the next chunk goes in another one.
          const sent = pending;
          pending = spare.pop() ?? Buffer.allocUnsafeSlow(chunkBytes);
          fill = 0;
          await send(sent);
        }
      }
    }
    if (fill > 0) await send(pending.subarray(0, fill));
    await Promise.all(inflight);
    if (failed !== undefined) throw failed;
    // A write that stalled long enough to look cut off may have lost chunks to a sweep (./sweep.ts): it must not become an object.
    const held = await chunksHeld(js, bucket, id);
    if (held !== chunks) throw new SnapshotObjectError(`object ${name} of bucket ${bucket}: the stream holds ${held} of its ${chunks} chunks (removed as leftovers while this write stalled?); the object is not written`);
    const digest = sha.digest();
    const info = { name, description: "", options: { max_chunk_size: chunkBytes }, bucket, nuid: id, size, chunks, mtime: new Date().toISOString(), digest: `SHA-256=${b64url(digest)}`, deleted: false };
    const h = headers();
    h.set("Nats-Rollup", "sub");
    await js.publish(`$O.${bucket}.M.${b64url(Buffer.from(name))}`, JSON.stringify(info), { headers: h });
    if (old !== null && !old.deleted) await js.jetstreamManager().then((jsm) => jsm.streams.purge(stream, { filter: `$O.${bucket}.C.${old.nuid}` })).catch(() => {});
    return { bytes: size, sha256: digest.toString("hex") };
  } catch (e) {
    await Promise.allSettled(inflight);
    await js
      .jetstreamManager()
      .then((jsm) => jsm.streams.purge(stream, { filter: chunkSubject }))
      .catch(() => {});
    throw e;
  }
}

/**
 * Object `name` of `bucket` in one buffer, its digest checked; null when it
 * does not exist. The SHA-256 (hex) comes back too: a caller that has one to
 * compare against needs no second pass over the bytes.
 */
export async function getObject(js: JetStreamClient, os: ObjectStore, bucket: string, name: string, expectBytes?: number): Promise<{ data: Uint8Array; sha256: string } | null> {
  let data: Buffer | undefined;
  let at = 0;
  const read = await readObject(js, os, bucket, name, (piece, size) => {
    // Aligned at 0 in its own ArrayBuffer: the decoder's column views need 8-aligned offsets.
    data ??= Buffer.allocUnsafeSlow(size);
    data.set(piece, at);
    at += piece.length;
  }, expectBytes);
  return read === null ? null : { data: data ?? Buffer.alloc(0), sha256: read.sha256 };
}

/**
 * Streams object `name` of `bucket` to `onPiece`, chunk by chunk as they
 * arrive (each piece is the chunk message's own memory, never reused), then
 * checks its digest; null when it does not exist. Nothing a caller made of the
 * pieces may be trusted before this resolves: a damaged object throws here.
 */
export async function readObject(
  js: JetStreamClient,
  os: ObjectStore,
  bucket: string,
  name: string,
  onPiece: (piece: Uint8Array, size: number) => void,
  /** The size the caller's manifest records: another one is refused before a byte is read. */
  expectBytes?: number,
  /** How long to wait for the next chunk (tests shorten it). */
  idleMs = READ_IDLE_MS,
): Promise<{ bytes: number; sha256: string } | null> {
  const info = await os.info(name);
  if (info === null || info.deleted) return null;
  if (expectBytes !== undefined && info.size !== expectBytes) throw new SnapshotObjectError(`object ${name} of bucket ${bucket} has ${info.size} bytes, the manifest says ${expectBytes}`);
  if (info.options?.link) throw new SnapshotObjectError(`object ${name} of bucket ${bucket} is a link; snapshot data objects never are`);
  const sha = createHash("sha256");
  let at = 0;
  let seen = 0;
  if (info.chunks > 0) {
    const chunkSubject = `$O.${bucket}.C.${info.nuid}`;
    // Chunks gone from the stream (purged by hand or by a sweep gone wrong) would leave the consumer below waiting: refused before the read, and during it by the idle deadline.
    const held = await chunksHeld(js, bucket, info.nuid);
    if (held !== info.chunks) throw new SnapshotObjectError(`object ${name} of bucket ${bucket}: the stream holds ${held} of its ${info.chunks} chunks`);
    const consumer = await js.consumers.get(`OBJ_${bucket}`, { filter_subjects: chunkSubject });
    // Several chunks asked for at once: the server streams them while the last ones are handled.
    const messages = await consumer.consume({ max_bytes: 32 * 1024 * 1024 });
    let idle = false;
    const timer = setTimeout(() => {
      idle = true;
      messages.stop();
    }, idleMs);
    try {
      for await (const m of messages) {
        timer.refresh();
        if (at + m.data.length > info.size) throw new SnapshotObjectError(`object ${name} of bucket ${bucket}: chunks hold more than its ${info.size} bytes`);
        sha.update(m.data);
        at += m.data.length;
        seen++;
        onPiece(m.data, info.size);
        if (m.info.pending === 0) break;
      }
    } finally {
      clearTimeout(timer);
      messages.stop();
    }
    if (idle) throw new SnapshotObjectError(`object ${name} of bucket ${bucket}: no chunk came for ${idleMs} ms after ${seen} of ${info.chunks} (chunks removed while it was read?)`);
  }
  if (seen !== info.chunks || at !== info.size) throw new SnapshotObjectError(`object ${name} of bucket ${bucket}: read ${seen} chunks, ${at} bytes; its info says ${info.chunks}, ${info.size}`);
  const digest = sha.digest();
  if (`SHA-256=${b64url(digest)}` !== info.digest) throw new SnapshotObjectError(`object ${name} of bucket ${bucket} is corrupt: its SHA-256 does not match its info's digest`);
  return { bytes: at, sha256: digest.toString("hex") };
}
