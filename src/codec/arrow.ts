// Arrow <-> TickBatch. `arrowToTickBatch` is the one place where Arrow data from
// outside (client batches, WAL payloads, snapshots) is checked against a table
// spec; `tickBatchToIpc` writes the WAL payload form (protocols/arrow.ts).
import {
  RecordBatch,

  Struct,
  TimeUnit,
  Type,
  makeData,
  tableFromIPC,
  vectorFromArray,
  Utf8,
} from "apache-arrow";
import { DataType, Precision } from "apache-arrow";
import type { Data, Table } from "apache-arrow";
import { walArrowSchema } from "../../protocols/arrow.js";
import { columnDefault } from "../../protocols/tablespec.js";
import type { ColumnSpec, TableSpec } from "../../protocols/tablespec.js";
import { allocValueArray } from "./tickbatch.js";
import { symbols } from "./symbolintern.js";
import { IpcFormatError, decodeIpcColumns, encodeTickIpc } from "./ipc.js";
import type { TickBatch, ValueArray } from "./tickbatch.js";
import { TaggedError } from "../../protocols/tagged.js";

/** Timestamps must fall in [1970-01-01, 2200-01-01) UTC. */
export const MIN_TS_MICROS = 0;
export const MAX_TS_MICROS = Date.UTC(2200, 0, 1) * 1000;
export const MAX_SYMBOL_BYTES = 256;

export type RejectCode = "INVALID_ARGUMENT" | "RESOURCE_EXHAUSTED";

/** A batch that broke a rule. Nothing of it may reach the WAL. */
export class BatchRejected extends TaggedError("BatchRejected") {
  constructor(
    readonly code: RejectCode,
    message: string,
  ) {
    super(message);
  }
}

export function decodeIpc(bytes: Uint8Array, what: string): Table {
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (e) {
    throw new BatchRejected("INVALID_ARGUMENT", `${what}: the payload is not a valid Arrow IPC stream (${(e as Error).message}); send one Arrow IPC stream (schema + record batches)`);
  }
  if (table.schema.fields.length === 0) {
    throw new BatchRejected("INVALID_ARGUMENT", `${what}: the payload is not a valid Arrow IPC stream (no schema message found); send one Arrow IPC stream (schema + record batches)`);
  }
  return table;
}

function describe(t: DataType): string {
  return String(t);
}

/** Reads a symbol column (Utf8, LargeUtf8 or Dictionary<Utf8>) into distinct symbols + per-row index. */
function readSymbols(vec: readonly Data[], rows: number, what: string): { symbols: string[]; symbolIndex: Uint32Array } {
  const symbols: string[] = [];
  const byName = new Map<string, number>();
  const symbolIndex = new Uint32Array(rows);
  const intern = (s: string, row: number): number => {
    let id = byName.get(s);
    if (id === undefined) {
      if (s.length === 0) throw new BatchRejected("INVALID_ARGUMENT", `${what} row ${row}: the symbol is empty; every tick needs a symbol`);
      if (Buffer.byteLength(s) > MAX_SYMBOL_BYTES) {
        throw new BatchRejected("INVALID_ARGUMENT", `${what} row ${row}: the symbol is longer than ${MAX_SYMBOL_BYTES} bytes; shorten it`);
      }
      id = symbols.length;
      symbols.push(s);
      byName.set(s, id);
    }
    return id;
  };
  let row = 0;
  for (const data of vec) {
    if (data.nullCount > 0) throw new BatchRejected("INVALID_ARGUMENT", `${what} has ${data.nullCount} null symbol(s); every tick needs a symbol`);
    if (data.typeId === Type.Dictionary) {
      const dict = data.dictionary;
      if (!dict || (dict.type.typeId !== Type.Utf8 && dict.type.typeId !== Type.LargeUtf8)) {
        throw new BatchRejected("INVALID_ARGUMENT", `${what} is a dictionary of ${dict ? describe(dict.type) : "nothing"}; symbols must be utf8 strings`);
      }
      // Decode only the dictionary entries the batch uses, each once.
      const entries = dictEntries(dict.data, what);
      const mapped = new Int32Array(entries.count).fill(-1);
      const keys = data.values as ArrayLike<number>;
      for (let i = 0; i < data.length; i++, row++) {
        const k = keys[data.offset + i]!;
        let id = mapped[k];
        if (id === undefined) throw new BatchRejected("INVALID_ARGUMENT", `${what} row ${row}: dictionary key ${k} is out of range`);
        if (id < 0) {
          const s = entries.get(k);
          if (s === null) throw new BatchRejected("INVALID_ARGUMENT", `${what} row ${row}: null symbol; every tick needs a symbol`);
          id = intern(s, row);
          mapped[k] = id;
        }
        symbolIndex[row] = id;
      }
    } else if (data.typeId === Type.Utf8 || data.typeId === Type.LargeUtf8) {
      const offsets = data.valueOffsets as ArrayLike<number | bigint>;
      const bytes = data.values as Uint8Array;
      for (let i = 0; i < data.length; i++, row++) {
        const a = Number(offsets[data.offset + i]!);
        const b = Number(offsets[data.offset + i + 1]!);
        if (!(a >= 0 && b >= a && b <= bytes.length)) throw new BatchRejected("INVALID_ARGUMENT", `${what} row ${row}: string offsets out of bounds (corrupt Arrow data)`);
        symbolIndex[row] = intern(decodeSymbol(bytes, a, b, `${what} row ${row}`), row);
      }
    } else {
      throw new BatchRejected("INVALID_ARGUMENT", `${what} must be utf8 (or a dictionary of utf8), got ${describe(data.type)}; send symbols as strings`);
    }
  }
  return { symbols, symbolIndex };
}

