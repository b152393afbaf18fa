// Binary codecs for the protobuf messages in proto/: encode, and decode with a
// version check, so a reader rejects what it cannot read with a clear error.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { CorruptMessageError, UnsupportedVersionError } from "./errors.js";
import { WalRecordSchema, RecordKind } from "./gen/proxist/v1/wal_pb.js";
import type { WalRecord } from "./gen/proxist/v1/wal_pb.js";
import { SymbolDictionarySchema } from "./gen/proxist/v1/symbols_pb.js";
import type { SymbolDictionary } from "./gen/proxist/v1/symbols_pb.js";
import { WatermarkSchema } from "./gen/proxist/v1/watermark_pb.js";
import type { Watermark } from "./gen/proxist/v1/watermark_pb.js";
import { SnapshotManifestSchema } from "./gen/proxist/v1/snapshot_pb.js";
import type { SnapshotManifest } from "./gen/proxist/v1/snapshot_pb.js";
import { ControlReplySchema, ControlRequestSchema, NodeHeartbeatSchema } from "./gen/proxist/v1/control_pb.js";
import type { ControlReply, ControlRequest, NodeHeartbeat } from "./gen/proxist/v1/control_pb.js";

export const WAL_RECORD_VERSION = 1;
export const SYMBOL_DICTIONARY_VERSION = 1;
export const WATERMARK_VERSION = 1;
export const CONTROL_VERSION = 1;
export const SNAPSHOT_MANIFEST_VERSION = 1;

function decodeVersioned<Desc extends DescMessage & { typeName: string }>(
  schema: Desc,
  bytes: Uint8Array,
  supported: readonly number[],
): MessageShape<Desc> {
  let msg: MessageShape<Desc>;
  try {
    msg = fromBinary(schema, bytes);
  } catch (e) {
    throw new CorruptMessageError(schema.typeName, `invalid protobuf (${(e as Error).message})`, { cause: e });
  }
  const version = (msg as unknown as { version: number }).version;
  if (!supported.includes(version)) throw new UnsupportedVersionError(schema.typeName, version, supported);
  return msg;
}

export type WalRecordInit = Omit<WalRecord, "$typeName" | "$unknown" | "version" | "kind"> & { kind?: RecordKind };

/** Field number of WalRecord.payload (wal.proto). */
const PAYLOAD_FIELD = 12;

const textEncoder = new TextEncoder();
const stringBytes = new Map<string, Uint8Array>();

/** UTF-8 of the envelope's short strings (tenant, table, producer id), cached. */
function utf8Of(s: string): Uint8Array {
  let b = stringBytes.get(s);
  if (!b) {
    if (stringBytes.size > 10_000) stringBytes.clear();
    stringBytes.set(s, (b = textEncoder.encode(s)));
  }
  return b;
}

