// Snapshot data format 3: format 2's chunks (columnar.ts), each column
// delta-encoded over its bit pattern and the chunk payload compressed with zstd.
// Ticks are sorted by symbol and time, so timestamps, LSNs, row numbers and
// prices of one series differ little from row to row: 10 M ticks shrink from
// 360 MB to about a sixth, which is what the object store has to move (it,
// not the CPU, bounds a snapshot's write and load).
//
// A frame: u32 compressed length, u32 payload length (format 2's, a multiple of
// 8), then zstd(payload with its columns delta-encoded). Deltas are taken on
// the raw bits as unsigned integers of the column's width (mod 2^64 for 8-byte
// columns, 2^32 for 4-byte ones; 1-byte columns stay as they are), so every
// value, NaN payloads, -0 and int64 extremes included, comes back bit for bit.
// Pure: bytes in, bytes out.
import { promisify } from "node:util";
import { constants, zstdCompress, zstdCompressSync, zstdDecompress, zstdDecompressSync } from "node:zlib";
import type { ColumnSpec } from "../../protocols/tablespec.js";
import { CHUNK_HEAD, FRAME_HEAD, SnapshotCorruptError, chunkHead, columnRegions, parseChunk } from "./columnar.js";
import type { Chunk } from "./columnar.js";

/**
 * zstd level 1 with a 16 Ki-entry hash table and a 256 KiB window: measured on
 * 2 M delta-encoded bench ticks, level 1 compresses 4.4x (levels -3..-1
 * 2.9-3.3x, not much faster; 3 only 3.75x before deltas and twice the CPU),
 * and the smaller table and window take ~25% less CPU for the same ratio.
 */
/**
 * Each frame also carries zstd's checksum of its content (xxHash64, 4 bytes),
 * verified as it decompresses: a frame read in place from message memory that
 * changed after the SHA-256 over it was taken fails to decode rather than
 * decoding to other rows.
 */
const ZSTD_PARAMS = { [constants.ZSTD_c_compressionLevel]: 1, [constants.ZSTD_c_hashLog]: 14, [constants.ZSTD_c_windowLog]: 18, [constants.ZSTD_c_checksumFlag]: 1 };
/** No format-2 payload is larger (a chunk is at most 1 Mi rows of a few columns): a bigger claim is corruption, not an allocation to attempt. */
const MAX_PAYLOAD = 1 << 30;

/** x[i] -= x[i-1] over `n` values of `width` bytes at byte `at` of `u8`'s buffer (4-aligned), backwards so it works in place. */
export function deltaEncode(u8: Uint8Array, at: number, width: number, n: number): void {
  if (n < 2 || width === 1) return;
  if (width === 4) {
    const u = new Uint32Array(u8.buffer, u8.byteOffset + at, n);
    for (let i = n - 1; i > 0; i--) u[i] = u[i]! - u[i - 1]!;
    return;
  }
  const u = new Uint32Array(u8.buffer, u8.byteOffset + at, 2 * n);
  for (let i = 2 * n - 2; i > 0; i -= 2) {
    const lo = u[i]!;
    const plo = u[i - 2]!;
    u[i] = lo - plo;
    u[i + 1] = u[i + 1]! - u[i - 1]! - (lo < plo ? 1 : 0);
  }
}

/** Inverse of deltaEncode: x[i] += x[i-1], forwards. */
export function deltaDecode(u8: Uint8Array, at: number, width: number, n: number): void {
  if (n < 2 || width === 1) return;
  if (width === 4) {
    const u = new Uint32Array(u8.buffer, u8.byteOffset + at, n);
    for (let i = 1; i < n; i++) u[i] = u[i]! + u[i - 1]!;
    return;
  }
  const u = new Uint32Array(u8.buffer, u8.byteOffset + at, 2 * n);
  for (let i = 2; i < 2 * n; i += 2) {
    const sum = u[i]! + u[i - 2]!;
    u[i] = sum;
    u[i + 1] = u[i + 1]! + u[i - 1]! + (sum > 0xffffffff ? 1 : 0);
  }
}

function transformColumns(stored: readonly ColumnSpec[], payload: Uint8Array, f: typeof deltaEncode): void {
  const { rows, runs } = chunkHead(payload, 0);
  for (const r of columnRegions(stored, runs, rows)) f(payload, r.at, r.width, rows);
}

/**
 * A format-2 frame (columnar.ts; its own buffer, which this changes: the
 * columns are delta-encoded in place) as a format-3 frame, in a buffer of its
 * own so that a worker can transfer it.
 */
