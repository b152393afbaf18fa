// The time-series clauses, taken out of the SQL text before parsing.
// node-sql-parser (PostgreSQL grammar) knows none of QuestDB's clauses
// (LATEST ON, SAMPLE BY, ASOF JOIN ... TOLERANCE), has no WINDOW JOIN, rejects
// RANGE INTERVAL frames and OVER on functions it does not list (vwap, ema), so
// this pass reads them itself and leaves standard SQL behind:
// ASOF/WINDOW JOIN become LEFT JOIN, `f(x) OVER (...)` becomes
// `__px_over_<i>(f(x))` with the window spec kept here, the rest is removed.
import { isWord, lex, unquote } from "./lexer.js";
import type { Token } from "./lexer.js";
import { malformed, refuse } from "./refuse.js";
import { durationMicros, durationOf, timestampOf } from "./time.js";

export type Fill = "none" | "null" | "previous" | "zero";
export type Frame = { readonly kind: "range"; readonly duration: string | number } | { readonly kind: "rows"; readonly rows: number } | { readonly kind: "unbounded" };

export interface OverSpec {
  readonly partition: readonly string[];
  readonly order: readonly { readonly column: string; readonly desc: boolean }[];
  readonly frame: Frame | undefined;
}

/** A timestamp as written: absolute, or now() plus an offset (resolved when the statement is compiled). */
export type TimeRef = { readonly micros: number } | { readonly nowPlus: number };

export type JoinExt = { readonly kind: "asof"; tolerance: string | number | undefined } | { readonly kind: "window"; before: string | number | undefined; after: string | number | undefined };

export interface Extracted {
  /** The SQL left for the parser. */
  readonly sql: string;
  readonly explain: boolean;
  readonly latest: { readonly op: "lastBy" | "firstBy"; readonly partition: string; readonly on: string | undefined; readonly at: TimeRef | undefined } | undefined;
  readonly sample: { readonly bucket: string | number; readonly fill: Fill | undefined } | undefined;
  readonly join: JoinExt | undefined;
  /** The window spec of `__px_over_<i>`. */
  readonly overs: readonly OverSpec[];
}

export const OVER_MARK = "__px_over_";

const FILLS: Record<string, Fill> = { NONE: "none", NULL: "null", PREV: "previous", PREVIOUS: "previous", "0": "zero", ZERO: "zero" };

class Cursor {
  i = 0;
  constructor(readonly t: readonly Token[]) {}
  peek(k = 0): Token | undefined {
    return this.t[this.i + k];
  }
  next(): Token | undefined {
    return this.t[this.i++];
  }
  accept(kw: string): boolean {
    if (isWord(this.peek(), kw) || this.peek()?.text === kw) {
      this.i++;
      return true;
    }
    return false;
  }
  expect(kw: string, clause: string, fix: string): void {
    if (!this.accept(kw)) throw malformed(`${clause}: expected ${kw} but found ${this.peek()?.text ?? "the end"}`, fix);
  }
  /** A name, possibly qualified (t.sym); the qualifier is kept (the compiler resolves aliases). */
  ident(clause: string, fix: string): string {
    const a = this.next();
    if (a === undefined || (a.kind !== "word" && a.kind !== "qid")) throw malformed(`${clause}: expected a column name but found ${a?.text ?? "the end"}`, fix);
    const name = a.kind === "qid" ? a.text.slice(1, -1) : a.text;
    if (this.peek()?.text === "." && this.peek(1) !== undefined) {
      this.i++;
      return `${name}.${this.ident(clause, fix)}`;
    }
    return name;
  }
}

/** A duration: INTERVAL '5m', '5m', 5m or integer microseconds. */
function duration(c: Cursor, clause: string): string | number {
  c.accept("INTERVAL");
  const t = c.next();
  if (t === undefined || (t.kind !== "str" && t.kind !== "num")) throw malformed(`${clause}: expected a duration but found ${t?.text ?? "the end"}`, "write one such as '5m', 500ms, INTERVAL '5 minutes' or integer microseconds");
  return durationOf(t.kind === "str" ? unquote(t) : t.text, clause);
}

