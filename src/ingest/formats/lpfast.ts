// The fast path of InfluxDB line protocol: one pass over the body's bytes
// (never decoded to a string), no split strings, no regular expressions,
// numbers read digit by digit, symbols from a cache keyed by their bytes (kept
// across bodies of a table). It takes only the plain shape the usual client sends
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

// Bytes that end or break a symbol or a field key in the plain shape (space, comma, '=', backslash, quote, newline, CR): one table load per byte.
const STOP = new Uint8Array(256);
for (const c of [32, 44, 61, 92, 34, 10, 13]) STOP[c] = 1;

// 10^k is exact in a double up to k = 22: a mantissa below 2^53 divided by one
// is the correctly rounded value, so it equals Number(text) (Clinger's fast path).
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);
const MAX_MANTISSA = 2 ** 53;

/** A table's names and columns as bytes, and its symbol cache: kept per table spec and precision, across bodies. */
export interface FastLineTable {
  /** `<table>,<symbolColumn>=`: every plain line starts with it. */
  readonly prefix: Uint8Array;
  readonly columns: readonly { readonly name: Uint8Array; readonly integer: boolean }[];
  /** Microseconds per unit of an integer timestamp, or 0 for nanoseconds (divided by 1000). */
  readonly microsPerUnit: number;
  /** Column j was given on the current line (index: line number stamp). */
  readonly seen: Int32Array;
  /** The current line's values, by column. */
  readonly values: Float64Array;
  readonly symbols: SymbolCache;
}

const ascii = (s: string): Uint8Array => Buffer.from(s, "utf8");

/** bytes[at, at + want.length) equals want. */
function equalAt(bytes: Uint8Array, at: number, want: Uint8Array): boolean {
  if (at + want.length > bytes.length) return false;
  for (let i = 0; i < want.length; i++) if (bytes[at + i] !== want[i]) return false;
  return true;
}

/**
 * Symbols by their bytes, kept across bodies (a feed sends the same symbols in
 * every body: decoding them again per body was a tenth of the parse). An open
 * addressing table on the FNV-1a hash, grown as symbols come (so a table with
 * few symbols holds little); a hit is checked byte for byte, so any UTF-8
 * symbol is cached. Each entry remembers its id in the collector of the body
 * that last used it (`stamp`): the ids of another body are looked up again by
 * name. Bounded: full, it starts over empty.
 */
class SymbolCache {
  private static readonly MAX_ENTRIES = 1 << 15;
  private static readonly MAX_BYTES = 1 << 20;
  /** Per slot: entry index + 1, 0 for an empty slot (at most half the slots are used). */
  private slots = new Int32Array(1 << 10);
  private names: string[] = [];
  /** Per entry: its hash, where its bytes start in `bytes`, their length, its id in the body `stamp`. */
  private hash = new Int32Array(1 << 9);
  private start = new Int32Array(1 << 9);
  private length = new Int32Array(1 << 9);
  private id = new Int32Array(1 << 9);
  private stamp = new Int32Array(1 << 9);
  private bytes = new Uint8Array(1 << 12);
  private used = 0;
  /** The current body (bumped per body: ids of earlier bodies are stale). */
  body = 1;

  /** The symbol text[from, to)'s id in `into`, whose hash (FNV-1a of those bytes) is `hash`. */
  idOf(text: Uint8Array, from: number, to: number, hash: number, into: RowCollector): number {
    const len = to - from;
    const slots = this.slots;
    const mask = slots.length - 1;
    for (let s = hash & mask, e = slots[s]!; e !== 0; s = (s + 1) & mask, e = slots[s]!) {
      const k = e - 1;
      if (this.hash[k] !== hash || this.length[k] !== len) continue;
      const bytes = this.bytes;
      const at = this.start[k]!;
      let same = true;
      for (let i = 0; i < len; i++) {
        if (bytes[at + i] !== text[from + i]) {
          same = false;
          break;
        }
      }
      if (!same) continue;
      if (this.stamp[k] !== this.body) {
        this.id[k] = into.symbolIdOf(this.names[k]!);
        this.stamp[k] = this.body;
      }
      return this.id[k]!;
    }
    const name = utf8.decode(text.subarray(from, to));
    const id = into.symbolIdOf(name);
    this.add(text, from, to, hash, id, name);
    return id;
  }