export function packFrame(stored: readonly ColumnSpec[], frame2: Uint8Array): Uint8Array {
  const payload = deltaPayload(stored, frame2);
  return framed(zstdCompressSync(payload, zstdOptions(payload)), payload.length);
}

const zstdCompressAsync = promisify(zstdCompress);
const zstdDecompressAsync = promisify(zstdDecompress);

/**
 * packFrame with the compression on libuv's thread pool: a caller that keeps
 * a few in flight compresses on every core while its own thread encodes the
 * next chunks (the snapshot worker does; zstd is most of a snapshot's CPU).
 */
export async function packFrameAsync(stored: readonly ColumnSpec[], frame2: Uint8Array): Promise<Uint8Array> {
  const payload = deltaPayload(stored, frame2);
  return framed(await zstdCompressAsync(payload, zstdOptions(payload)), payload.length);
}

/**
 * packFrameAsync's frame as its 8-byte head and the compressed bytes, not
 * copied together (their concatenation is the frame): a writer that streams
 * them saves a copy into fresh memory of every compressed byte.
 */
export async function packFrameParts(stored: readonly ColumnSpec[], frame2: Uint8Array): Promise<readonly [Uint8Array, Uint8Array]> {
  const payload = deltaPayload(stored, frame2);
  return partsOf(await zstdCompressAsync(payload, zstdOptions(payload)), payload.length);
}

/**
 * packFrameParts on the calling thread (a background thread that runs at a low
 * priority compresses there, not on the shared pool). `transferable`: the
 * compressed bytes get a buffer of their own (the sync call returns a view of
 * its larger output buffer, which a worker could only post by copying all of
 * it); without, the view, for a caller that copies the bytes on anyway.
 */
export function packFramePartsSync(stored: readonly ColumnSpec[], frame2: Uint8Array, transferable = true): readonly [Uint8Array, Uint8Array] {
  const payload = deltaPayload(stored, frame2);
  const z = zstdCompressSync(payload, zstdOptions(payload));
  if (!transferable) return partsOf(z, payload.length);
  const own = Buffer.allocUnsafeSlow(z.length);
  own.set(z);
  return partsOf(own, payload.length);
}

function partsOf(z: Uint8Array, len: number): readonly [Uint8Array, Uint8Array] {
  const head = Buffer.allocUnsafeSlow(FRAME_HEAD);
  head.writeUInt32LE(z.length, 0);
  head.writeUInt32LE(len, 4);
  return [head, z];
}

function deltaPayload(stored: readonly ColumnSpec[], frame2: Uint8Array): Uint8Array {
  const payload = frame2.subarray(FRAME_HEAD);
  transformColumns(stored, payload, deltaEncode);
  return payload;
}

/**
 * Output pieces of a third of the payload: one holds a frame of bench ticks
 * (4.4x), so nothing is concatenated (zlib's default 16 KiB pieces are, at the
 * end; data that compresses less than 3x spans 2-4 pieces and is), and far
 * less is allocated than with a payload-sized piece (2.4 MB per 64 Ki-row
 * chunk). V8 counts such buffers towards its next full GC: with
 * payload-sized pieces the background snapshot thread ran 75 full GCs in 27 s
 * of back-to-back snapshots, with a third 38 in 25 s (--trace-gc), their
 * marking on V8's helper threads at the node's priority.
 */
const zstdOptions = (payload: Uint8Array): { params: typeof ZSTD_PARAMS; chunkSize: number } => ({ params: ZSTD_PARAMS, chunkSize: Math.max(64 << 10, Math.ceil(payload.length / 3)) });

function framed(z: Uint8Array, len: number): Uint8Array {
  const out = Buffer.allocUnsafeSlow(FRAME_HEAD + z.length);
  out.writeUInt32LE(z.length, 0);
  out.writeUInt32LE(len, 4);
  out.set(z, FRAME_HEAD);
  return out;
}

interface FrameAt {
  /** Start of the compressed bytes. */
  readonly at: number;
  readonly zlen: number;
  /** The chunk payload's length once decompressed. */
  readonly len: number;
}

/**
 * The frame whose header starts at byte `at` of `dv`, `remain` bytes before
 * the data object's end (which the header's lengths must respect): its lengths,
 * checked. `pos` is where the header is in the object (for errors; default `at`).
 */
