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
  /** Symbols seen in this body by the FNV-1a hash of their bytes (checked byte for byte on a hit), with their id in the body's collector. */
  readonly symbols: Map<number, { readonly name: string; readonly id: number }>;
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

const NEWLINE = 10;

/**
 * Reads the line starting at `from` (it ends at the next newline or the end of
 * `text`) into `into` and returns the position of its end (that newline, or
 * text.length), or returns -1 having added nothing when the line is not of the
 * plain shape (the caller then finds its end and hands it to the general
 * parser). Finding the end here saves a native indexOf call per line.
 */
export function readPlainLine(t: FastLineTable, text: Uint8Array, from: number, line: number, into: RowCollector, nowMicros: number): number {
  const len = text.length;
  // measurement == table, then ",<symbolColumn>="
  const name = t.name;
  if (!equalAt(text, from, name) || text[from + name.length] !== COMMA) return -1;
  let p = from + name.length + 1;
  const sc = t.symbolColumn;
  if (!equalAt(text, p, sc) || text[p + sc.length] !== EQ) return -1;
  p += sc.length + 1;
  const symStart = p;
  let hash = 0x811c9dc5;
  for (; p < len; p++) {
    const c = text[p]!;
    if (c === SPACE) break;
    // Escapes, quotes, a second tag, '=' in the value, the line's end: the general parser's rules.
    if (c === COMMA || c === 92 || c === 34 || c === EQ || c === NEWLINE || c === CR) return -1;
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  if (p === symStart || p >= len) return -1;
  const symEnd = p;
  p++;
  // Fields: key=value[,key=value]...
  const cols = t.columns;
  const seen = t.seen;
  const values: number[] = fieldScratch;
  let given = 0;
  // Where the line ends (its newline or the end of the text), once the fields or the timestamp reached it.
  let end = -1;
  for (;;) {
    const keyStart = p;
    while (p < len && text[p] !== EQ) {
      const k = text[p]!;
      if (k === SPACE || k === COMMA || k === 92 || k === 34 || k === NEWLINE || k === CR) return -1;
      p++;
    }
    if (p >= len) return -1;
    const keyLen = p - keyStart;
    let j = -1;
    for (let k = 0; k < cols.length; k++) {
      const n = cols[k]!.name;
      if (n.length === keyLen && equalAt(text, keyStart, n)) {
        j = k;
        break;
      }
    }
    if (j < 0 || seen[j] === line) return -1;
    p++;
    // A number: [sign] digits [. digits] [i|u]; exponents and anything else go to the general parser.
    let neg = false;
    let c = p < len ? text[p]! : -1;
    if (c === MINUS || c === PLUS) {
      neg = c === MINUS;
      c = ++p < len ? text[p]! : -1;
    }
    let mantissa = 0;
    let intDigits = 0;
    let fracDigits = 0;
    let dot = false;
    for (; p < len; c = ++p < len ? text[p]! : -1) {
      if (c >= ZERO && c <= NINE) {
        mantissa = mantissa * 10 + (c - ZERO);
        if (dot) fracDigits++;
        else intDigits++;
      } else if (c === DOT && !dot) dot = true;
      else break;
    }
    // "1." or "." or a lone sign: the general parser judges those.
    if (intDigits + fracDigits === 0 || (dot && fracDigits === 0)) return -1;
    if (mantissa >= MAX_MANTISSA || fracDigits > 22) return -1;
    let v = fracDigits === 0 ? mantissa : mantissa / POW10[fracDigits]!;
    if (neg) v = -v;
    if (c === LOWER_I || c === LOWER_U) {
      if (dot) return -1;
      c = ++p < len ? text[p]! : -1;
    } else if (cols[j]!.integer && !Number.isInteger(v)) return -1;
    values[j] = v;
    seen[j] = line;
    given++;
    if (c === COMMA) {
      p++;
      continue;
    }
    if (c === SPACE) break;
    // The fields end the line (no timestamp): at its newline, the text's end, or a CR just before either.
    end = endAt(text, p, c);
    if (end < 0) return -1;
    break;
  }
  if (given !== cols.length) return -1;
  // Timestamp: digits to the end of the line, or none (the node's clock).
  let ts: number;
  if (end >= 0) ts = nowMicros;
  else {
    p++;
    const tsStart = p;
    let v = 0;
    for (; p < len; p++) {
      const d = text[p]!;
      if (d < ZERO || d > NINE) break;
    }
    const tsEnd = p;
    end = endAt(text, p, p < len ? text[p]! : -1);
    if (end < 0) return -1;
    const digits = tsEnd - tsStart;
    if (digits === 0) return -1;
    if (t.microsPerUnit === 0) {
      // Nanoseconds: the digits but the last three are microseconds (floor), at most 16 of them stay exact.
      if (digits > 19) return -1;
      for (let q = tsStart; q < tsEnd - 3; q++) v = v * 10 + (text[q]! - ZERO);
    } else {
      if (digits > 16) return -1;
      for (let q = tsStart; q < tsEnd; q++) v = v * 10 + (text[q]! - ZERO);
      v *= t.microsPerUnit;
    }
    if (v > Number.MAX_SAFE_INTEGER) return -1;
    ts = v;
  }
  const i = into.appendRow(line, symbolIdOf(t, text, symStart, symEnd, hash >>> 0, into), ts);
  for (let j = 0; j < cols.length; j++) into.column(j)[i] = values[j]!;
  return end;
}

/** The line's end when position p (holding byte c, -1 past the text) ends it: the newline's position or text.length; -1 otherwise. */
function endAt(text: Uint8Array, p: number, c: number): number {
  if (c === -1 || c === NEWLINE) return p;
  // A CR ends the line only right before its newline (or the text's end), as the general parser strips it.
  if (c === CR) {
    if (p + 1 >= text.length) return p + 1;
    if (text[p + 1] === NEWLINE) return p + 1;
  }
  return -1;
}

/**
 * The symbol's id in `into`: from the body's cache when its bytes match (no
 * string decoded, no string-keyed lookup), else decoded (UTF-8), looked up and,
 * when ASCII, cached.
 */
function symbolIdOf(t: FastLineTable, bytes: Uint8Array, from: number, to: number, hash: number, into: RowCollector): number {
  const hit = t.symbols.get(hash);
  if (hit !== undefined && hit.name.length === to - from) {
    const name = hit.name;
    let same = true;
    for (let i = 0; i < name.length; i++) {
      if (name.charCodeAt(i) !== bytes[from + i]) {
        same = false;
        break;
      }
    }
    if (same) return hit.id;
  }
  const s = utf8.decode(bytes.subarray(from, to));
  const id = into.symbolIdOf(s);
  // Only ASCII symbols are cached (one byte per character: the check above is then exact); others are decoded each time.
  if (s.length === to - from) t.symbols.set(hash, { name: s, id });
  return id;
}

const utf8 = new TextDecoder("utf-8");
const fieldScratch: number[] = [];
