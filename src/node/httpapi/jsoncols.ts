// The JSON answer of POST /v1/query written straight from the engine's typed
// columns (QueryEngine.runColumns): no Arrow record batches, no row arrays,
// one string. The bytes are those of render.ts renderJson over the same
// answer as record batches (test/node/jsoncols.test.ts holds them equal), so
// this file copies its rules: int64 kinds as the numbers an int64 round trip
// gives, non-finite numbers as null, symbols as UTF-8 round-trips them.
import { arrowType } from "../../query/index.js";
import type { OutColumn, OutField, QueryColumns } from "../../query/index.js";
import { isoOfMicros } from "./render.js";
import type { Meta, TsStyle } from "./render.js";

/** The answer's metadata as run() puts it in the schema and metaOf() reads it back. */
export function metaOfColumns(a: QueryColumns): Meta {
  const joined = a.notes.join("\n");
  return { complete: a.notes.length === 0, notes: a.notes.length > 0 && joined !== "" ? joined.split("\n") : [] };
}

// An int64 column's value is a double the Arrow path writes as two 32-bit words
// (output.ts toInt64) and reads back as a BigInt: exact for safe integers; for
// anything else (NaN, fractions, beyond 2^53) the same words give the same number.
const words = new Int32Array(2);
const wide = new BigInt64Array(words.buffer);

function int64Of(v: number): number {
  if (Number.isSafeInteger(v)) return v === 0 ? 0 : v;
  const hi = Math.floor(v / 4294967296);
  words[0] = v - hi * 4294967296;
  words[1] = hi;
  return Number(wide[0]!);
}

// ES2024 (Node >= 20), not in the ES2023 lib this project compiles against.
const wellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

// Numbers are most of an answer's cost: V8 prints a double that is not a small
// integer through its general shortest-digits path (~150 ns for a 16-digit
// timestamp, ~300 ns for a price). The two fast paths below give the same text
// for the common shapes; everything else is printed by String().

// Zero-padded digit groups: PAD[k][x] is x in exactly k digits (k = 1..4). A
// number's digits are built from them and String() of small integers (which V8
// keeps in its number-string cache) instead of a slice or repeat per value.
const PAD: readonly (readonly string[])[] = [[], ...[1, 2, 3, 4].map((k) => Array.from({ length: 10 ** k }, (_, x) => String(x).padStart(k, "0")))];
const PAD4 = PAD[4]!;

/** x (0 <= x < 10^k, an integer) in exactly k digits, zero-padded (k = 1..8). */
function padded(x: number, k: number): string {
  if (k <= 4) return PAD[k]![x]!;
  const hi = Math.floor(x / 1e4);
  return PAD[k - 4]![hi]! + PAD4[x - hi * 1e4]!;
}

/** String(v) for a safe integer: a timestamp in µs printed as two halves that are small integers. */
export function integerText(v: number): string {
  if (v >= -0x3fffffff && v <= 0x3fffffff) return String(v);
  const a = v < 0 ? -v : v;
  let hi = Math.floor(a / 1e8);
  let lo = a - hi * 1e8;
  // a / 1e8 is rounded: the quotient can be one off when the remainder is near 0 or 1e8.
  if (lo < 0) {
    hi--;
    lo += 1e8;
  } else if (lo >= 1e8) {
    hi++;
    lo -= 1e8;
  }
  const text = String(hi) + padded(lo, 8);
  return v < 0 ? `-${text}` : text;
}

const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6];

/**
 * JSON text of a number as JSON.stringify writes it. A value with at most 6
 * decimals (prices) is m / 10^k for the smallest such k: those digits are the
 * shortest that read back as the value, which is what String() prints (m is
 * kept below 2^50, so m / 10^k is the correctly rounded quotient and no
 * shorter decimal was skipped).
 */
export function numberText(v: number): string {
  if (!Number.isFinite(v)) return "null";
  if (Number.isInteger(v)) return Number.isSafeInteger(v) ? integerText(v) : String(v);
  const a = v < 0 ? -v : v;
  if (a >= 1e-6 && a < 1e9) {
    for (let k = 1; k <= 6; k++) {
      const p = POW10[k]!;
      const m = Math.round(a * p);
      if (m / p !== a) continue;
      if (m % 10 === 0) break;
      // m's digits with the point k from the right (at least one digit before it): the whole part, then k digits (m < 2^50: exact).
      const whole = Math.floor(m / p);
      const text = `${integerText(whole)}.${padded(m - whole * p, k)}`;
      return v < 0 ? `-${text}` : text;
    }
  }
  return String(v);
}

