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

/** Collects rows of one table; `add` checks each value against its column. */
export class RowCollector {
  private readonly symbols: string[] = [];
  private readonly symbolIds = new Map<string, number>();
  private sym: number[] = [];
  private ts: number[] = [];
  private readonly values: (number | boolean)[][];
  /** Body line of each row (gateway messages name rows; the HTTP answer adds the line). */
  readonly lines: number[] = [];
  readonly byName: ReadonlyMap<string, number>;

  constructor(readonly spec: TableSpec) {
    this.values = spec.columns.map(() => []);
    this.byName = new Map(spec.columns.map((c, j) => [c.name, j]));
  }

  get rows(): number {
    return this.ts.length;
  }

  /** `cells[j]` is the value of column j (undefined when the row did not give it). */
  add(line: number, symbol: string, tsMicros: number, cells: readonly (Cell | undefined)[]): void {
    if (symbol === "") throw new IngestFormatError(line, this.spec.symbolColumn, "the symbol is empty", "every tick needs a symbol");
    const row = this.spec.columns.map((c, j) => valueOf(c, cells[j], line));
    let id = this.symbolIds.get(symbol);
    if (id === undefined) {
      id = this.symbols.length;
      this.symbols.push(symbol);
      this.symbolIds.set(symbol, id);
    }
    this.sym.push(id);
    this.ts.push(tsMicros);
    row.forEach((v, j) => this.values[j]!.push(v));
    this.lines.push(line);
  }

  batch(): TickBatch {
    const n = this.rows;
    const values: ValueArray[] = this.spec.columns.map((c, j) => {
      const out = allocValueArray(c.type, n);
      const src = this.values[j]!;
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return out;
    });
    return { rows: n, symbols: this.symbols, symbolIndex: Uint32Array.from(this.sym), ts: Float64Array.from(this.ts), values };
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
