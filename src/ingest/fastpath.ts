// Gateway fast path: a client batch written in exactly the WAL payload layout
// (src/codec/ipcwrite.ts: the table's schema message, then one dictionary +
// record batch pair per bucket, e.g. by TickPublisher) is validated in place
// and each pair's bytes are forwarded into its WAL record, without building a
// TickBatch, symbol strings, or a new Arrow stream.
//
// It only accepts; it never rejects. Anything it does not recognise or that
// breaks a rule (any rule) makes it return undefined, and the general path
// (prepare.ts) decodes the batch and gives the exact error. So this file can
// stay strict and simple: every check is a "not the common case" bail-out.
import { walRecordPrefixOf } from "../../protocols/codec.js";
import type { BytePool } from "../codec/pool.js";
import { walMsgId, walSubject } from "../../protocols/subjects.js";
import { fnv1a32, fnv1a32AsciiBytes } from "../../protocols/routing.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { MAX_SYMBOL_BYTES, MAX_TS_MICROS, MIN_TS_MICROS } from "../codec/arrow.js";
import { EOS, dictSlotValues, dictTemplate, fieldWidths, metaMatches, metaSlot, rbSlotValues, rbTemplate, walSchemaMessage } from "../codec/ipcwrite.js";
import type { PreparedBatch, Producer, TimeWindow, WalAppendPlan } from "./plan.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const expected = new Float64Array(2 + 64 + 2 * 128);

/** FNV-1a of bytes[a..b) (protocols/routing.ts), or -1 when they are not valid UTF-8. */
function symbolHash(bytes: Uint8Array, a: number, b: number): number {
  const h = fnv1a32AsciiBytes(bytes, a, b);
  if (h >= 0) return h;
  try {
    utf8.decode(bytes.subarray(a, b));
  } catch {
    return -1;
  }
  return fnv1a32(bytes, a, b);
}

interface Pair {
  readonly start: number;
  readonly end: number;
  readonly bucket: number;
  readonly rows: number;
  readonly minTs: number;
  readonly maxTs: number;
}

/** Typed views of a payload, 8-aligned at the stream start (copied to a scratch buffer when not). */
interface Views {
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly f32: Float32Array;
  readonly f64: Float64Array;
}

let scratch: Views | undefined;

function viewsOf(bytes: Uint8Array): Views {
  const ab = bytes.buffer as ArrayBuffer;
  const base = bytes.byteOffset;
  if (base % 8 !== 0) {
    if (!scratch || scratch.u8.length < bytes.length) {
      const s = new ArrayBuffer(Math.max(1 << 16, 2 ** Math.ceil(Math.log2(bytes.length))));
      scratch = { u8: new Uint8Array(s), i32: new Int32Array(s), u32: new Uint32Array(s), f32: new Float32Array(s), f64: new Float64Array(s) };
    }
    scratch.u8.set(bytes);
    return scratch;
  }
  const n = bytes.length;
  return { u8: bytes, i32: new Int32Array(ab, base, n >> 2), u32: new Uint32Array(ab, base, n >> 2), f32: new Float32Array(ab, base, n >> 2), f64: new Float64Array(ab, base, n >> 3) };
}

/**
 * Validates and plans a batch in the WAL payload layout; undefined when the
 * batch is not in that layout or breaks a rule (the general path then decides).
 */
