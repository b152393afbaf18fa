// Test data for the ClickHouse tests: a table spec with every value type and
// deterministic pseudo-random batches (seeded, so a failure reproduces).
import { parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";

/** Every value type; floats may hold NaN/Inf. */
export function allTypesSpec(name: string): TableSpec {
  return parseTableSpec({
    name,
    columns: [
      { name: "price", type: "float64", allowNonFinite: true },
      { name: "ratio", type: "float32", allowNonFinite: true },
      { name: "qty", type: "int64" },
      { name: "lots", type: "int32" },
      { name: "buy", type: "bool" },
    ],
  });
}

/** xorshift32: small, seeded, good enough to pick test values. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4_294_967_296;
  };
}

export const SYMBOLS = ["AAPL", "MSFT", "BRK.B", "ÄÖÜ-ß", "株式会社", "🚀MOON", "", "x".repeat(200)];

/** Special values that must survive the round trip in each column kind. */
const F64 = [0, -0, 1.5, -1.5, Number.MAX_VALUE, Number.MIN_VALUE, -Number.MAX_VALUE, NaN, Infinity, -Infinity, 1e-300];
const I64 = [0, -1, 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 32, -(2 ** 32), 2 ** 32 - 1, -(2 ** 31) - 1];
const I32 = [0, -1, 1, 2 ** 31 - 1, -(2 ** 31)];

/**
 * A batch of `rows` ticks of `allTypesSpec`, timestamps from `t0Micros` on
 * (within one UTC day unless `spreadMicros` says otherwise).
 */
export function randomBatch(rows: number, seed: number, t0Micros: number, spreadMicros = 3_600_000_000, symbols = SYMBOLS): TickBatch {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const symbolIndex = new Uint32Array(rows);
  const ts = new Float64Array(rows);
  const price = new Float64Array(rows);
  const ratio = new Float32Array(rows);
  const qty = new Float64Array(rows);
  const lots = new Int32Array(rows);
  const buy = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    symbolIndex[i] = Math.floor(r() * symbols.length);
    ts[i] = t0Micros + Math.floor(r() * spreadMicros);
    price[i] = r() < 0.3 ? pick(F64) : (r() - 0.5) * 1e6;
    ratio[i] = r() < 0.3 ? Math.fround(pick(F64)) : Math.fround((r() - 0.5) * 100);
    qty[i] = r() < 0.3 ? pick(I64) : Math.floor((r() - 0.5) * 2 ** 40);
    lots[i] = r() < 0.3 ? pick(I32) : Math.floor((r() - 0.5) * 2 ** 31);
    buy[i] = r() < 0.5 ? 1 : 0;
  }
  return { rows, symbols, symbolIndex, ts, values: [price, ratio, qty, lots, buy] };
}

/** One plain object per row: symbol resolved, typed arrays as numbers. */
export function rowsOf(batch: TickBatch): { sym: string; ts: number; values: number[] }[] {
  return Array.from({ length: batch.rows }, (_, i) => ({
    sym: batch.symbols[batch.symbolIndex[i]!]!,
    ts: batch.ts[i]!,
    values: batch.values.map((v) => v[i]!),
  }));
}

/** Start of the UTC day holding 2023-11-14, in microseconds. */
export const DAY_MICROS = 86_400_000_000;
export const DAY0 = 19_675 * DAY_MICROS;

/** A large, cheap batch of `allTypesSpec` (no randomness): for tests about size, not values. */
export function plainBatch(rows: number, t0Micros: number, symbols: readonly string[] = ["AAPL", "MSFT", "GOOG", "ÄÖÜ"]): TickBatch {
  const symbolIndex = new Uint32Array(rows);
  const ts = new Float64Array(rows);
  const price = new Float64Array(rows);
  const ratio = new Float32Array(rows);
  const qty = new Float64Array(rows);
  const lots = new Int32Array(rows);
  const buy = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    symbolIndex[i] = i % symbols.length;
    ts[i] = t0Micros + i;
    price[i] = i * 0.25;
    ratio[i] = i % 7;
    qty[i] = -i;
    lots[i] = i;
    buy[i] = i & 1;
  }
  return { rows, symbols: [...symbols], symbolIndex, ts, values: [price, ratio, qty, lots, buy] };
}