function literalTs(c: Cursor, clause: string): TimeRef {
  if (isWord(c.peek(), "NOW") && c.peek(1)?.text === "(" && c.peek(2)?.text === ")") {
    c.i += 3;
    const sign = c.accept("-") ? -1 : c.accept("+") ? 1 : 0;
    return { nowPlus: sign === 0 ? 0 : sign * durationMicros(duration(c, clause), clause) };
  }
  c.accept("TIMESTAMP");
  const t = c.next();
  if (t === undefined || (t.kind !== "str" && t.kind !== "num")) throw malformed(`${clause}: expected a timestamp but found ${t?.text ?? "the end"}`, "write '2024-01-02T14:30:00Z' or integer microseconds");
  return { micros: timestampOf(t.kind === "str" ? unquote(t) : t.text, clause) };
}

const LATEST_FIX = "write LATEST ON ts PARTITION BY sym (after WHERE), or LATEST BY sym [AT '2024-01-02T14:30:00Z']";

function latestClause(c: Cursor, op: "lastBy" | "firstBy"): NonNullable<Extracted["latest"]> {
  const kw = op === "lastBy" ? "LATEST" : "EARLIEST";
  if (c.accept("ON")) {
    const on = c.ident(`${kw} ON`, LATEST_FIX);
    c.expect("PARTITION", `${kw} ON`, LATEST_FIX);
    c.expect("BY", `${kw} ON`, LATEST_FIX);
    const partition = c.ident(`${kw} ON ... PARTITION BY`, LATEST_FIX);
    if (c.peek()?.text === ",") throw refuse(`${kw} ON ... PARTITION BY with several columns`, "partition by the symbol column alone");
    return { op, on, partition, at: undefined };
  }
  c.expect("BY", kw, LATEST_FIX);
  const partition = c.ident(`${kw} BY`, LATEST_FIX);
  if (c.peek()?.text === ",") throw refuse(`${kw} BY with several columns`, "name the symbol column alone");
  const at = c.accept("AT") ? literalTs(c, `${kw} BY ... AT`) : undefined;
  return { op, partition, on: undefined, at };
}

const SAMPLE_FIX = "write SAMPLE BY 1m [FILL(NONE|NULL|PREV|0)] [ALIGN TO CALENDAR]";

function sampleClause(c: Cursor): NonNullable<Extracted["sample"]> {
  c.expect("BY", "SAMPLE", SAMPLE_FIX);
  const bucket = duration(c, "SAMPLE BY");
  let fill: Fill | undefined;
  if (c.accept("FILL")) {
    c.expect("(", "FILL", SAMPLE_FIX);
    const f = c.next();
    const mode = f === undefined ? undefined : FILLS[f.text.toUpperCase()];
    if (mode === undefined) throw refuse(`FILL(${f?.text ?? ""})`, "use FILL(NONE), FILL(NULL), FILL(PREV) or FILL(0)");
    if (c.peek()?.text === ",") throw refuse("FILL with one mode per column", "give one mode for every column: FILL(PREV)");
    c.expect(")", "FILL", SAMPLE_FIX);
    fill = mode;
  }
  if (c.accept("ALIGN")) {
    c.expect("TO", "ALIGN", SAMPLE_FIX);
    // Buckets start at multiples of their size since the epoch (UTC): QuestDB's calendar alignment for sizes that divide a day.
    if (!c.accept("CALENDAR")) throw refuse(`ALIGN TO ${c.peek()?.text ?? ""}`, "buckets are aligned to the calendar (UTC multiples of the bucket size); write ALIGN TO CALENDAR or leave it out");
    if (isWord(c.peek(), "WITH") || isWord(c.peek(), "TIME")) throw refuse("ALIGN TO CALENDAR with an offset or time zone", "buckets are UTC; shift timestamps in the client");
  }
  return { bucket, fill };
}