const num = numberText;

type Cell = (i: number) => string;

// A symbol's JSON text, kept across answers: a last-by names the same ~1,000
// symbols in every answer, and JSON.stringify of each was a tenth of the render.
// Bounded: full, it starts over.
const SYMBOL_JSON_MAX = 100_000;
let symbolTexts = new Map<string, string>();

function symbolJson(name: string): string {
  let text = symbolTexts.get(name);
  if (text === undefined) {
    if (symbolTexts.size >= SYMBOL_JSON_MAX) symbolTexts = new Map();
    // The Arrow path writes symbols as UTF-8 and reads them back: a lone surrogate comes back as U+FFFD.
    text = JSON.stringify(wellFormed(name));
    symbolTexts.set(name, text);
  }
  return text;
}

function cellOf(c: OutColumn, symbols: readonly string[], iso: boolean): Cell {
  const data = c.data;
  const valid = c.valid;
  let cell: Cell;
  switch (c.field.kind) {
    case "sym": {
      const text = new Array<string | undefined>(symbols.length);
      cell = (i) => {
        const k = data[i]!;
        return (text[k] ??= symbolJson(symbols[k]!));
      };
      break;
    }
    case "ts":
      cell = iso ? (i) => JSON.stringify(isoOfMicros(int64Of(data[i]!))) : (i) => num(int64Of(data[i]!));
      break;
    case "i64":
    case "int64":
      cell = (i) => num(int64Of(data[i]!));
      break;
    case "bool":
      cell = (i) => (data[i] ? "true" : "false");
      break;
    case "f64":
    case "float64":
    case "float32":
    case "int32":
      cell = (i) => num(data[i]!);
      break;
  }
  return valid === undefined ? cell : (i) => (valid[i] ? cell(i) : "null");
}

/**
 * Whether every column holds the typed array its kind is read through (the
 * Arrow path views the column's bytes as that type) and the column names are
 * distinct. Operators allocate them so; an answer that does not is left to the
 * Arrow path, whose bytes define the answer.
 */
export function columnsFit(a: QueryColumns): boolean {
  // Arrow merges the metadata of fields of the same name (a time column's mark spreads to its namesakes).
  if (new Set(a.fields.map((f) => f.name)).size !== a.fields.length) return false;
  for (const t of a.tables) {
    for (const c of t.columns) {
      const d = c.data;
      switch (c.field.kind) {
        case "sym":
        case "int32":
          if (!(d instanceof Int32Array)) return false;
          break;
        case "f64":
        case "float64":
          if (!(d instanceof Float64Array)) return false;
          break;
        case "float32":
          if (!(d instanceof Float32Array)) return false;
          break;
        default: // int64 kinds and bool are converted value by value on both paths
          break;
      }
      if (d.length < t.rows || (c.valid !== undefined && c.valid.length < t.rows)) return false;
    }
    if (t.columns.length !== a.fields.length) return false;
  }
  return true;
}

const columnsJson = (fields: readonly OutField[]): string =>
  JSON.stringify(fields.map((f) => ({ name: f.name, type: f.kind === "ts" ? "timestamp_us" : String(arrowType(f.kind)) })));

/** `{"columns":[...],"rows":[[...],...],"complete":...,"notes":[...]}` as UTF-8, times per `ts`. */
export function renderJsonColumns(a: QueryColumns, ts: TsStyle): Buffer {
  let out = `{"columns":${columnsJson(a.fields)},"rows":[`;
  let first = true;
  for (const t of a.tables) {
    const cells = t.columns.map((c) => cellOf(c, t.symbols, ts === "iso"));
    const n = cells.length;
    for (let i = 0; i < t.rows; i++) {
      let row = first ? "[" : ",[";
      first = false;
      for (let j = 0; j < n; j++) row += j === 0 ? cells[j]!(i) : `,${cells[j]!(i)}`;
      out += `${row}]`;
    }
  }
  const meta = metaOfColumns(a);
  out += `],"complete":${meta.complete},"notes":${JSON.stringify(meta.notes)}}`;
  return Buffer.from(out, "utf8");
}