/** Protobuf writer for the WalRecord envelope: fields in number order, proto3 defaults left out (as toBinary does). */
class HeadWriter {
  readonly buf: number[] = [];
  varint(v: number): void {
    while (v >= 128) {
      this.buf.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.buf.push(v);
  }
  bigVarint(v: bigint): void {
    // int64/uint64 as unsigned 64-bit two's complement.
    let u = BigInt.asUintN(64, v);
    while (u >= 128n) {
      this.buf.push(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    this.buf.push(Number(u));
  }
  uint(field: number, v: number): void {
    if (v === 0) return;
    this.buf.push(field << 3);
    this.varint(v >>> 0);
  }
  int64(field: number, v: bigint): void {
    if (v === 0n) return;
    this.buf.push(field << 3);
    if (v > 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) this.varint(Number(v));
    else this.bigVarint(v);
  }
  string(field: number, s: string): void {
    if (s.length === 0) return;
    const b = utf8Of(s);
    this.buf.push((field << 3) | 2);
    this.varint(b.length);
    for (let i = 0; i < b.length; i++) this.buf.push(b[i]!);
  }
}

/**
 * The bytes of a WalRecord up to its payload: the envelope fields, then the
 * payload field's tag and length. `prefix + payload` is the encoded record, so
 * a caller can write the payload straight behind it (one copy of the bytes).
 */
export function walRecordPrefix(init: Omit<WalRecordInit, "payload">, payloadLength: number): Uint8Array {
  const w = new HeadWriter();
  w.uint(1, WAL_RECORD_VERSION);
  w.string(2, init.tenant);
  w.string(3, init.table);
  w.uint(4, init.schemaVersion);
  w.string(5, init.producerId);
  w.int64(6, init.producerSeq);
  w.uint(7, init.kind ?? RecordKind.TICKS);
  w.uint(8, init.bucket);
  w.uint(9, init.rows);
  w.int64(10, init.minTsMicros);
  w.int64(11, init.maxTsMicros);
  w.buf.push((PAYLOAD_FIELD << 3) | 2);
  w.varint(payloadLength);
  return Uint8Array.from(w.buf);
}

const prefixScratch = new Uint8Array(1024);

function putVarint(out: Uint8Array, p: number, v: number): number {
  while (v >= 128) {
    out[p++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[p++] = v;
  return p;
}

function putString(out: Uint8Array, p: number, field: number, s: string): number {
  if (s.length === 0) return p;
  const b = utf8Of(s);
  out[p++] = (field << 3) | 2;
  p = putVarint(out, p, b.length);
  out.set(b, p);
  return p + b.length;
}

function putUint(out: Uint8Array, p: number, field: number, v: number): number {
  if (v === 0) return p;
  out[p++] = field << 3;
  return putVarint(out, p, v);
}

/**
 * walRecordPrefix for the ingest hot path (numbers for the timestamps, no
 * intermediate objects). Same bytes as walRecordPrefix.
 */
export function walRecordPrefixOf(
  tenant: string,
  table: string,
  schemaVersion: number,
  producer: { readonly id: string; readonly seq: bigint } | undefined,
  bucket: number,
  rows: number,
  minTsMicros: number,
  maxTsMicros: number,
  payloadLength: number,
): Uint8Array {
  const safe = (x: number) => Number.isSafeInteger(x) && x >= 0;
  const seqSmall = producer === undefined || producer.seq <= BigInt(Number.MAX_SAFE_INTEGER);
  if (!safe(minTsMicros) || !safe(maxTsMicros) || !seqSmall || tenant.length + table.length + (producer?.id.length ?? 0) > 600) {
    return walRecordPrefix(
      { tenant, table, schemaVersion, producerId: producer?.id ?? "", producerSeq: producer?.seq ?? 0n, bucket, rows, minTsMicros: BigInt(minTsMicros), maxTsMicros: BigInt(maxTsMicros) },
      payloadLength,
    );
  }
  const out = prefixScratch;
  let p = putUint(out, 0, 1, WAL_RECORD_VERSION);
  p = putString(out, p, 2, tenant);
  p = putString(out, p, 3, table);
  p = putUint(out, p, 4, schemaVersion);
  if (producer) {
    p = putString(out, p, 5, producer.id);
    p = putUint(out, p, 6, Number(producer.seq));
  }
  p = putUint(out, p, 7, RecordKind.TICKS);
  p = putUint(out, p, 8, bucket);
  p = putUint(out, p, 9, rows);
  p = putUint(out, p, 10, minTsMicros);
  p = putUint(out, p, 11, maxTsMicros);
  out[p++] = (PAYLOAD_FIELD << 3) | 2;
  p = putVarint(out, p, payloadLength);
  return out.slice(0, p);
}

/**
 * Encodes a WalRecord whose payload is the concatenation of `parts` (copied
 * once, into the record). Same bytes as toBinary would give for the whole payload.
 */
export function encodeWalRecordParts(init: Omit<WalRecordInit, "payload">, parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const head = walRecordPrefix(init, len);
  const out = new Uint8Array(head.length + len);
  out.set(head, 0);
  let at = head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Encodes a WalRecord; the (large) payload is copied once. */
export function encodeWalRecord(init: WalRecordInit): Uint8Array {
  return encodeWalRecordParts(init, [init.payload]);
}

export function decodeWalRecord(bytes: Uint8Array): WalRecord {
  const rec = decodeVersioned(WalRecordSchema, bytes, [WAL_RECORD_VERSION]);
  if (rec.kind !== RecordKind.TICKS) {
    throw new CorruptMessageError(WalRecordSchema.typeName, `unknown record kind ${rec.kind}`);
  }
  return rec;
}

export function encodeSymbolDictionary(symbols: readonly string[]): Uint8Array {
  return toBinary(SymbolDictionarySchema, create(SymbolDictionarySchema, { version: SYMBOL_DICTIONARY_VERSION, symbols: [...symbols] }));
}

export function decodeSymbolDictionary(bytes: Uint8Array): SymbolDictionary {
  return decodeVersioned(SymbolDictionarySchema, bytes, [SYMBOL_DICTIONARY_VERSION]);
}

export function encodeWatermark(init: Omit<Watermark, "$typeName" | "$unknown" | "version">): Uint8Array {
  return toBinary(WatermarkSchema, create(WatermarkSchema, { ...init, version: WATERMARK_VERSION }));
}

export function decodeWatermark(bytes: Uint8Array): Watermark {
  return decodeVersioned(WatermarkSchema, bytes, [WATERMARK_VERSION]);
}

export function encodeControlRequest(init: Omit<ControlRequest, "$typeName" | "$unknown" | "version">): Uint8Array {
  return toBinary(ControlRequestSchema, create(ControlRequestSchema, { ...init, version: CONTROL_VERSION }));
}

export function decodeControlRequest(bytes: Uint8Array): ControlRequest {
  return decodeVersioned(ControlRequestSchema, bytes, [CONTROL_VERSION]);
}

export function encodeControlReply(init: Omit<ControlReply, "$typeName" | "$unknown" | "version">): Uint8Array {
  return toBinary(ControlReplySchema, create(ControlReplySchema, { ...init, version: CONTROL_VERSION }));
}

export function decodeControlReply(bytes: Uint8Array): ControlReply {
  return decodeVersioned(ControlReplySchema, bytes, [CONTROL_VERSION]);
}

export function encodeHeartbeat(init: Omit<NodeHeartbeat, "$typeName" | "$unknown" | "version">): Uint8Array {
  return toBinary(NodeHeartbeatSchema, create(NodeHeartbeatSchema, { ...init, version: CONTROL_VERSION }));
}

export function decodeHeartbeat(bytes: Uint8Array): NodeHeartbeat {
  return decodeVersioned(NodeHeartbeatSchema, bytes, [CONTROL_VERSION]);
}

export function encodeSnapshotManifest(init: Omit<SnapshotManifest, "$typeName" | "$unknown" | "version" | "symbols"> & { symbols: readonly string[] }): Uint8Array {
  return toBinary(
    SnapshotManifestSchema,
    create(SnapshotManifestSchema, {
      ...init,
      version: SNAPSHOT_MANIFEST_VERSION,
      symbols: { version: SYMBOL_DICTIONARY_VERSION, symbols: [...init.symbols] },
    }),
  );
}

export function decodeSnapshotManifest(bytes: Uint8Array): SnapshotManifest {
  const m = decodeVersioned(SnapshotManifestSchema, bytes, [SNAPSHOT_MANIFEST_VERSION]);
  if (m.symbols && m.symbols.version !== SYMBOL_DICTIONARY_VERSION) {
    throw new UnsupportedVersionError("proxist.v1.SymbolDictionary", m.symbols.version, [SYMBOL_DICTIONARY_VERSION]);
  }
  return m;
}

export { RecordKind };
export type { SnapshotManifest };
export type { WalRecord, SymbolDictionary, Watermark, ControlRequest, ControlReply, NodeHeartbeat };
