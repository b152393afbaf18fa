// The fast path of InfluxDB line protocol: one pass over the body's bytes
// (never decoded to a string), no split strings, no regular expressions,
// numbers read digit by digit, symbols from a cache keyed by their bytes' hash. It takes only the plain shape the usual client sends
// (`table,sym=X f1=1.5,f2=100i 1704205800000000000`, no escapes, no quotes,
// one space between sections) and returns false for anything else, so the
// general parser (lineproto.ts) reads that line and words every refusal. The
// unit test holds both parsers to the same rows on random bodies.
import type { TableSpec } from "../../../protocols/tablespec.js";
import type { Precision, RowCollector } from "./rows.js";

const SPACE = 32;
const COMMA = 44;
const EQ = 61;
const DOT = 46;
const MINUS = 45;
const PLUS = 43;
const ZERO = 48;
const NINE = 57;
const LOWER_I = 105;
const LOWER_U = 117;
const CR = 13;

// 10^k is exact in a double up to k = 22: a mantissa below 2^53 divided by one
// is the correctly rounded value, so it equals Number(text) (Clinger's fast path).
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);
const MAX_MANTISSA = 2 ** 53;

/** Per body: the table's names and columns, looked up once. */
export interface FastLineTable {
  readonly name: Uint8Array;
  readonly symbolColumn: Uint8Array;
  readonly columns: readonly { readonly name: Uint8Array; readonly integer: boolean }[];
  /** Microseconds per unit of an integer timestamp, or 0 for nanoseconds (divided by 1000). */
  readonly microsPerUnit: number;
  /** Column j was given on the current line (index: line number stamp). */
  readonly seen: Int32Array;
  /** Symbols seen in this body by the FNV-1a hash of their bytes (checked byte for byte on a hit). */
  readonly symbols: Map<number, string>;
}

const ascii = (s: string): Uint8Array => Buffer.from(s, "utf8");

/** bytes[at, at + want.length) equals want. */
function equalAt(bytes: Uint8Array, at: number, want: Uint8Array): boolean {
  if (at + want.length > bytes.length) return false;
  for (let i = 0; i < want.length; i++) if (bytes[at + i] !== want[i]) return false;
  return true;
}

/** Null when the table has a column the fast path does not read (bool): every line goes to the general parser. */
export function fastLineTable(spec: TableSpec, precision: Precision): FastLineTable | null {
  if (spec.columns.some((c) => c.type === "bool")) return null;
  return {
    name: ascii(spec.name),
    symbolColumn: ascii(spec.symbolColumn),
    columns: spec.columns.map((c) => ({ name: ascii(c.name), integer: c.type === "int64" || c.type === "int32" })),
    microsPerUnit: { ns: 0, us: 1, ms: 1000, s: 1_000_000 }[precision],
    seen: new Int32Array(spec.columns.length),
    symbols: new Map(),
  };
}

/**
 * Reads bytes[from, to) (one line, without its newline) into `into` and
 * returns true, or returns false having added nothing when the line is not of
 * the plain shape (the caller then hands it to the general parser).
 */
