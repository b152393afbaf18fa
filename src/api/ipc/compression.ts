// Compressed record batches. Arrow compresses each buffer separately and
// prefixes it with its uncompressed length, so a batch's decompressed size is
// checked before any decompression runs. The prefix is the sender's claim (and
// Arrow JS writers get it wrong), so decompression is bounded too: one payload
// may produce at most maxDecompressedBytes, whatever it declared. ZSTD is
// decoded with node:zlib; LZ4 has no decoder here and is refused. The gateway
// reads uncompressed IPC only, so a compressed payload is rewritten here.
import * as zlib from "node:zlib";
import { CompressionType, compressionRegistry, tableFromIPC, tableToIPC } from "apache-arrow";
import type { ApiLimits } from "../limits.js";
import { DEFAULT_LIMITS, LimitExceeded } from "../limits.js";
import { IpcError } from "./errors.js";
import type { BatchInfo } from "./message.js";

/** The prefix value meaning "this buffer was left uncompressed". */
const NOT_COMPRESSED = -1n;

/** Bytes `batch` declares it decompresses to; throws before any decompression when over the limit. */
export function checkDecompressedSize(batch: BatchInfo, body: Uint8Array, limits: ApiLimits, what: string): number {
  if (batch.compression === undefined) return body.length;
  if (batch.compression === "lz4_frame") {
    throw new IpcError(`${what}: LZ4-compressed batches are not supported; write with compression "zstd" or none`);
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let total = 0;
  for (const [k, b] of batch.buffers.entries()) {
    if (b.length === 0) continue;
    if (b.length < 8) throw new IpcError(`${what}: compressed buffer ${k} is ${b.length} bytes, too short for its length prefix; the batch is corrupt`);
    const declared = view.getBigInt64(b.offset, true);
    if (declared === NOT_COMPRESSED) {
      total += b.length - 8;
    } else if (declared < 0n) {
      throw new IpcError(`${what}: compressed buffer ${k} declares ${declared} uncompressed bytes; the batch is corrupt`);
    } else {
      total += declared > BigInt(limits.maxDecompressedBytes) ? limits.maxDecompressedBytes + 1 : Number(declared);
    }
    if (total > limits.maxDecompressedBytes) throw tooLarge(what, total, limits.maxDecompressedBytes);
  }
  return total;
}

const tooLarge = (what: string, got: number, max: number): LimitExceeded =>
  new LimitExceeded("maxDecompressedBytes", `${what}: the decompressed size of one payload`, got, max, "send smaller batches");

/**
 * Bytes the decompressPayload call in progress may still produce. Arrow's
 * reader calls the codec synchronously inside tableFromIPC, so a module-level
 * budget is exact; outside such a call the default limit bounds each buffer.
 */
let budget: { left: number } | undefined;

/** Signals the budget ran out inside Arrow's reader (which rethrows it unchanged). */
class BudgetExceeded extends Error {}

let registered = false;

/** Lets the Arrow reader decode ZSTD buffers, within the current budget. Idempotent. */
export function registerZstd(): void {
  if (registered) return;
  registered = true;
  compressionRegistry.set(CompressionType.ZSTD, {
    decode: (data: Uint8Array): Uint8Array => {
      const maxOutputLength = Math.max(1, budget?.left ?? DEFAULT_LIMITS.maxDecompressedBytes);
      // node:zlib has ZSTD from Node 22.15 / 23.8; older runtimes refuse such batches instead of failing to load.
      const zstd = (zlib as { zstdDecompressSync?: typeof zlib.zstdDecompressSync }).zstdDecompressSync;
      if (!zstd) throw new IpcError(`ZSTD-compressed batches need Node.js 22.15 or later on the server; send uncompressed batches`);
      let out: Buffer;
      try {
        out = zstd(data, { maxOutputLength });
      } catch (e) {
        if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw new BudgetExceeded();
        throw new IpcError(`a ZSTD buffer cannot be decompressed (${(e as Error).message}); the batch is corrupt`);
      }
      if (budget) budget.left -= out.length;
      return out;
    },
  });
}

/**
 * Rewrites a compressed IPC stream uncompressed, producing at most
 * maxDecompressedBytes. Call after checkDecompressedSize accepted its batches.
 */
export function decompressPayload(bytes: Uint8Array, limits: ApiLimits, what: string): Uint8Array {
  registerZstd();
  budget = { left: limits.maxDecompressedBytes };
  try {
    return tableToIPC(tableFromIPC(bytes), "stream");
  } catch (e) {
    if (e instanceof BudgetExceeded) throw tooLarge(what, limits.maxDecompressedBytes + 1, limits.maxDecompressedBytes);
    if (e instanceof IpcError) throw new IpcError(`${what}: ${e.message}`);
    throw new IpcError(`${what}: the compressed batch cannot be read (${(e as Error).message}); the batch is corrupt`);
  } finally {
    budget = undefined;
  }
}
