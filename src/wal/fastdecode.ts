// WAL payload fast path: a record's Arrow payload in exactly the layout the
// gateway writes (src/codec/ipcwrite.ts: the table's schema message, ONE
// dictionary + record batch pair, end of stream) is read straight into a
// TickBatch, without apache-arrow's Data objects or the general decoder's
// per-column dispatch. Every WAL record is decoded once per node (shard and
// sink share it, ./decode.ts), so this is per-record cost on the ingest path.
//
// It only accepts; it never rejects. Anything it does not recognise, or that
// breaks a rule, returns undefined and the general decoder (decodeTickBatch)
// decides, with its exact error. For what it accepts it returns what the
// general decoder returns (test/wal/fastdecode.test.ts checks both on the same
// bytes, corrupted ones included).
import type { TableSpec } from "../../protocols/tablespec.js";
import { MAX_SYMBOL_BYTES, MAX_TS_MICROS, MIN_TS_MICROS } from "../codec/arrow.js";
import { EOS, dictSlotValues, dictTemplate, fieldWidths, metaMatches, metaSlot, rbSlotValues, rbTemplate, walSchemaMessage } from "../codec/ipcwrite.js";
import type { TickBatch, ValueArray } from "../codec/tickbatch.js";
import { symbols as interned } from "../codec/symbolintern.js";

const expected = new Float64Array(2 + 64 + 2 * 128);

/** Typed views of a payload, 8-aligned at its start (copied to a scratch buffer when not). */
interface Views {
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly f32: Float32Array;
  readonly f64: Float64Array;
  readonly dv: DataView;
}

let scratch: Views | undefined;

function viewsOf(bytes: Uint8Array): Views {
  const n = bytes.length;
  if (bytes.byteOffset % 8 !== 0) {
    // NATS message data sits anywhere in the read buffer: one copy to read aligned words (every output is a copy anyway).
    if (!scratch || scratch.u8.length < n) {
      const s = new ArrayBuffer(Math.max(1 << 16, 2 ** Math.ceil(Math.log2(n))));
      scratch = { u8: new Uint8Array(s), i32: new Int32Array(s), u32: new Uint32Array(s), f32: new Float32Array(s), f64: new Float64Array(s), dv: new DataView(s) };
    }
    scratch.u8.set(bytes);
    return scratch;
  }
  const ab = bytes.buffer as ArrayBuffer;
  const base = bytes.byteOffset;
  return {
    u8: bytes,
    i32: new Int32Array(ab, base, n >> 2),
    u32: new Uint32Array(ab, base, n >> 2),
    f32: new Float32Array(ab, base, n >> 2),
    f64: new Float64Array(ab, base, n >> 3),
    dv: new DataView(ab, base, n),
  };
}

// Per intern entry: the record (`epoch`) that last used it and its id in that record's symbols. Two dictionary
// entries with the same bytes are one entry, so one id, with no Map per record.
const usedIn = new Int32Array(interned.capacity);
const idIn = new Int32Array(interned.capacity);
let epoch = 0;

/**
 * The ticks of a WAL payload written in the gateway's layout for `spec` (the
 * spec of the record's version), or undefined: not that layout, or a rule
 * broken (the general decoder then gives the error).
 */
