// InfluxDB line protocol: `table,sym=AAPL price=1.5,size=100i 1704205800000000000`.
// The measurement must be the table, the one tag its symbol column, the fields
// its value columns. Escapes: \, \space (and \= in keys and tag values);
// `\"` and `\\` inside string fields. Integers end in i (or u), floats are bare,
// bools are t/f/true/false. The timestamp is in ?precision= units (default ns)
// and may be left out: the node's clock is used then.
import type { Cell, Precision, RowCollector } from "./rows.js";
import { IngestFormatError, integerTimeToMicros } from "./rows.js";
import { fastLineTable, readPlainLine } from "./lpfast.js";

/** Splits `s` at unescaped `sep` characters, outside double quotes when `quotes`; backslash escapes stay for the caller. */
function split(s: string, sep: string, quotes: boolean, limit = Infinity): string[] {
  const out: string[] = [];
  let cur = "";
  let inQ = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === "\\" && i + 1 < s.length) {
      cur += ch + s[i + 1]!;
      i++;
      continue;
    }
    if (quotes && ch === '"') inQ = !inQ;
    if (ch === sep && !inQ && out.length < limit) {
      out.push(cur);
      cur = "";
      continue;
    }
    cur += ch;
  }
  out.push(cur);
  return out;
}

const unescape = (s: string): string => s.replace(/\\([,= \\"])/g, "$1");

const FLOAT = /^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)$/;

function fieldValue(v: string, line: number, key: string): Cell {
  if (/^[+-]?\d+[iu]$/.test(v)) return Number(v.slice(0, -1));
  if (FLOAT.test(v)) return Number(v);
  if (/^(t|T|true|True|TRUE)$/.test(v)) return true;
  if (/^(f|F|false|False|FALSE)$/.test(v)) return false;
  if (v.startsWith('"')) throw new IngestFormatError(line, key, "string fields are not stored (tables have numeric and bool value columns)", "send the value as a number, or make it the symbol tag");
  throw new IngestFormatError(line, key, `"${v.slice(0, 40)}" is not a field value`, "write integers as 100i, floats as 1.5, bools as t or f");
}

/**
 * Reads a line protocol body (its bytes: the fast path never decodes them;
 * lines it hands over are decoded as UTF-8 one by one). `plainFastPath: false`
 * reads every line with the general parser (the unit test compares the two).
 */
export function readLineProtocol(body: Uint8Array, into: RowCollector, precision: Precision, nowMicros: number, plainFastPath = true): void {
  const fast = plainFastPath ? fastLineTable(into.spec, precision) : null;
  let line = 0;
  for (let from = 0; from <= body.length; ) {
    line++;
    // The fast path finds the line's end itself; a line it hands over is cut at its newline for the general parser.
    let to = fast === null ? -1 : readPlainLine(fast, body, from, line, into, nowMicros);
    if (to < 0) {
      to = body.indexOf(NEWLINE, from);
      if (to < 0) to = body.length;
      readLine(utf8.decode(body.subarray(from, to)), line, into, precision, nowMicros);
    }
    from = to + 1;
  }
}

const NEWLINE = 10;
const utf8 = new TextDecoder("utf-8");

/** The general parser, one line: every escape and quoting rule, and every refusal's wording. */
function readLine(text: string, line: number, into: RowCollector, precision: Precision, nowMicros: number): void {
  const { spec } = into;
  const raw = text.replace(/\r$/, "").trim();
  if (raw === "" || raw.startsWith("#")) return;
  const parts = split(raw, " ", true);
  const main = parts.filter((p) => p !== "");
  if (main.length < 2 || main.length > 3) throw new IngestFormatError(line, undefined, `expected "measurement,tags fields [timestamp]", found ${main.length} space-separated parts`, "escape spaces in names and tag values as \\  and quote string fields");
  const [series, fieldText, tsText] = main as [string, string, string | undefined];
  const [measurement, ...tags] = split(series, ",", false);
  if (unescape(measurement!) !== spec.name) throw new IngestFormatError(line, undefined, `measurement "${unescape(measurement!).slice(0, 63)}" is not table ${spec.name}`, `start each line with ${spec.name}, or post to /v1/ingest/${unescape(measurement!).slice(0, 63)}`);
  let sym: string | undefined;
  for (const tag of tags) {
    const [k, v] = split(tag, "=", false, 1);
    if (v === undefined) throw new IngestFormatError(line, unescape(k!), "the tag has no value", "write tags as key=value");
    if (unescape(k!) !== spec.symbolColumn) throw new IngestFormatError(line, unescape(k!), "the table has no such tag", `the one tag is the symbol: ${spec.name},${spec.symbolColumn}=AAPL`);
    sym = unescape(v);
  }
  if (sym === undefined) throw new IngestFormatError(line, spec.symbolColumn, "the symbol tag is missing", `write ${spec.name},${spec.symbolColumn}=AAPL ...`);
  const cells: (Cell | undefined)[] = new Array(spec.columns.length);
  for (const f of split(fieldText, ",", true)) {
    const [k, v] = split(f, "=", true, 1);
    const key = unescape(k!);
    if (v === undefined || v === "") throw new IngestFormatError(line, key, "the field has no value", "write fields as key=value");
    const j = into.byName.get(key);
    if (j === undefined) throw new IngestFormatError(line, key, "the table has no such column", `its value columns are ${spec.columns.map((c) => c.name).join(", ")}`);
    cells[j] = fieldValue(v, line, key);
  }
  const us = tsText === undefined ? nowMicros : integerTimeToMicros(tsText, precision, line, spec.timeColumn);
  into.add(line, sym, us, cells);
}
