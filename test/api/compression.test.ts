import { describe, expect, it } from "vitest";
import { zstdCompressSync } from "node:zlib";
import { CompressionType, RecordBatchStreamWriter, compressionRegistry, tableFromArrays, tableFromIPC } from "apache-arrow";
import { DEFAULT_LIMITS, LimitExceeded, resolveLimits } from "../../src/api/limits.js";
import { IpcError, checkIngestPayload, decompressPayload, registerZstd, splitIpcStream } from "../../src/api/ipc/index.js";

registerZstd();
// Arrow JS only compresses when an encoder is registered; tests write compressed streams with it.
const codec = compressionRegistry.get(CompressionType.ZSTD)!;
compressionRegistry.set(CompressionType.ZSTD, { ...codec, encode: (d: Uint8Array) => zstdCompressSync(d) });

function compressedIpc(rows: number): Uint8Array {
  const t = tableFromArrays({ price: Float64Array.from({ length: rows }, (_, i) => i % 7), size: Float64Array.from({ length: rows }, () => 1) });
  const w = new RecordBatchStreamWriter({ compressionType: CompressionType.ZSTD });
  w.write(t);
  return w.finish().toUint8Array(true);
}

describe("compressed payloads", () => {
  it("compression - a ZSTD stream is checked, then rewritten uncompressed", () => {
    const bytes = compressedIpc(10_000);
    const summary = checkIngestPayload(bytes, DEFAULT_LIMITS, "t");
    expect(summary).toEqual({ rows: 10_000, compressed: true });
    const plain = decompressPayload(bytes, DEFAULT_LIMITS, "t");
    expect(checkIngestPayload(plain, DEFAULT_LIMITS, "t").compressed).toBe(false);
    expect(tableFromIPC(plain).getChild("price")!.get(9)).toBe(2);
  });

  it("compression - a payload that decompresses past maxDecompressedBytes is stopped while decompressing", () => {
    // Arrow JS writes the compressed size as the length prefix, so only the bounded decoder can catch this one.
    const bytes = compressedIpc(10_000);
    const limits = resolveLimits({ maxDecompressedBytes: 100_000 });
    expect(() => decompressPayload(bytes, limits, "t")).toThrowError(/maxDecompressedBytes = 100000/);
  });

  it("compression - an honest prefix over the limit is refused before decompressing", () => {
    const bytes = compressedIpc(10_000).slice();
    const batch = splitIpcStream(bytes, DEFAULT_LIMITS, "t").find((m) => m.info.type === "recordBatch")!;
    const info = batch.info.type === "recordBatch" ? batch.info.batch : undefined;
    const view = new DataView(batch.body.buffer, batch.body.byteOffset, batch.body.byteLength);
    for (const b of info!.buffers) if (b.length > 0) view.setBigInt64(b.offset, 80_000n, true);
    expect(() => checkIngestPayload(bytes, resolveLimits({ maxDecompressedBytes: 100_000 }), "t")).toThrowError(/maxDecompressedBytes = 100000/);
  });

  it("compression - a lying length prefix (2^40 bytes) is RESOURCE_EXHAUSTED, not an allocation", () => {
    const bytes = compressedIpc(100).slice();
    const batch = splitIpcStream(bytes, DEFAULT_LIMITS, "t").find((m) => m.info.type === "recordBatch")!;
    const info = batch.info.type === "recordBatch" ? batch.info.batch : undefined;
    const first = info!.buffers.find((b) => b.length > 0)!;
    new DataView(batch.body.buffer, batch.body.byteOffset, batch.body.byteLength).setBigInt64(first.offset, 1n << 40n, true);
    expect(() => checkIngestPayload(bytes, DEFAULT_LIMITS, "t")).toThrowError(LimitExceeded);
  });

  it("compression - corrupt ZSTD data is INVALID_ARGUMENT", () => {
    const bytes = compressedIpc(1000).slice();
    const batch = splitIpcStream(bytes, DEFAULT_LIMITS, "t").find((m) => m.info.type === "recordBatch")!;
    for (let i = 12; i < 40; i++) batch.body[i] = 0xab;
    expect(() => decompressPayload(bytes, DEFAULT_LIMITS, "t")).toThrowError(IpcError);
  });
});