/** UTF-8 bytes -> string, the same string for the same bytes (src/codec/symbolintern.ts). */
function decodeSymbol(bytes: Uint8Array, a: number, b: number, where: string): string {
  const s = symbols.get(bytes, a, b);
  if (s === undefined) throw new BatchRejected("INVALID_ARGUMENT", `${where}: the symbol is not valid UTF-8`);
  return s;
}

/** Lazy access to the strings of a (chunked) utf8 dictionary. */
function dictEntries(chunks: readonly Data[], what: string): { count: number; get(k: number): string | null } {
  const starts: number[] = [];
  let count = 0;
  for (const c of chunks) {
    starts.push(count);
    count += c.length;
  }
  return {
    count,
    get(k: number): string | null {
      let ci = chunks.length - 1;
      while (ci > 0 && starts[ci]! > k) ci--;
      const c = chunks[ci]!;
      const i = c.offset + (k - starts[ci]!);
      if (c.nullCount > 0 && c.nullBitmap && c.nullBitmap.length > 0 && ((c.nullBitmap[i >> 3]! >> (i & 7)) & 1) === 0) return null;
      const offsets = c.valueOffsets as ArrayLike<number | bigint>;
      const a = Number(offsets[i]!);
      const b = Number(offsets[i + 1]!);
      const bytes = c.values as Uint8Array;
      if (!(a >= 0 && b >= a && b <= bytes.length)) throw new BatchRejected("INVALID_ARGUMENT", `${what}: dictionary string offsets out of bounds (corrupt Arrow data)`);
      return decodeSymbol(bytes, a, b, what);
    },
  };
}

const UNIT_TO_MICROS_DIV: Record<number, bigint> = { [TimeUnit.NANOSECOND]: 1000n };
const UNIT_TO_MICROS_MUL: Record<number, number> = { [TimeUnit.SECOND]: 1_000_000, [TimeUnit.MILLISECOND]: 1000, [TimeUnit.MICROSECOND]: 1 };

/** Reads the time column: Int64 microseconds, or Timestamp in s/ms/us/ns (ns truncated to us). */
function readTimestamps(vec: readonly Data[], rows: number, what: string): Float64Array {
  const ts = new Float64Array(rows);
  let row = 0;
  for (const data of vec) {
    if (data.nullCount > 0) throw new BatchRejected("INVALID_ARGUMENT", `${what} has ${data.nullCount} null timestamp(s); every tick needs a time`);
    let mul = 1;
    let div = 1n;
    if (data.typeId === Type.Timestamp) {
      const unit = (data.type as unknown as { unit: number }).unit;
      const m = UNIT_TO_MICROS_MUL[unit];
      if (m !== undefined) mul = m;
      else div = UNIT_TO_MICROS_DIV[unit] ?? 1n;
    } else if (!isInt(data.type, 64)) {
      throw new BatchRejected("INVALID_ARGUMENT", `${what} must be int64 microseconds since the Unix epoch or an Arrow timestamp, got ${describe(data.type)}; convert the time column`);
    }
    const values = data.values as BigInt64Array;
    const words = new Int32Array(values.buffer, values.byteOffset + data.offset * 8, data.length * 2);
    for (let i = 0; i < data.length; i++, row++) {
      // Fast path: read int64 as two 32-bit words (no BigInt); exact while |v| < 2^53.
      const hi = words[2 * i + 1]!;
      let us: number;
      if (div === 1n && hi >= -0x200000 && hi < 0x200000) us = (hi * 4294967296 + (words[2 * i]! >>> 0)) * mul;
      else us = div === 1n ? Number(values[data.offset + i]!) * mul : Number(values[data.offset + i]! / div);
      if (!(us >= MIN_TS_MICROS && us < MAX_TS_MICROS && Number.isSafeInteger(us))) {
        throw new BatchRejected("INVALID_ARGUMENT", `${what} row ${row}: timestamp ${values[data.offset + i]} is out of range; timestamps must be microseconds in [1970-01-01, 2200-01-01) UTC (check the unit: s/ms/ns need an Arrow timestamp type)`);
      }
      ts[row] = us;
    }
  }
  return ts;
}

