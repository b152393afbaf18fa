// CSV (RFC 4180): a header line naming the columns, then one row per line;
// quoted fields may hold commas, quotes ("") and newlines. Times are integer
// microseconds (or ?precision=) or ISO date-times.
import type { Cell, Precision, RowCollector } from "./rows.js";
import { IngestFormatError, integerTimeToMicros, isoTimeToMicros } from "./rows.js";

/** Records of the text, each with the line it starts on. */
function* records(text: string): Generator<{ line: number; fields: string[] }> {
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let field = "";
    for (;;) {
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= n) throw new IngestFormatError(start, undefined, "a quoted field is not closed", 'close it with "');
          const ch = text[i]!;
          if (ch === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (ch === "\n") line++;
          field += ch;
          i++;
        }
      }
      while (i < n && text[i] !== "," && text[i] !== "\n") field += text[i++];
      fields.push(field.replace(/\r$/, ""));
      field = "";
      if (i >= n || text[i] === "\n") {
        i++;
        line++;
        break;
      }
      i++; // the comma
    }
    if (fields.length === 1 && fields[0]!.trim() === "") continue;
    yield { line: start, fields };
  }
}

function cellOf(text: string, type: string, line: number, col: string): Cell {
  const t = text.trim();
  if (type === "bool") {
    const b = ({ true: true, t: true, "1": true, false: false, f: false, "0": false } as Record<string, boolean>)[t.toLowerCase()];
    if (b === undefined) throw new IngestFormatError(line, col, `"${t.slice(0, 40)}" is not a bool`, "send true or false");
    return b;
  }
  if (t === "" || !/^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|NaN|Infinity|inf)$/i.test(t)) {
    throw new IngestFormatError(line, col, t === "" ? "the value is empty" : `"${t.slice(0, 40)}" is not a number`, `send a ${type} value`);
  }
  return /^[+-]?inf/i.test(t) ? (t.startsWith("-") ? -Infinity : Infinity) : Number(t);
}

export function readCsv(text: string, into: RowCollector, precision: Precision): void {
  const { spec } = into;
  const it = records(text.replace(/^\uFEFF/, ""));
  const head = it.next();
  if (head.done) return;
  const names = head.value.fields.map((f) => f.trim());
  const known = new Set([spec.symbolColumn, spec.timeColumn, ...spec.columns.map((c) => c.name)]);
  names.forEach((name) => {
    if (!known.has(name)) throw new IngestFormatError(head.value.line, name, "the header names a column the table does not have", `its columns are ${[...known].join(", ")}`);
  });
  for (const need of [spec.symbolColumn, spec.timeColumn]) {
    if (!names.includes(need)) throw new IngestFormatError(head.value.line, need, "the header lacks this column", `start the body with a header line such as ${[...known].join(",")}`);
  }
  const symAt = names.indexOf(spec.symbolColumn);
  const tsAt = names.indexOf(spec.timeColumn);
  const colAt = spec.columns.map((c) => names.indexOf(c.name));
  for (const { line, fields } of it) {
    if (fields.length !== names.length) throw new IngestFormatError(line, undefined, `${fields.length} fields, the header has ${names.length}`, "give every row one field per header column");
    const tsText = fields[tsAt]!.trim();
    const us = /^-?\d+$/.test(tsText) ? integerTimeToMicros(tsText, precision, line, spec.timeColumn) : isoTimeToMicros(tsText, line, spec.timeColumn);
    const cells = spec.columns.map((c, j) => (colAt[j]! < 0 ? undefined : cellOf(fields[colAt[j]!]!, c.type, line, c.name)));
    into.add(line, fields[symAt]!.trim(), us, cells);
  }
}
