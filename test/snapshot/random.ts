// Random snapshot columns for codec tests: every value type, any bit pattern
// (the codec does not interpret them), and a bitwise comparison.
import { expect } from "vitest";
import type { TableSpec } from "../../protocols/tablespec.js";
import { allocValueArray } from "../../src/codec/tickbatch.js";
import type { ValueArray } from "../../src/codec/tickbatch.js";
import type { HotTableColumns, SeriesColumns } from "../../src/hotset/index.js";

/** 8-byte patterns a delta must carry through: NaNs (two payloads), ±0, ±Infinity, extremes of float64 and of int64's bits. */
const EDGE64: bigint[] = [0x7ff8000000000000n, 0x7ff4000000000001n, 0x8000000000000000n, 0n, 0x7ff0000000000000n, 0xfff0000000000000n, 0x7fefffffffffffffn, 0x0000000000000001n, 0x7fffffffffffffffn, 0xffffffffffffffffn];
const EDGE32: number[] = [0x7fc00000, 0x80000000, 0, 0x7f800000, 0xff800000, 0x7fffffff, 0xffffffff, 1];

/** `n` random values of `width` bytes, a third of them edge patterns, some runs of equal values (what deltas turn into zeros). */
export function randomBytes(rand: () => number, width: number, n: number): Uint8Array {
  const out = new Uint8Array(width * n);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const pick = rand();
    if (width === 8) {
      const v = pick < 0.33 ? EDGE64[Math.floor(rand() * EDGE64.length)]! : pick < 0.5 && i > 0 ? dv.getBigUint64(8 * (i - 1), true) : (BigInt(Math.floor(rand() * 2 ** 32)) << 32n) | BigInt(Math.floor(rand() * 2 ** 32));
      dv.setBigUint64(8 * i, v, true);
    } else if (width === 4) dv.setUint32(4 * i, pick < 0.33 ? EDGE32[Math.floor(rand() * EDGE32.length)]! : Math.floor(rand() * 2 ** 32), true);
    else out[i] = Math.floor(rand() * 256);
  }
  return out;
}

export const bytesOf = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Random hot-set columns of `spec` over `symbols` symbols, any bit pattern in every column (the codec does not interpret them). */
export function randomColumns(spec: TableSpec, rand: () => number, symbols: number, maxRows: number): HotTableColumns {
  const names = Array.from({ length: symbols }, (_, i) => `S${i}`);
  const series: SeriesColumns[] = names.map(() => {
    const n = rand() < 0.2 ? 0 : Math.floor(rand() * maxRows);
    const view = <T>(T: new (b: ArrayBuffer) => T, width: number): T => new T(randomBytes(rand, width, n).buffer as ArrayBuffer);
    const values = spec.columns.map((c) => {
      const a = allocValueArray(c.type, n);
      bytesOf(a).set(randomBytes(rand, a.BYTES_PER_ELEMENT, n));
      return a;
    });
    const seam = rand() < 0.5 ? { tsMicros: rand() * 1e15, lsn: 3, rowInRecord: 1, values: spec.columns.map((c) => (c.type === "bool" ? 1 : c.type === "float64" ? NaN : -0)) } : null;
    return { tsMicros: view(Float64Array, 8), lsn: view(Float64Array, 8), rowInRecord: view(Int32Array, 4), values: values as ValueArray[], seam };
  });
  return { table: spec.name, appliedLsn: 9, persistedLsn: 2, horizonMicros: 5, symbols: names, series };
}

export function expectSameBits(a: HotTableColumns, b: HotTableColumns): void {
  expect(b.symbols).toEqual(a.symbols);
  a.series.forEach((s, i) => {
    const t = b.series[i]!;
    for (const [x, y] of [[s.tsMicros, t.tsMicros], [s.lsn, t.lsn], [s.rowInRecord, t.rowInRecord], ...s.values.map((v, k) => [v, t.values[k]!])] as unknown as [ArrayBufferView, ArrayBufferView][]) {
      expect(bytesOf(y).equals(bytesOf(x)), `series ${i}`).toBe(true);
    }
    expect(t.seam === null).toBe(s.seam === null);
    if (s.seam !== null) expect(Object.is(t.seam!.values[0], s.seam.values[0]) || (Number.isNaN(t.seam!.values[0]) && Number.isNaN(s.seam.values[0]))).toBe(true);
  });
}