  private add(text: Uint8Array, from: number, to: number, hash: number, id: number, name: string): void {
    const len = to - from;
    if (this.names.length >= SymbolCache.MAX_ENTRIES || this.used + len > SymbolCache.MAX_BYTES) this.clear();
    const k = this.names.length;
    if (k >= this.hash.length) {
      const grow = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.hash = grow(this.hash);
      this.start = grow(this.start);
      this.length = grow(this.length);
      this.id = grow(this.id);
      this.stamp = grow(this.stamp);
      this.slots = new Int32Array(this.slots.length * 2);
      for (let j = 0; j < k; j++) this.place(j);
    }
    if (this.used + len > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.used + len));
      grown.set(this.bytes.subarray(0, this.used));
      this.bytes = grown;
    }
    this.bytes.set(text.subarray(from, to), this.used);
    this.hash[k] = hash;
    this.start[k] = this.used;
    this.length[k] = len;
    this.id[k] = id;
    this.stamp[k] = this.body;
    this.used += len;
    this.names.push(name);
    this.place(k);
  }

  /** Entry k into the first free slot from its hash. */
  private place(k: number): void {
    const mask = this.slots.length - 1;
    let s = this.hash[k]! & mask;
    while (this.slots[s] !== 0) s = (s + 1) & mask;
    this.slots[s] = k + 1;
  }

  private clear(): void {
    this.slots.fill(0);
    this.names = [];
    this.used = 0;
  }
}

const tables = new WeakMap<TableSpec, { readonly symbols: SymbolCache; readonly byPrecision: (FastLineTable | null | undefined)[] }>();
const PRECISIONS: readonly Precision[] = ["ns", "us", "ms", "s"];

/**
 * The table's fast path state (kept per spec, so its symbol cache serves the
 * next body), ready for a new body; null when the table has a column the fast
 * path does not read (bool): every line goes to the general parser.
 */
export function fastLineTable(spec: TableSpec, precision: Precision): FastLineTable | null {
  let kept = tables.get(spec);
  if (kept === undefined) tables.set(spec, (kept = { symbols: new SymbolCache(), byPrecision: [] }));
  const at = PRECISIONS.indexOf(precision);
  let t = kept.byPrecision[at];
  if (t === undefined) kept.byPrecision[at] = t = buildTable(spec, precision, kept.symbols);
  if (t !== null) {
    // A new body: no line of it has given a column yet, and no symbol id of an earlier body holds.
    t.seen.fill(0);
    t.symbols.body = (t.symbols.body + 1) | 0 || 1;
  }
  return t;
}

function buildTable(spec: TableSpec, precision: Precision, symbols: SymbolCache): FastLineTable | null {
  if (spec.columns.some((c) => c.type === "bool")) return null;
  return {
    prefix: ascii(`${spec.name},${spec.symbolColumn}=`),
    columns: spec.columns.map((c) => ({ name: ascii(c.name), integer: c.type === "int64" || c.type === "int32" })),
    microsPerUnit: { ns: 0, us: 1, ms: 1000, s: 1_000_000 }[precision],
    seen: new Int32Array(spec.columns.length),
    values: new Float64Array(spec.columns.length),
    symbols,
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
  // "<table>,<symbolColumn>=" in one comparison.
  const prefix = t.prefix;
  if (!equalAt(text, from, prefix)) return -1;
  let p = from + prefix.length;
  const symStart = p;
  let hash = 0x811c9dc5 | 0;
  for (; p < len; p++) {
    const c = text[p]!;
    if (STOP[c] !== 0) {
      if (c === SPACE) break;
      // Escapes, quotes, a second tag, '=' in the value, the line's end: the general parser's rules.
      return -1;
    }
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  if (p === symStart || p >= len) return -1;
  const symEnd = p;
  p++;
  // Fields: key=value[,key=value]...
  const cols = t.columns;
  const seen = t.seen;
  const values = t.values;
  let given = 0;
  // Where the line ends (its newline or the end of the text), once the fields or the timestamp reached it.
  let end = -1;
  for (;;) {
    const keyStart = p;
    while (p < len) {
      const k = text[p]!;
      if (STOP[k] !== 0) {
        if (k === EQ) break;
        return -1;
      }
      p++;
    }
    if (p >= len) return -1;
    const keyLen = p - keyStart;
    // The usual client sends the columns in the table's order: try the next one first.
    let j = given < cols.length && cols[given]!.name.length === keyLen && equalAt(text, keyStart, cols[given]!.name) ? given : -1;
    for (let k = 0; j < 0 && k < cols.length; k++) {
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
  const i = into.appendRow(line, t.symbols.idOf(text, symStart, symEnd, hash, into), ts);
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

const utf8 = new TextDecoder("utf-8");