function isInt(t: DataType, bits: number): boolean {
  return DataType.isInt(t) && t.bitWidth === bits && t.isSigned;
}

function expectedTypeMatches(col: ColumnSpec, t: DataType): boolean {
  switch (col.type) {
    case "float64":
      return DataType.isFloat(t) && t.precision === Precision.DOUBLE;
    case "float32":
      return DataType.isFloat(t) && t.precision === Precision.SINGLE;
    case "int64":
      return isInt(t, 64);
    case "int32":
      return isInt(t, 32);
    case "bool":
      return DataType.isBool(t);
  }
}

function readValues(col: ColumnSpec, vec: readonly Data[], rows: number, what: string): ValueArray {
  const out = allocValueArray(col.type, rows);
  let row = 0;
  for (const data of vec) {
    if (!expectedTypeMatches(col, data.type)) {
      throw new BatchRejected("INVALID_ARGUMENT", `${what} must be ${col.type}, got ${describe(data.type)}; cast the column to ${col.type}`);
    }
    if (data.nullCount > 0) throw new BatchRejected("INVALID_ARGUMENT", `${what} has ${data.nullCount} null value(s); nulls are not supported, send a value for every row`);
    const n = data.length;
    if (col.type === "bool") {
      const bits = data.values as Uint8Array;
      for (let i = 0; i < n; i++, row++) {
        const bit = data.offset + i;
        out[row] = (bits[bit >> 3]! >> (bit & 7)) & 1;
      }
    } else if (col.type === "int64") {
      const src = data.values as BigInt64Array;
      const words = new Int32Array(src.buffer, src.byteOffset + data.offset * 8, n * 2);
      for (let i = 0; i < n; i++, row++) {
        const hi = words[2 * i + 1]!;
        // |v| <= 2^53 - 1 exactly when the high word is in [-2^21, 2^21) (bar the two end points, checked below)
        const v = hi * 4294967296 + (words[2 * i]! >>> 0);
        if (hi < -0x200000 || hi >= 0x200000 || !Number.isSafeInteger(v)) {
          throw new BatchRejected("INVALID_ARGUMENT", `${what} row ${row}: ${src[data.offset + i]} is beyond +/-(2^53-1) (the exact integer range of the hot set); send a smaller value or use float64`);
        }
        out[row] = v;
      }
    } else {
      const src = data.values as Float64Array | Float32Array | Int32Array;
      out.set(src.subarray(data.offset, data.offset + n), row);
      if (col.type !== "int32" && !col.allowNonFinite) {
        for (let i = row; i < row + n; i++) {
          const v = out[i]!;
          if (!Number.isFinite(v)) {
            throw new BatchRejected("INVALID_ARGUMENT", `${what} row ${i}: ${v} is not allowed (the column forbids NaN/Inf); send a finite number or set allowNonFinite: true on the column`);
          }
        }
      }
      row += n;
    }
  }
  return out;
}

/** Checks an Arrow table against `spec` and converts it. `what` prefixes every message (e.g. "tenant t table x"). */
export function arrowToTickBatch(spec: TableSpec, table: Table, what: string): TickBatch {
  const names = table.schema.fields.map((f) => f.name);
  return columnsToTickBatch(spec, table.numRows, names, (name) => table.getChild(name)!.data, what);
}

