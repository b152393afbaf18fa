// Arrow IPC stream framing: each message is 0xFFFFFFFF, an int32 metadata
// length (padded to 8), the flatbuffer Message, then `bodyLength` body bytes.
// Splitting checks every length against the bytes actually present, so a huge
// length field costs nothing; joining writes the same framing back.
import type { ApiLimits } from "../limits.js";
import { LimitExceeded } from "../limits.js";
import { IpcError } from "./errors.js";
import { readMessageInfo } from "./message.js";
import type { MessageInfo } from "./message.js";

export const CONTINUATION = 0xffffffff;

export interface IpcMessage {
  /** The flatbuffer Message, without prefix. */
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

export interface CheckedMessage extends IpcMessage {
  readonly info: MessageInfo;
}

/** Splits an IPC stream into checked messages, up to end-of-stream or the end of the bytes. */
export function splitIpcStream(bytes: Uint8Array, limits: ApiLimits, what: string): CheckedMessage[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: CheckedMessage[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (pos + 4 > bytes.length) throw new IpcError(`${what}: the Arrow IPC stream is truncated at byte ${pos}; send the whole stream`);
    let len = view.getUint32(pos, true);
    pos += 4;
    // Streams written before Arrow 0.15 have no continuation marker.
    if (len === CONTINUATION) {
      if (pos + 4 > bytes.length) throw new IpcError(`${what}: the Arrow IPC stream is truncated at byte ${pos}; send the whole stream`);
      len = view.getUint32(pos, true);
      pos += 4;
    }
    if (len === 0) break; // end-of-stream marker
    if (len > bytes.length - pos) {
      throw new IpcError(`${what}: IPC message ${out.length} declares ${len} metadata bytes but only ${bytes.length - pos} remain; the stream is truncated or corrupt`);
    }
    if (out.length >= limits.maxIpcMessages) {
      throw new LimitExceeded("maxIpcMessages", `${what}: the number of IPC messages in one payload`, out.length + 1, limits.maxIpcMessages, "send fewer, larger batches");
    }
    const header = bytes.subarray(pos, pos + len);
    pos += len;
    const info = readMessageInfo(header, limits, `${what} message ${out.length}`);
    if (info.bodyLength > bytes.length - pos) {
      throw new IpcError(`${what}: IPC message ${out.length} declares a ${info.bodyLength}-byte body but only ${bytes.length - pos} bytes remain; the stream is truncated`);
    }
    out.push({ header, body: bytes.subarray(pos, pos + info.bodyLength), info });
    pos += info.bodyLength;
  }
  return out;
}

const pad8 = (n: number): number => (n + 7) & ~7;

/** Bytes of one framed message. */
export function framedLength(m: IpcMessage): number {
  return 8 + pad8(m.header.length) + pad8(m.body.length);
}

/** Writes messages as one IPC stream, with an end-of-stream marker. */
export function joinIpcStream(messages: readonly IpcMessage[]): Uint8Array {
  const total = messages.reduce((n, m) => n + framedLength(m), 0) + 8;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let pos = 0;
  for (const m of messages) {
    view.setUint32(pos, CONTINUATION, true);
    view.setInt32(pos + 4, pad8(m.header.length), true);
    out.set(m.header, pos + 8);
    pos += 8 + pad8(m.header.length);
    out.set(m.body, pos);
    pos += pad8(m.body.length);
  }
  view.setUint32(pos, CONTINUATION, true);
  view.setInt32(pos + 4, 0, true);
  return out;
}

/** One encapsulated message (continuation, length, header) without its body: the Flight schema form. */
export function encapsulate(header: Uint8Array): Uint8Array {
  return joinIpcStream([{ header, body: new Uint8Array(0) }]).subarray(0, 8 + pad8(header.length));
}

/**
 * Splits an IPC stream this process wrote itself (trusted: no limits), used to
 * turn Arrow JS writer output into Flight messages.
 */
export function splitOwnIpcStream(bytes: Uint8Array): IpcMessage[] {
  return splitIpcStream(bytes, TRUSTED, "own IPC stream").map(({ header, body }) => ({ header, body }));
}

const BIG = Number.MAX_SAFE_INTEGER;
const TRUSTED: ApiLimits = {
  maxMessageBytes: BIG,
  maxBatchRows: BIG,
  maxColumns: BIG,
  maxDictionaryEntries: BIG,
  maxDictionaryBytes: BIG,
  maxDecompressedBytes: BIG,
  maxIpcMessages: BIG,
  maxInFlightBatches: BIG,
  streamReauthMs: BIG,
  maxChunkRows: BIG,
  maxChunkBytes: BIG,
};
