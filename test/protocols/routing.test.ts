// The routing hash is part of the wire protocol: every entry point (bytes,
// byte range, ASCII string, any string, bucket) and every hot path that routes
// with it (the by-bucket IPC writer, the gateway fast path, the general path)
// must give what a plain FNV-1a over the symbol's UTF-8 bytes gives.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { bucketOf, fnv1a32, fnv1a32Ascii, fnv1a32AsciiBytes, symbolHash } from "../../protocols/routing.js";
import { decodeWalRecord } from "../../protocols/codec.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { decodeTickBatch } from "../../src/codec/arrow.js";
import { encodeTickIpc, encodeTickIpcByBucket } from "../../src/codec/ipcwrite.js";
import { tryFastPrepare } from "../../src/ingest/fastpath.js";
import { prepareBatchGeneral } from "../../src/ingest/prepare.js";
import type { PreparedBatch } from "../../src/ingest/prepare.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";

/** The reference: FNV-1a (32 bit) as published, over the UTF-8 bytes. */
function reference(symbol: string): number {
  let h = 2166136261;
  for (const byte of new TextEncoder().encode(symbol)) {
    h = Number((BigInt(h ^ byte) * 16777619n) & 0xffffffffn);
  }
  return h;
}

const anySymbol = fc.oneof(fc.string({ unit: "binary", maxLength: 12 }), fc.string({ maxLength: 12 }), fc.constantFrom("ÉCU", "E€", "株式", "🚀X", "a\u0000b"));

describe("protocols - routing hash", () => {
  it("routing - every entry point agrees with the reference on ASCII and non-ASCII symbols", () => {
    fc.assert(
      fc.property(anySymbol, fc.integer({ min: 1, max: 64 }), fc.nat({ max: 7 }), (sym, shards, pad) => {
        const want = reference(sym);
        const bytes = new TextEncoder().encode(sym);
        expect(fnv1a32(bytes)).toBe(want);
        const inside = new Uint8Array(pad + bytes.length + 3).fill(0xff);
        inside.set(bytes, pad);
        expect(fnv1a32(inside, pad, pad + bytes.length)).toBe(want);
        const isAscii = [...sym].every((c) => c.charCodeAt(0) < 0x80);
        expect(fnv1a32Ascii(sym)).toBe(isAscii ? want : -1);
        expect(fnv1a32AsciiBytes(inside, pad, pad + bytes.length)).toBe(isAscii ? want : -1);
        expect(symbolHash(sym)).toBe(want);
        expect(bucketOf(sym, shards)).toBe(want % shards);
      }),
      { numRuns: 2000 },
    );
  });

  it("routing - the IPC writer, the gateway fast path and the general path route each symbol to its reference bucket", () => {
    const spec = parseTableSpec({ name: "trades", shards: 5, columns: [{ name: "price", type: "float64" }] });
    const symbols = fc.uniqueArray(anySymbol.filter((s) => s.length > 0 && !/[\ud800-\udfff]/.test(s)), { minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(symbols, fc.integer({ min: 1, max: 60 }), (syms, rows) => {
        const batch: TickBatch = {
          rows,
          symbols: syms,
          symbolIndex: Uint32Array.from({ length: rows }, (_, i) => i % syms.length),
          ts: Float64Array.from({ length: rows }, (_, i) => 1.7e15 + i),
          values: [Float64Array.from({ length: rows }, (_, i) => i)],
        };
        const check = (plan: PreparedBatch | undefined): void => {
          expect(plan).toBeDefined();
          for (const a of plan!.appends) {
            const b = decodeTickBatch(spec, decodeWalRecord(a.record).payload, "wal");
            for (let i = 0; i < b.rows; i++) expect(reference(b.symbols[b.symbolIndex[i]!]!) % spec.shards).toBe(a.bucket);
          }
        };
        check(tryFastPrepare("t", spec, encodeTickIpcByBucket(spec, batch, spec.shards), undefined));
        check(prepareBatchGeneral("t", spec, encodeTickIpc(spec, batch), undefined));
      }),
      { numRuns: 200 },
    );
  });
});