function columnsToTickBatch(spec: TableSpec, rows: number, names: readonly string[], chunksOf: (name: string) => readonly Data[], what: string): TickBatch {
  if (rows > spec.maxBatchRows) {
    throw new BatchRejected("RESOURCE_EXHAUSTED", `${what}: the batch has ${rows} rows, over the table's maxBatchRows ${spec.maxBatchRows}; split it into smaller batches`);
  }
  const expected = [spec.symbolColumn, spec.timeColumn, ...spec.columns.map((c) => c.name)];
  // A value column with a declared default may be left out (writers that predate a spec change keep working).
  const optional = new Set(spec.columns.filter((c) => c.default !== undefined).map((c) => c.name));
  for (const name of expected) {
    if (!names.includes(name) && !optional.has(name)) {
      throw new BatchRejected("INVALID_ARGUMENT", `${what}: column ${name} is missing; the table has columns ${expected.join(", ")}`);
    }
  }
  for (const name of names) {
    if (!expected.includes(name)) {
      throw new BatchRejected("INVALID_ARGUMENT", `${what}: column ${name} is not in the table; the table has columns ${expected.join(", ")} (drop it, or add it to the table spec)`);
    }
  }
  if (new Set(names).size !== names.length) {
    throw new BatchRejected("INVALID_ARGUMENT", `${what}: a column name appears twice; send each column once`);
  }
  const { symbols, symbolIndex } = readSymbols(chunksOf(spec.symbolColumn), rows, `${what} column ${spec.symbolColumn}`);
  const ts = readTimestamps(chunksOf(spec.timeColumn), rows, `${what} column ${spec.timeColumn}`);
  const values = spec.columns.map((c) => (names.includes(c.name) ? readValues(c, chunksOf(c.name), rows, `${what} column ${c.name}`) : allocValueArray(c.type, rows).fill(columnDefault(c))));
  return { rows, symbols, symbolIndex, ts, values };
}

/**
 * Arrow IPC bytes -> TickBatch, checked against `spec` (client batches, WAL
 * payloads, snapshots), through the fast codec (src/codec/ipc.ts).
 */
export function decodeTickBatch(spec: TableSpec, bytes: Uint8Array, what: string): TickBatch {
  let cols;
  try {
    cols = decodeIpcColumns(bytes);
  } catch (e) {
    if (!(e instanceof IpcFormatError)) throw e;
    throw new BatchRejected("INVALID_ARGUMENT", `${what}: the payload is not a valid Arrow IPC stream (${e.message}); send one Arrow IPC stream (schema + record batches)`);
  }
  const chunks = cols.chunks;
  return columnsToTickBatch(spec, cols.rows, cols.names, (name) => chunks.get(name)!, what);
}

/** Safe integers held as float64 -> int64 words, without BigInt (hot path). */
function toInt64(src: ArrayLike<number>): BigInt64Array {
  const n = src.length;
  const words = new Int32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const v = src[i]!;
    const hi = Math.floor(v / 4294967296);
    words[2 * i] = v - hi * 4294967296;
    words[2 * i + 1] = hi;
  }
  return new BigInt64Array(words.buffer);
}

function valueData(col: ColumnSpec, arr: ValueArray, type: DataType): Data {
  const length = arr.length;
  switch (col.type) {
    case "int64": {
      return makeData({ type, length, nullCount: 0, data: toInt64(arr) } as never);
    }
    case "bool": {
      const bits = new Uint8Array((length + 7) >> 3);
      for (let i = 0; i < length; i++) if (arr[i]) bits[i >> 3]! |= 1 << (i & 7);
      return makeData({ type, length, nullCount: 0, data: bits } as never);
    }
    default:
      return makeData({ type, length, nullCount: 0, data: arr } as never);
  }
}

/** TickBatch -> Arrow record batch in the WAL payload schema. */
export function tickBatchToRecordBatch(spec: TableSpec, batch: TickBatch): RecordBatch {
  const schema = walArrowSchema(spec);
  const fields = schema.fields;
  const n = batch.rows;
  const tsBig = toInt64(batch.ts);
  const children: Data[] = [
    makeData({
      type: fields[0]!.type,
      length: n,
      nullCount: 0,
      data: new Int32Array(batch.symbolIndex.buffer, batch.symbolIndex.byteOffset, n),
      dictionary: vectorFromArray(batch.symbols as string[], new Utf8()),
    } as never),
    makeData({ type: fields[1]!.type, length: n, nullCount: 0, data: tsBig } as never),
    ...spec.columns.map((c, i) => valueData(c, batch.values[i]!, fields[i + 2]!.type)),
  ];
  const data = makeData({ type: new Struct(fields), length: n, nullCount: 0, children });
  return new RecordBatch(schema, data);
}

/** TickBatch -> one Arrow IPC stream (schema + one record batch): the WAL payload. */
export function tickBatchToIpc(spec: TableSpec, batch: TickBatch): Uint8Array {
  return encodeTickIpc(spec, batch);
}

/** WAL payload -> TickBatch (checked: a record written under another spec is rejected). */
export function ipcToTickBatch(spec: TableSpec, bytes: Uint8Array, what: string): TickBatch {
  return decodeTickBatch(spec, bytes, what);
}
