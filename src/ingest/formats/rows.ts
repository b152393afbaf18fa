// Rows parsed from a text body (JSON lines, CSV, line protocol) collected into
// one TickBatch for a table spec. Each value is checked against its column's
// type here, so a refusal names the line and the column; the gateway then runs
// the same checks as for every other batch (time bounds, finite values).
import { allocValueArray } from "../../codec/tickbatch.js";
import type { TickBatch, ValueArray } from "../../codec/tickbatch.js";
import type { ColumnSpec, TableSpec } from "../../../protocols/tablespec.js";
import { TaggedError } from "../../../protocols/tagged.js";
import { isoMicros } from "../../../protocols/isotime.js";

/** A body that broke a rule: `line` (1-based) and `column` say where. */
export class IngestFormatError extends TaggedError("IngestFormatError") {
  readonly code = "INVALID_ARGUMENT";
  constructor(
    readonly line: number,
    readonly column: string | undefined,
    problem: string,
    fix: string,
  ) {
    super(`line ${line}${column === undefined ? "" : `, column ${column}`}: ${problem}; ${fix}`);
  }
}

/** Units a number in the time column may be in (`?precision=`); text timestamps are ISO. */
export type Precision = "ns" | "us" | "ms" | "s";
const PER_MICRO: Record<Precision, bigint> = { ns: 1000n, us: 1n, ms: 1n, s: 1n };
const MICROS: Record<Precision, number> = { ns: 1, us: 1, ms: 1000, s: 1_000_000 };

export function parsePrecision(v: string | null, fallback: Precision): Precision {
  if (v === null || v === "") return fallback;
  const p = ({ n: "ns", ns: "ns", u: "us", us: "us", µ: "us", ms: "ms", s: "s" } as Record<string, Precision>)[v];
  if (p === undefined) throw new IngestFormatError(0, undefined, `precision "${v}" is not a time unit`, "use precision=ns, us, ms or s");
  return p;
}

/** Integer text in `p` units -> microseconds (nanoseconds exceed 2^53: divided as bigint; sub-microsecond digits are dropped). */
export function integerTimeToMicros(text: string, p: Precision, line: number, col: string): number {
  if (!/^-?\d+$/.test(text)) throw new IngestFormatError(line, col, `"${text.slice(0, 40)}" is not an integer timestamp`, `send integer ${p} since the Unix epoch or an ISO date-time`);
  const v = (BigInt(text) / PER_MICRO[p]) * BigInt(MICROS[p]);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new IngestFormatError(line, col, `${text} is out of range`, `send ${p} since the Unix epoch (check precision=)`);
  return Number(v);
}

/** ISO text -> microseconds. */
export function isoTimeToMicros(text: string, line: number, col: string): number {
  const us = isoMicros(text);
  if (us === undefined || us < 0) throw new IngestFormatError(line, col, `"${text.trim().slice(0, 40)}" is not a timestamp`, "send an ISO date-time such as 2024-01-02T14:30:00.123456Z or integer microseconds");
  return us;
}

export type Cell = number | boolean | string;

/** A growable column of numbers (doubles its capacity; typed, so a 1 M-line body is not 1 M boxed values). */
class Growable<T extends Float64Array | Uint32Array> {
  data: T;
  constructor(private readonly make: (n: number) => T) {
    this.data = make(1024);
  }
  reserve(n: number): void {
    if (n <= this.data.length) return;
    const next = this.make(Math.max(n, this.data.length * 2));
    next.set(this.data);
    this.data = next;
  }
}

/**
 * Collects rows of one table into typed columns. `add` checks each value
 * against its column; `appendChecked` is the line-protocol fast path's entry,
 * for values it has already checked.
 */
export class RowCollector {
  private symbols: string[] = [];
  private symbolIds = new Map<string, number>();
  private readonly sym = new Growable((n) => new Uint32Array(n));
  private readonly ts = new Growable((n) => new Float64Array(n));
  private readonly lineOf = new Growable((n) => new Uint32Array(n));
  private readonly values: Growable<Float64Array>[];
  private n = 0;
  readonly byName: ReadonlyMap<string, number>;

