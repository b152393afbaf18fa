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

/**
 * Encodes the envelope without the payload, then appends the payload field.
 * Protobuf readers merge fields in any order, so this is a valid WalRecord,
 * and the (large) payload is copied once instead of twice.
 */
export function encodeWalRecord(init: WalRecordInit): Uint8Array {
  const head = toBinary(WalRecordSchema, create(WalRecordSchema, { ...init, payload: new Uint8Array(0), version: WAL_RECORD_VERSION, kind: init.kind ?? RecordKind.TICKS }));
  const payload = init.payload;
  let len = payload.length;
  const varint: number[] = [];
  do {
    const byte = len & 0x7f;
    len = Math.floor(len / 128);
    varint.push(len > 0 ? byte | 0x80 : byte);
  } while (len > 0);
  const out = new Uint8Array(head.length + 1 + varint.length + payload.length);
  out.set(head, 0);
  out[head.length] = (PAYLOAD_FIELD << 3) | 2;
  out.set(varint, head.length + 1);
  out.set(payload, head.length + 1 + varint.length);
  return out;
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