function frameAt(dv: DataView, at: number, remain: number, where: string, pos = at): FrameAt {
  if (remain < FRAME_HEAD) throw new SnapshotCorruptError(`${where}: truncated frame header at byte ${pos}`);
  const zlen = dv.getUint32(at, true);
  const len = dv.getUint32(at + 4, true);
  if (FRAME_HEAD + zlen > remain) throw new SnapshotCorruptError(`${where}: frame at byte ${pos} claims ${zlen} compressed bytes, only ${remain - FRAME_HEAD} remain`);
  if (len % 8 !== 0 || len < CHUNK_HEAD || len > MAX_PAYLOAD) throw new SnapshotCorruptError(`${where}: frame at byte ${pos} claims a ${len}-byte chunk (a multiple of 8 between ${CHUNK_HEAD} and ${MAX_PAYLOAD})`);
  return { at: at + FRAME_HEAD, zlen, len };
}

/** Frames of a format-3 data object, checked against the bytes present. */
export function packedFrames(data: Uint8Array, where: string): FrameAt[] {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: FrameAt[] = [];
  for (let at = 0; at < data.length; ) {
    const f = frameAt(dv, at, data.length - at, where);
    out.push(f);
    at = f.at + f.zlen;
  }
  return out;
}

/**
 * Unpacks the frames of a format-3 data object of `total` bytes while it
 * arrives in pieces (the object store's chunk messages): each frame is handed
 * to zstd on libuv's thread pool as soon as its last byte is in, read in place
 * when one piece holds it whole (pieces are never reused by their sender: the
 * NATS client gives every message its own memory) and gathered otherwise, so
 * the object is never assembled in one buffer (on these machines every fresh
 * megabyte costs milliseconds of page faults). Decompression runs on other
 * cores, overlapping the transfer and leaving the event loop free. Nothing it
 * returns is trusted before the data's SHA-256 checks out: the caller checks
 * it before finish(), which reports any damage the frames showed.
 */
export class PackedReader {
  private readonly pending: Promise<Chunk>[] = [];
  /** Bytes of the object pushed so far. */
  private pos = 0;
  /** A frame split across pieces, being gathered (its head included), and how much of it is in. */
  private gather: Uint8Array | undefined;
  private gathered = 0;
  /**
   * Gather buffers free again (their frame decompressed): most frames span
   * pieces, and gathering each into fresh memory faulted in 80 MB per 10 M ticks.
   */
  private readonly spare: ArrayBuffer[] = [];
  /** A frame head split across pieces. */
  private readonly head = Buffer.alloc(FRAME_HEAD);
  private headFill = 0;
  /** A damaged frame header seen while pushing: reported by finish(), so that a reader first learns what the checksums say. */
  private failed: unknown;

  constructor(
    private readonly stored: readonly ColumnSpec[],
    private readonly where: string,
    private readonly total: number,
  ) {}

  /** The next `piece` of the object. */
  push(piece: Uint8Array): void {
    if (this.failed !== undefined) return;
    try {
      this.pushFrames(piece);
    } catch (e) {
      this.failed = e;
    }
  }

  private pushFrames(piece: Uint8Array): void {
    let i = 0;
    while (i < piece.length) {
      if (this.gather !== undefined) {
        const take = Math.min(this.gather.length - this.gathered, piece.length - i);
        this.gather.set(piece.subarray(i, i + take), this.gathered);
        this.gathered += take;
        i += take;
        this.pos += take;
        if (this.gathered === this.gather.length) {
          const g = this.gather;
          this.gather = undefined;
          this.unpack(g, { at: FRAME_HEAD, zlen: g.length - FRAME_HEAD, len: new DataView(g.buffer, g.byteOffset, FRAME_HEAD).getUint32(4, true) }, this.pos - g.length, true);
        }
        continue;
      }
      // At a frame's start: its head first (it may be split too).
      let headBytes: Uint8Array;
      if (this.headFill > 0 || piece.length - i < FRAME_HEAD) {
        const take = Math.min(FRAME_HEAD - this.headFill, piece.length - i);
        this.head.set(piece.subarray(i, i + take), this.headFill);
        this.headFill += take;
        i += take;
        this.pos += take;
        if (this.headFill < FRAME_HEAD) return;
        this.headFill = 0;
        headBytes = this.head;
      } else {
        headBytes = piece.subarray(i, i + FRAME_HEAD);
        i += FRAME_HEAD;
        this.pos += FRAME_HEAD;
      }
      const start = this.pos - FRAME_HEAD;
      const f = frameAt(new DataView(headBytes.buffer, headBytes.byteOffset, FRAME_HEAD), 0, this.total - start, this.where, start);
      if (headBytes !== this.head && piece.length - i >= f.zlen) {
        // Whole in this piece: read in place.
        this.unpack(piece, { at: i, zlen: f.zlen, len: f.len }, start, false);
        i += f.zlen;
        this.pos += f.zlen;
        continue;
      }
      this.gather = this.gatherBuffer(FRAME_HEAD + f.zlen);
      this.gather.set(headBytes.subarray(0, FRAME_HEAD), 0);
      this.gathered = FRAME_HEAD;
      if (f.zlen === 0) {
        const g = this.gather;
        this.gather = undefined;
        this.unpack(g, { at: FRAME_HEAD, zlen: 0, len: f.len }, start, true);
      }
    }
  }