  constructor(readonly spec: TableSpec) {
    this.values = spec.columns.map(() => new Growable((n) => new Float64Array(n)));
    this.byName = new Map(spec.columns.map((c, j) => [c.name, j]));
  }

  get rows(): number {
    return this.n;
  }

  /** Body line of each row (gateway messages name rows; the HTTP answer adds the line). */
  get lines(): number[] {
    return Array.from(this.lineOf.data.subarray(0, this.n));
  }

  /** `cells[j]` is the value of column j (undefined when the row did not give it). */
  add(line: number, symbol: string, tsMicros: number, cells: readonly (Cell | undefined)[]): void {
    if (symbol === "") throw new IngestFormatError(line, this.spec.symbolColumn, "the symbol is empty", "every tick needs a symbol");
    const row = this.spec.columns.map((c, j) => valueOf(c, cells[j], line));
    const i = this.appendChecked(line, symbol, tsMicros);
    row.forEach((v, j) => (this.values[j]!.data[i] = Number(v)));
  }

  /** A row whose symbol is non-empty and whose values the caller checked: returns its index; the caller sets `column(j)[index]`. */
  appendChecked(line: number, symbol: string, tsMicros: number): number {
    return this.appendRow(line, this.symbolIdOf(symbol), tsMicros);
  }

  /** The id of a (non-empty) symbol in this collector's dictionary, added when new. */
  symbolIdOf(symbol: string): number {
    let id = this.symbolIds.get(symbol);
    if (id === undefined) {
      id = this.symbols.length;
      this.symbols.push(symbol);
      this.symbolIds.set(symbol, id);
    }
    return id;
  }

  /** appendChecked with the symbol's id (symbolIdOf): the line protocol fast path keeps ids by the symbol's bytes. */
  appendRow(line: number, id: number, tsMicros: number): number {
    const i = this.n++;
    if (i >= this.ts.data.length) {
      this.sym.reserve(i + 1);
      this.ts.reserve(i + 1);
      this.lineOf.reserve(i + 1);
      for (const v of this.values) v.reserve(i + 1);
    }
    this.sym.data[i] = id;
    this.ts.data[i] = tsMicros;
    this.lineOf.data[i] = line;
    return i;
  }

  /** Column j's storage (valid below `rows`; may be replaced as rows are appended, so fetch it after appendChecked). */
  column(j: number): Float64Array {
    return this.values[j]!.data;
  }

  /**
   * The rows as a TickBatch. Its columns are views of the collector's storage
   * where the types agree (float64 and int64 values, held as float64): valid
   * until the collector is reset or gets more rows.
   */
  batch(): TickBatch {
    const n = this.n;
    const values: ValueArray[] = this.spec.columns.map((c, j) => {
      const held = this.values[j]!.data.subarray(0, n);
      if (c.type === "float64" || c.type === "int64") return held;
      const out = allocValueArray(c.type, n);
      out.set(held);
      return out;
    });
    return { rows: n, symbols: this.symbols, symbolIndex: this.sym.data.subarray(0, n), ts: this.ts.data.subarray(0, n), values };
  }

  /** Empties the collector for another body of the same table, keeping its storage (a batch() taken before is no longer valid). */
  reset(): void {
    this.n = 0;
    this.symbols = [];
    this.symbolIds = new Map();
  }
}

function valueOf(c: ColumnSpec, v: Cell | undefined, line: number): number | boolean {
  if (v === undefined) throw new IngestFormatError(line, c.name, "the value is missing", `give every row a ${c.type} value for ${c.name}`);
  switch (c.type) {
    case "bool":
      if (typeof v === "boolean") return v;
      throw new IngestFormatError(line, c.name, `${JSON.stringify(v)} is not a bool`, "send true or false");
    case "int64":
    case "int32":
      if (typeof v === "number" && Number.isInteger(v)) return v;
      throw new IngestFormatError(line, c.name, `${JSON.stringify(v)} is not an integer`, `${c.name} is ${c.type}: send a whole number`);
    case "float64":
    case "float32":
      if (typeof v === "number") return v;
      throw new IngestFormatError(line, c.name, `${JSON.stringify(v)} is not a number`, `${c.name} is ${c.type}: send a number`);
  }
}