export function tryDecodeWalPayload(spec: TableSpec, bytes: Uint8Array): TickBatch | undefined {
  const schema = walSchemaMessage(spec);
  const n = bytes.length;
  if (n < schema.length + 8 || n % 8 !== 0) return undefined;
  for (let i = 0; i < schema.length; i++) if (bytes[i] !== schema[i]) return undefined;
  const v = viewsOf(bytes);
  const { u8, i32, u32, dv } = v;
  const dt = dictTemplate();
  const widths = fieldWidths(spec);
  const rt = rbTemplate(widths.length);

  // Dictionary batch: its size from the slots, then the whole metadata checked.
  let p = schema.length;
  if (p + dt.bytes.length > n) return undefined;
  const nsym = metaSlot(dv, p, dt, 1);
  const dataLen = metaSlot(dv, p, dt, 8);
  if (nsym <= 0 || dataLen < 0) return undefined;
  dictSlotValues(nsym, dataLen, expected);
  if (!metaMatches(u8, dv, p, dt, expected)) return undefined;
  p += dt.bytes.length;
  const dictAt = p;
  const dictBody = expected[0]!;
  const dataAt = p + expected[7]!;
  if (p + dictBody > n) return undefined;
  // Offsets: from 0, non-decreasing, within the data (entries are checked when a row uses them).
  const o4 = dictAt >> 2;
  if (i32[o4] !== 0) return undefined;
  for (let i = 1; i <= nsym; i++) {
    const o = i32[o4 + i]!;
    if (o < i32[o4 + i - 1]! || o > dataLen) return undefined;
  }
  p += dictBody;

  // Record batch.
  if (p + rt.bytes.length > n) return undefined;
  const rows = metaSlot(dv, p, rt, 1);
  if (rows <= 0 || rows > spec.maxBatchRows) return undefined;
  rbSlotValues(widths, rows, expected);
  if (!metaMatches(u8, dv, p, rt, expected)) return undefined;
  p += rt.bytes.length;
  const body = p;
  const end = body + expected[0]!;
  // Exactly one pair, then the end of stream.
  if (end + EOS.length !== n) return undefined;
  for (let i = 0; i < EOS.length; i++) if (u8[end + i] !== EOS[i]) return undefined;

  // Symbols: distinct, in order of first use (as the general decoder interns them).
  let s = 2 + widths.length + 2; // slot of field 0's values buffer offset
  let at = (body + expected[s]!) >> 2;
  const symbols: string[] = [];
  const symbolIndex = new Uint32Array(rows);
  const mapped = new Int32Array(nsym).fill(-1);
  if (++epoch === 0x7fffffff) {
    usedIn.fill(0);
    epoch = 1;
  }
  const generation = interned.generation;
  for (let r = 0; r < rows; r++) {
    const k = i32[at + r]!;
    if (k < 0 || k >= nsym) return undefined;
    let id = mapped[k]!;
    if (id < 0) {
      const a = i32[o4 + k]!;
      const b = i32[o4 + k + 1]!;
      if (b === a || b - a > MAX_SYMBOL_BYTES) return undefined;
      const e = interned.find(u8, dataAt + a, dataAt + b);
      if (e < 0) return undefined;
      // The table was emptied during this record (over its bound): entry numbers no longer tell symbols apart.
      if (interned.generation !== generation) return undefined;
      if (usedIn[e] === epoch) id = idIn[e]!;
      else {
        id = symbols.length;
        symbols.push(interned.stringAt(e));
        usedIn[e] = epoch;
        idIn[e] = id;
      }
      mapped[k] = id;
    }
    symbolIndex[r] = id;
  }

  // Timestamps: int64 microseconds in range.
  s += 4;
  at = (body + expected[s]!) >> 2;
  const ts = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const hi = i32[at + 2 * r + 1]!;
    if (hi < 0 || hi >= 0x200000) return undefined;
    const t = hi * 4294967296 + u32[at + 2 * r]!;
    if (!(t >= MIN_TS_MICROS && t < MAX_TS_MICROS)) return undefined;
    ts[r] = t;
  }

  // Values, each a copy (the record's bytes are not kept).
  const values: ValueArray[] = [];
  const cols = spec.columns;
  for (let c = 0; c < cols.length; c++) {
    s += 4;
    const off = body + expected[s]!;
    const col = cols[c]!;
    switch (col.type) {
      case "float64": {
        const out = v.f64.slice(off >> 3, (off >> 3) + rows);
        if (!col.allowNonFinite) for (let r = 0; r < rows; r++) if (!Number.isFinite(out[r]!)) return undefined;
        values.push(out);
        break;
      }
      case "float32": {
        const out = v.f32.slice(off >> 2, (off >> 2) + rows);
        if (!col.allowNonFinite) for (let r = 0; r < rows; r++) if (!Number.isFinite(out[r]!)) return undefined;
        values.push(out);
        break;
      }
      case "int32":
        values.push(v.i32.slice(off >> 2, (off >> 2) + rows));
        break;
      case "int64": {
        const out = new Float64Array(rows);
        for (let r = 0, a = off >> 2; r < rows; r++) {
          const hi = i32[a + 2 * r + 1]!;
          const x = hi * 4294967296 + u32[a + 2 * r]!;
          if (hi < -0x200000 || hi >= 0x200000 || !Number.isSafeInteger(x)) return undefined;
          out[r] = x;
        }
        values.push(out);
        break;
      }
      case "bool": {
        const out = new Uint8Array(rows);
        for (let r = 0; r < rows; r++) out[r] = (u8[off + (r >> 3)]! >> (r & 7)) & 1;
        values.push(out);
        break;
      }
    }
  }
  return { rows, symbols, symbolIndex, ts, values };
}