  /** `bytes` bytes to gather a frame in: a spare buffer if one is big enough, else a new one (with room for the frames to come). */
  private gatherBuffer(bytes: number): Uint8Array {
    const i = this.spare.findIndex((b) => b.byteLength >= bytes);
    const buffer = i >= 0 ? this.spare.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(Math.max(bytes, 1 << 20)).buffer;
    return new Uint8Array(buffer, 0, bytes);
  }

  /** `gathered`: `bytes` is a gather buffer, returned to the spares once zstd has read it (the chunk is in memory of its own). */
  private unpack(bytes: Uint8Array, f: FrameAt, start: number, gathered: boolean): void {
    const chunk = unpackFrameAsync(this.stored, bytes, f, this.where, start);
    // Failures surface in finish(), in frame order.
    chunk.catch(() => {});
    if (gathered) void chunk.finally(() => this.spare.push(bytes.buffer as ArrayBuffer)).catch(() => {});
    this.pending.push(chunk);
  }

  /** The chunks of the whole object (every byte pushed). */
  async finish(): Promise<Chunk[]> {
    if (this.failed !== undefined) throw this.failed;
    if (this.pos !== this.total) throw new SnapshotCorruptError(`${this.where}: ${this.pos} bytes arrived, the object has ${this.total}`);
    if (this.gather !== undefined || this.headFill > 0) throw new SnapshotCorruptError(`${this.where}: truncated frame at byte ${this.pos - this.gathered - this.headFill}`);
    return Promise.all(this.pending);
  }
}

/**
 * One output chunk a little larger than the frame's payload: the default 16 KiB
 * ones are concatenated at the end (a third more CPU), and an output buffer the
 * payload fills exactly makes zlib allocate a second one of the same size and
 * run zstd again to learn there is nothing more (per 10 M ticks, 360 MB of
 * allocations nothing writes to, which still press V8 into collecting).
 */
const decompressOptions = (len: number): { maxOutputLength: number; chunkSize: number } => ({ maxOutputLength: len, chunkSize: len + 64 });

/** `pos`: where the frame starts in the data object (for errors). */
async function unpackFrameAsync(stored: readonly ColumnSpec[], data: Uint8Array, frame: FrameAt, where: string, pos = frame.at - FRAME_HEAD): Promise<Chunk> {
  let payload: Uint8Array;
  try {
    payload = await zstdDecompressAsync(data.subarray(frame.at, frame.at + frame.zlen), decompressOptions(frame.len));
  } catch (e) {
    throw new SnapshotCorruptError(`${where}: frame at byte ${pos} does not decompress (${(e as Error).message})`);
  }
  return decodedChunk(stored, payload, frame, where, pos);
}

/** One format-3 frame's chunk: decompressed, checked, its columns decoded. */
export function unpackFrame(stored: readonly ColumnSpec[], data: Uint8Array, frame: FrameAt, where: string, pos = frame.at - FRAME_HEAD): Chunk {
  let payload: Uint8Array;
  try {
    payload = zstdDecompressSync(data.subarray(frame.at, frame.at + frame.zlen), decompressOptions(frame.len));
  } catch (e) {
    throw new SnapshotCorruptError(`${where}: frame at byte ${pos} does not decompress (${(e as Error).message})`);
  }
  return decodedChunk(stored, payload, frame, where, pos);
}

function decodedChunk(stored: readonly ColumnSpec[], decompressed: Uint8Array, frame: FrameAt, where: string, pos: number): Chunk {
  if (decompressed.length !== frame.len) throw new SnapshotCorruptError(`${where}: frame at byte ${pos} decompresses to ${decompressed.length} bytes, its header says ${frame.len}`);
  // Column views need an 8-aligned start (a small result may sit in Node's shared pool).
  const payload = decompressed.byteOffset % 8 === 0 ? decompressed : new Uint8Array(decompressed);
  // parseChunk checks the header against the length before any column is touched.
  const chunk = parseChunk(stored, payload, 0, payload.length, where, pos);
  transformColumns(stored, payload, deltaDecode);
  return chunk;
}

/** The chunks of a format-3 data object, in order (synchronously: for small snapshots and tests). */
export function unpackChunks(stored: readonly ColumnSpec[], data: Uint8Array, where: string): Chunk[] {
  return packedFrames(data, where).map((f) => unpackFrame(stored, data, f, where));
}