const FRAME_FIX = "write OVER (PARTITION BY sym ORDER BY ts RANGE INTERVAL '5m' PRECEDING) or OVER (PARTITION BY sym ORDER BY ts ROWS 10 PRECEDING)";

function frameOf(c: Cursor, end: number): Frame {
  const unit = c.next()!.text.toUpperCase() as "ROWS" | "RANGE";
  const between = c.accept("BETWEEN");
  let frame: Frame;
  if (c.accept("UNBOUNDED")) frame = { kind: "unbounded" };
  else if (unit === "RANGE") frame = { kind: "range", duration: duration(c, "RANGE frame") };
  else {
    const n = c.next();
    if (n?.kind !== "num" || !/^\d+$/.test(n.text)) throw malformed(`ROWS frame: expected a row count but found ${n?.text ?? "the end"}`, FRAME_FIX);
    frame = { kind: "rows", rows: Number(n.text) + 1 };
  }
  c.expect("PRECEDING", `${unit} frame`, FRAME_FIX);
  if (between || c.accept("AND")) {
    if (between) c.expect("AND", `${unit} BETWEEN`, FRAME_FIX);
    if (!(c.accept("CURRENT") && c.accept("ROW"))) throw refuse(`a ${unit} frame that does not end at the current row`, FRAME_FIX);
  }
  if (c.i < end) throw refuse(`"${c.peek()?.text}" in a window frame`, FRAME_FIX);
  return frame;
}

function overSpec(tokens: readonly Token[]): OverSpec {
  const c = new Cursor(tokens);
  const partition: string[] = [];
  const order: { column: string; desc: boolean }[] = [];
  let frame: Frame | undefined;
  if (c.accept("PARTITION")) {
    c.expect("BY", "PARTITION", FRAME_FIX);
    do partition.push(c.ident("PARTITION BY", FRAME_FIX));
    while (c.accept(","));
  }
  if (c.accept("ORDER")) {
    c.expect("BY", "ORDER", FRAME_FIX);
    do {
      const column = c.ident("ORDER BY", FRAME_FIX);
      const desc = c.accept("DESC");
      if (!desc) c.accept("ASC");
      order.push({ column, desc });
    } while (c.accept(","));
  }
  if (isWord(c.peek(), "ROWS") || isWord(c.peek(), "RANGE")) frame = frameOf(c, tokens.length);
  if (isWord(c.peek(), "GROUPS")) throw refuse("a GROUPS frame", FRAME_FIX);
  if (c.i < tokens.length) throw malformed(`OVER (...): unexpected "${c.peek()!.text}"`, FRAME_FIX);
  return { partition, order, frame };
}

/** Index of the ")" matching the "(" at `open`. */
function closing(t: readonly Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < t.length; k++) {
    if (t[k]!.text === "(") depth++;
    else if (t[k]!.text === ")" && --depth === 0) return k;
  }
  throw malformed(`the parenthesis at offset ${t[open]!.at} is not closed`, "close it");
}

