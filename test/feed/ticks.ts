// The trades the feed int tests publish: four symbols, two ticks per
// timestamp (equal timestamps), prices and sizes moving with the seed.
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import { tableOf } from "../api/fixture.js";

export const SYMS = ["AAPL", "MSFT", "IBM", "XOM"];

/** `rows` trades of alpha from t0, two per timestamp 1 ms apart. */
export function batch(rows: number, t0: number, seed: number): TickBatch {
  return {
    rows,
    symbols: SYMS,
    symbolIndex: Uint32Array.from({ length: rows }, (_, i) => (i * 7 + seed) % SYMS.length),
    ts: Float64Array.from({ length: rows }, (_, i) => t0 + Math.floor(i / 2) * 1000),
    values: [Float64Array.from({ length: rows }, (_, i) => 100 + ((i * 13 + seed * 5) % 97) / 10), Float64Array.from({ length: rows }, (_, i) => 1 + ((i * 31 + seed) % 50))],
  };
}

/** The batch as the Arrow IPC a gRPC ingest carries. */
export const ipc = (b: TickBatch): Uint8Array => tickBatchToIpc(tableOf("alpha", "trades"), b);
