// TickBatch: the in-process columnar form of a batch of ticks of one table.
// The gateway builds it from client Arrow, the WAL payload codec converts it to
// and from Arrow IPC, the hot set appends it and the sink writes it out.
import type { TableSpec, ValueType } from "../../protocols/tablespec.js";

/** RAM representation per value type: int64 is held as float64 (the gateway rejects |v| > 2^53). */
export type ValueArray = Float64Array | Float32Array | Int32Array | Uint8Array;

export interface TickBatch {
  readonly rows: number;
  /** Distinct symbols of this batch. */
  readonly symbols: readonly string[];
  /** Per row: index into `symbols`. */
  readonly symbolIndex: Uint32Array;
  /** Per row: timestamp, integer microseconds since the Unix epoch. */
  readonly ts: Float64Array;
  /** Per value column, in table-spec order. */
  readonly values: readonly ValueArray[];
}

export function allocValueArray(type: ValueType, length: number): ValueArray {
  switch (type) {
    case "float64":
    case "int64":
      return new Float64Array(length);
    case "float32":
      return new Float32Array(length);
    case "int32":
      return new Int32Array(length);
    case "bool":
      return new Uint8Array(length);
  }
}

/** Bytes per row of one value column in RAM. */
export function valueWidth(type: ValueType): number {
  switch (type) {
    case "float64":
    case "int64":
      return 8;
    case "float32":
    case "int32":
      return 4;
    case "bool":
      return 1;
  }
}

/** Raw bytes of one tick: 8 (ts) + 4 (symbol id) + the value columns. */
export function rawRowBytes(spec: TableSpec): number {
  return 12 + spec.columns.reduce((n, c) => n + valueWidth(c.type), 0);
}

/** Rows `idx` of `batch`, as a new batch (symbols re-indexed densely). */
export function selectRows(batch: TickBatch, idx: Uint32Array | readonly number[]): TickBatch {
  const n = idx.length;
  const remap = new Int32Array(batch.symbols.length).fill(-1);
  const symbols: string[] = [];
  const symbolIndex = new Uint32Array(n);
  const ts = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = idx[i]!;
    const s = batch.symbolIndex[r]!;
    let m = remap[s]!;
    if (m < 0) {
      m = symbols.length;
      remap[s] = m;
      symbols.push(batch.symbols[s]!);
    }
    symbolIndex[i] = m;
    ts[i] = batch.ts[r]!;
  }
  const values = batch.values.map((col) => {
    const out = new (col.constructor as new (n: number) => ValueArray)(n);
    for (let i = 0; i < n; i++) out[i] = col[idx[i]!]!;
    return out;
  });
  return { rows: n, symbols, symbolIndex, ts, values };
}
