// What every feed operator is: a fold over the feed's WAL records in LSN
// order. Each record may produce output (the rows or states it changed); the
// state operators (last-by, bars) can also show their whole state at once.
import type { TickBatch } from "../codec/tickbatch.js";
import type { OutColumn, OutField, OutTable } from "../query/index.js";

/** One WAL record of one of the feed's shards, decoded. */
export interface FeedRecord {
  readonly table: string;
  readonly bucket: number;
  readonly lsn: number;
  readonly batch: TickBatch;
}

export interface FeedOperator {
  /** Folds a record in; returns what it changed (undefined: nothing). */
  apply(rec: FeedRecord): OutTable | undefined;
  /** The whole current state (last-by rows, open and retained bars), or undefined for the per-tick kinds. */
  snapshot(): OutTable | undefined;
  /** Ticks that arrived later than the feed's lateness: their values may differ from the batch query's. */
  tooLate: number;
  /**
   * The state as plain data (Maps, arrays, typed arrays: what v8.serialize
   * copies) for a checkpoint; `load` puts such a state back into a fresh
   * operator of the same plan, which then folds on exactly as this one would.
   */
  save(): unknown;
  /** Replaces the state with a saved one; throws when it does not fit this operator. */
  load(state: unknown): void;
}

/** A saved state that does not fit the operator loading it. */
export const unfitState = (kind: string, why: string): Error => new Error(`the saved ${kind} state does not fit this feed: ${why}`);

/** Indices of the record's rows whose symbol the feed wants, in record order. */
export function wantedRows(batch: TickBatch, symbols: ReadonlySet<string> | undefined): Int32Array {
  if (symbols === undefined) {
    // A loop, not Int32Array.from with a map function (per tick of every record, that was ~2% of a node's CPU).
    const all = new Int32Array(batch.rows);
    for (let i = 0; i < all.length; i++) all[i] = i;
    return all;
  }
  const ok = batch.symbols.map((s) => symbols.has(s));
  const out: number[] = [];
  for (let i = 0; i < batch.rows; i++) if (ok[batch.symbolIndex[i]!]) out.push(i);
  return Int32Array.from(out);
}

/**
 * Per-tick output: rows `idx` of the record with the selected value columns,
 * then the operator's computed columns, then `_lsn` and `_row`.
 */
export function tickTable(fields: readonly OutField[], rec: FeedRecord, idx: Int32Array, cols: readonly number[], computed: readonly { data: OutColumn["data"]; valid?: Uint8Array }[]): OutTable {
  const b = rec.batch;
  const n = idx.length;
  const sym = new Int32Array(n);
  const ts = new Float64Array(n);
  const row = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const i = idx[k]!;
    sym[k] = b.symbolIndex[i]!;
    ts[k] = b.ts[i]!;
    row[k] = i;
  }
  const values = cols.map((j) => {
    const src = b.values[j]!;
    const C = src.constructor as new (n: number) => typeof src;
    const out = new C(n);
    for (let k = 0; k < n; k++) out[k] = src[idx[k]!]!;
    return out;
  });
  let f = 0;
  const next = (): OutField => fields[f++]!;
  const columns: OutColumn[] = [
    { field: next(), data: sym },
    { field: next(), data: ts },
    ...values.map((data): OutColumn => ({ field: next(), data })),
    ...computed.map((c): OutColumn => (c.valid === undefined ? { field: next(), data: c.data } : { field: next(), data: c.data, valid: c.valid })),
    { field: next(), data: new Float64Array(n).fill(rec.lsn) },
    { field: next(), data: row },
  ];
  return { rows: n, symbols: b.symbols, columns };
}