export function readPlainLine(t: FastLineTable, text: Uint8Array, from: number, to: number, line: number, into: RowCollector, nowMicros: number): boolean {
  if (to > from && text[to - 1] === CR) to--;
  // measurement == table, then ",<symbolColumn>="
  const name = t.name;
  if (!equalAt(text, from, name) || text[from + name.length] !== COMMA) return false;
  let p = from + name.length + 1;
  const sc = t.symbolColumn;
  if (!equalAt(text, p, sc) || text[p + sc.length] !== EQ) return false;
  p += sc.length + 1;
  const symStart = p;
  let hash = 0x811c9dc5;
  for (; p < to; p++) {
    const c = text[p]!;
    if (c === SPACE) break;
    // Escapes, quotes, a second tag, '=' in the value: the general parser's rules.
    if (c === COMMA || c === 92 || c === 34 || c === EQ) return false;
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  if (p === symStart || p >= to) return false;
  const symEnd = p;
  p++;
  // Fields: key=value[,key=value]...
  const cols = t.columns;
  const seen = t.seen;
  const values: number[] = fieldScratch;
  let given = 0;
  for (;;) {
    const keyStart = p;
    while (p < to && text[p] !== EQ) {
      const c = text[p]!;
      if (c === SPACE || c === COMMA || c === 92 || c === 34) return false;
      p++;
    }
    if (p >= to) return false;
    const keyLen = p - keyStart;
    let j = -1;
    for (let k = 0; k < cols.length; k++) {
      const n = cols[k]!.name;
      if (n.length === keyLen && equalAt(text, keyStart, n)) {
        j = k;
        break;
      }
    }
    if (j < 0 || seen[j] === line) return false;
    p++;
    // A number: [sign] digits [. digits] [i|u]; exponents and anything else go to the general parser.
    let neg = false;
    let c = p < to ? text[p]! : -1;
    if (c === MINUS || c === PLUS) {
      neg = c === MINUS;
      c = ++p < to ? text[p]! : -1;
    }
    let mantissa = 0;
    let intDigits = 0;
    let fracDigits = 0;
    let dot = false;
    for (; p < to; c = ++p < to ? text[p]! : -1) {
      if (c >= ZERO && c <= NINE) {
        mantissa = mantissa * 10 + (c - ZERO);
        if (dot) fracDigits++;
        else intDigits++;
      } else if (c === DOT && !dot) dot = true;
      else break;
    }
    // "1." or "." or a lone sign: the general parser judges those.
    if (intDigits + fracDigits === 0 || (dot && fracDigits === 0)) return false;
    if (mantissa >= MAX_MANTISSA || fracDigits > 22) return false;
    let v = fracDigits === 0 ? mantissa : mantissa / POW10[fracDigits]!;
    if (neg) v = -v;
    if (p < to && (c === LOWER_I || c === LOWER_U)) {
      if (dot) return false;
      c = ++p < to ? text[p]! : -1;
    } else if (cols[j]!.integer && !Number.isInteger(v)) return false;
    values[j] = v;
    seen[j] = line;
    given++;
    if (p >= to) break;
    if (c === COMMA) {
      p++;
      continue;
    }
    if (c === SPACE) break;
    return false;
  }
  if (given !== cols.length) return false;
  // Timestamp: digits to the end of the line, or none (the node's clock).
  let ts: number;
  if (p >= to) ts = nowMicros;
  else {
    p++;
    const tsStart = p;
    let v = 0;
    for (; p < to; p++) {
      const c = text[p]!;
      if (c < ZERO || c > NINE) return false;
    }
    const len = p - tsStart;
    if (len === 0) return false;
    if (t.microsPerUnit === 0) {
      // Nanoseconds: the digits but the last three are microseconds (floor), at most 16 of them stay exact.
      if (len > 19) return false;
      for (let q = tsStart; q < to - 3; q++) v = v * 10 + (text[q]! - ZERO);
    } else {
      if (len > 16) return false;
      for (let q = tsStart; q < to; q++) v = v * 10 + (text[q]! - ZERO);
      v *= t.microsPerUnit;
    }
    if (v > Number.MAX_SAFE_INTEGER) return false;
    ts = v;
  }
  const i = into.appendChecked(line, symbolOf(t, text, symStart, symEnd, hash >>> 0), ts);
  for (let j = 0; j < cols.length; j++) into.column(j)[i] = values[j]!;
  return true;
}

/** The symbol's string: from the body's cache when its bytes match, else decoded (UTF-8) and cached. */
function symbolOf(t: FastLineTable, bytes: Uint8Array, from: number, to: number, hash: number): string {
  const hit = t.symbols.get(hash);
  if (hit !== undefined && hit.length === to - from) {
    let same = true;
    for (let i = 0; i < hit.length; i++) {
      if (hit.charCodeAt(i) !== bytes[from + i]) {
        same = false;
        break;
      }
    }
    if (same) return hit;
  }
  const s = utf8.decode(bytes.subarray(from, to));
  // Only ASCII symbols are cached (one byte per character: the check above is then exact); others are decoded each time.
  if (s.length === to - from) t.symbols.set(hash, s);
  return s;
}

const utf8 = new TextDecoder("utf-8");
const fieldScratch: number[] = [];