export function extract(sql: string): Extracted {
  const sig = lex(sql).filter((t) => t.kind !== "ws" && t.kind !== "comment");
  const out: string[] = [];
  const c = new Cursor(sig);
  let explain = false;
  let latest: Extracted["latest"];
  let sample: Extracted["sample"];
  let join: JoinExt | undefined;
  const overs: OverSpec[] = [];
  let depth = 0;
  if (c.accept("EXPLAIN")) explain = true;
  while (c.i < sig.length) {
    const t = c.peek()!;
    const kw = t.kind === "word" ? t.text.toUpperCase() : "";
    const top = depth === 0;
    if (top && (kw === "LATEST" || kw === "EARLIEST")) {
      if (latest !== undefined) throw refuse(`a second ${kw} clause`, "give one LATEST ON / LATEST BY clause");
      c.i++;
      latest = latestClause(c, kw === "LATEST" ? "lastBy" : "firstBy");
    } else if (top && kw === "SAMPLE") {
      if (sample !== undefined) throw refuse("a second SAMPLE BY", "give one SAMPLE BY clause");
      c.i++;
      sample = sampleClause(c);
    } else if (top && (kw === "ASOF" || kw === "WINDOW") && isWord(c.peek(1), "JOIN")) {
      if (join !== undefined) throw refuse("a second join", "join two tables: one ASOF JOIN or WINDOW JOIN per query");
      c.i += 2;
      join = kw === "ASOF" ? { kind: "asof", tolerance: undefined } : { kind: "window", before: undefined, after: undefined };
      out.push("LEFT JOIN");
    } else if (top && (kw === "LT" || kw === "SPLICE") && isWord(c.peek(1), "JOIN")) {
      throw refuse(`${kw} JOIN`, "use ASOF JOIN (the latest right row at or before each left row), optionally with TOLERANCE '500ms'");
    } else if (top && kw === "WINDOW") {
      throw refuse("a named WINDOW clause", "write the window inline: OVER (PARTITION BY sym ORDER BY ts RANGE INTERVAL '5m' PRECEDING)");
    } else if (top && kw === "TOLERANCE") {
      if (join?.kind !== "asof") throw refuse("TOLERANCE without ASOF JOIN", "TOLERANCE belongs to ASOF JOIN: FROM trades ASOF JOIN quotes ON (sym) TOLERANCE '500ms'");
      c.i++;
      join.tolerance = duration(c, "TOLERANCE");
    } else if (top && kw === "RANGE" && join?.kind === "window") {
      const fix = "write WINDOW JOIN quotes ON (sym) RANGE BETWEEN '2s' PRECEDING AND '1s' FOLLOWING";
      c.i++;
      c.expect("BETWEEN", "WINDOW JOIN RANGE", fix);
      join.before = duration(c, "WINDOW JOIN RANGE");
      c.expect("PRECEDING", "WINDOW JOIN RANGE", fix);
      c.expect("AND", "WINDOW JOIN RANGE", fix);
      if (c.accept("CURRENT")) {
        c.expect("ROW", "WINDOW JOIN RANGE", fix);
        join.after = 0;
      } else {
        join.after = duration(c, "WINDOW JOIN RANGE");
        c.expect("FOLLOWING", "WINDOW JOIN RANGE", fix);
      }
    } else if (kw === "OVER") {
      if (c.peek(1)?.text !== "(") throw refuse("OVER with a named window", "write the window inline: OVER (PARTITION BY sym ORDER BY ts RANGE INTERVAL '5m' PRECEDING)");
      const end = closing(sig, c.i + 1);
      // Wrap the call just written, f(...), in the marker: find its "(" and name in `out`.
      let k = out.length - 1;
      if (out[k] !== ")") throw malformed(`OVER at offset ${t.at} does not follow a function call`, "write OVER after an aggregate, e.g. avg(price) OVER (...)");
      for (let d = 0; k >= 0; k--) {
        if (out[k] === ")") d++;
        else if (out[k] === "(" && --d === 0) break;
      }
      const nameAt = k - 1;
      if (nameAt < 0 || !/^[A-Za-z_]/.test(out[nameAt]!)) throw malformed(`OVER at offset ${t.at} does not follow a function call`, "write OVER after an aggregate, e.g. avg(price) OVER (...)");
      out.splice(nameAt, 0, `${OVER_MARK}${overs.length}`, "(");
      out.push(")");
      overs.push(overSpec(sig.slice(c.i + 2, end)));
      c.i = end + 1;
    } else {
      if (t.text === "(") depth++;
      else if (t.text === ")") depth--;
      out.push(t.text);
      c.i++;
    }
  }
  if (join?.kind === "window" && join.before === undefined) {
    throw malformed("WINDOW JOIN needs its window", "add RANGE BETWEEN '2s' PRECEDING AND '1s' FOLLOWING after the ON clause");
  }
  return { sql: out.join(" "), explain, latest, sample, join, overs };
}