export function tryFastPrepare(tenant: string, spec: TableSpec, bytes: Uint8Array, producer: Producer | undefined, pool?: BytePool, window?: TimeWindow): PreparedBatch | undefined {
  const schema = walSchemaMessage(spec);
  const n = bytes.length;
  if (n < schema.length + 8 || n % 8 !== 0) return undefined;
  for (let i = 0; i < schema.length; i++) if (bytes[i] !== schema[i]) return undefined;
  const v = viewsOf(bytes);
  const u8 = v.u8;
  const i32 = v.i32;
  const u32 = v.u32;
  const dv = new DataView(u8.buffer, u8.byteOffset, n);
  const dt = dictTemplate();
  const widths = fieldWidths(spec);
  const rt = rbTemplate(widths.length);
  const shards = spec.shards;
  const cols = spec.columns;
  const pairs: Pair[] = [];
  let seen = 0; // buckets already used, as a bit set for up to 31 shards
  let totalRows = 0;
  let p = schema.length;
  for (;;) {
    if (p + 8 <= n && i32[p >> 2] === -1 && i32[(p >> 2) + 1] === 0) {
      if (p + 8 !== n) return undefined;
      break;
    }
    const start = p;
    // Dictionary batch: read its size from the slots, then check the whole metadata.
    if (p + dt.bytes.length > n) return undefined;
    const nsym = metaSlot(dv, p, dt, 1);
    const dataLen = metaSlot(dv, p, dt, 8);
    if (nsym <= 0 || dataLen < 0) return undefined;
    dictSlotValues(nsym, dataLen, expected);
    if (!metaMatches(u8, dv, p, dt, expected)) return undefined;
    p += dt.bytes.length;
    const dictBody = expected[0]!;
    if (p + dictBody > n) return undefined;
    // Every entry: non-empty, short, valid UTF-8, all in one bucket.
    const dataAt = p + expected[7]!;
    const o4 = p >> 2;
    let bucket = -1;
    let prev = i32[o4]!;
    if (prev !== 0) return undefined;
    for (let i = 1; i <= nsym; i++) {
      const o = i32[o4 + i]!;
      if (o <= prev || o - prev > MAX_SYMBOL_BYTES || o > dataLen) return undefined;
      const h = symbolHash(u8, dataAt + prev, dataAt + o);
      if (h < 0) return undefined;
      const b = h % shards;
      if (bucket !== b) {
        if (bucket >= 0) return undefined;
        bucket = b;
      }
      prev = o;
    }
    if (prev !== dataLen) return undefined;
    if (shards > 31 || (seen & (1 << bucket)) !== 0) return undefined;
    seen |= 1 << bucket;
    p += dictBody;

    // Record batch.
    if (p + rt.bytes.length > n) return undefined;
    const rows = metaSlot(dv, p, rt, 1);
    if (rows <= 0) return undefined;
    rbSlotValues(widths, rows, expected);
    if (!metaMatches(u8, dv, p, rt, expected)) return undefined;
    p += rt.bytes.length;
    const body = p;
    if (body + expected[0]! > n) return undefined;
    let s = 2 + widths.length + 2; // slot of field 0's values buffer offset
    // Symbol keys.
    let at = (body + expected[s]!) >> 2;
    for (let r = 0; r < rows; r++) {
      const k = i32[at + r]!;
      if (k < 0 || k >= nsym) return undefined;
    }
    // Timestamps: int64 microseconds in range.
    s += 4;
    at = (body + expected[s]!) >> 2;
    let minTs = Infinity;
    let maxTs = -Infinity;
    for (let r = 0; r < rows; r++) {
      const hi = i32[at + 2 * r + 1]!;
      if (hi < 0 || hi >= 0x200000) return undefined;
      const t = hi * 4294967296 + u32[at + 2 * r]!;
      if (!(t >= MIN_TS_MICROS && t < MAX_TS_MICROS)) return undefined;
      if (t < minTs) minTs = t;
      if (t > maxTs) maxTs = t;
    }
    // Values.
    for (let c = 0; c < cols.length; c++) {
      s += 4;
      const off = body + expected[s]!;
      const col = cols[c]!;
      switch (col.type) {
        case "float64":
          if (!col.allowNonFinite) {
            const f64 = v.f64;
            for (let r = 0, a = off >> 3; r < rows; r++) {
              const x = f64[a + r]!;
              if (x - x !== 0) return undefined;
            }
          }
          break;
        case "float32":
          if (!col.allowNonFinite) {
            const f32 = v.f32;
            for (let r = 0, a = off >> 2; r < rows; r++) {
              const x = f32[a + r]!;
              if (x - x !== 0) return undefined;
            }
          }
          break;
        case "int64":
          for (let r = 0, a = off >> 2; r < rows; r++) {
            const hi = i32[a + 2 * r + 1]!;
            if (hi < -0x200000 || hi >= 0x200000 || !Number.isSafeInteger(hi * 4294967296 + u32[a + 2 * r]!)) return undefined;
          }
          break;
        default: // int32 and bool: every bit pattern is a value
          break;
      }
    }
    p = body + expected[0]!;
    totalRows += rows;
    if (totalRows > spec.maxBatchRows) return undefined;
    // Outside the table's plausible window: the general path refuses it with a message naming the row.
    if (window && (minTs < window.minMicros || maxTs > window.maxMicros)) return undefined;
    pairs.push({ start, end: p, bucket, rows, minTs, maxTs });
  }
  if (pairs.length === 0) return undefined;

  // All records of the batch in one buffer (pooled: released once the WAL acked them all).
  pairs.sort((a, b) => a.bucket - b.bucket);
  const heads: Uint8Array[] = [];
  let total = 0;
  for (const pr of pairs) {
    const payloadLen = schema.length + (pr.end - pr.start) + EOS.length;
    const head = walRecordPrefixOf(tenant, spec.name, spec.version, producer, pr.bucket, pr.rows, pr.minTs, pr.maxTs, payloadLen);
    heads.push(head);
    total += head.length + payloadLen;
  }
  const slab = pool ? pool.acquire(total) : new Uint8Array(total);
  const appends: WalAppendPlan[] = [];
  let w = 0;
  for (let i = 0; i < pairs.length; i++) {
    const pr = pairs[i]!;
    const head = heads[i]!;
    const from = w;
    slab.set(head, w);
    w += head.length;
    slab.set(schema, w);
    w += schema.length;
    slab.set(bytes.subarray(pr.start, pr.end), w);
    w += pr.end - pr.start;
    slab.set(EOS, w);
    w += EOS.length;
    appends.push({
      bucket: pr.bucket,
      subject: walSubject(tenant, spec.name, pr.bucket),
      msgId: producer ? walMsgId(producer.id, producer.seq, spec.name, pr.bucket) : undefined,
      rows: pr.rows,
      record: slab.subarray(from, w),
    });
  }
  return { tenant, table: spec.name, rows: totalRows, appends };
}
