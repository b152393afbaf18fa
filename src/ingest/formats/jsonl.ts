// JSON lines: one object per line, keys = the table's symbol, time and value
// columns. Times are integer microseconds (or ?precision=) or ISO strings.
import type { Cell, Precision, RowCollector } from "./rows.js";
import { IngestFormatError, integerTimeToMicros, isoTimeToMicros } from "./rows.js";

export function readJsonLines(text: string, into: RowCollector, precision: Precision): void {
  const { spec } = into;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === "") continue;
    const line = i + 1;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw new IngestFormatError(line, undefined, `not valid JSON (${(e as Error).message})`, "send one JSON object per line");
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new IngestFormatError(line, undefined, "not a JSON object", `send {"${spec.symbolColumn}": "AAPL", "${spec.timeColumn}": "2024-01-02T14:30:00Z", ...} per line`);
    const o = obj as Record<string, unknown>;
    const cells: (Cell | undefined)[] = new Array(spec.columns.length);
    for (const [k, v] of Object.entries(o)) {
      if (k === spec.symbolColumn || k === spec.timeColumn) continue;
      const j = into.byName.get(k);
      if (j === undefined) throw new IngestFormatError(line, k, "the table has no such column", `its columns are ${[spec.symbolColumn, spec.timeColumn, ...spec.columns.map((c) => c.name)].join(", ")}`);
      if (typeof v !== "number" && typeof v !== "boolean") throw new IngestFormatError(line, k, `${JSON.stringify(v)?.slice(0, 40)} is not a number or bool`, "send JSON numbers (and true/false for bool columns)");
      cells[j] = v;
    }
    const sym = o[spec.symbolColumn];
    if (typeof sym !== "string") throw new IngestFormatError(line, spec.symbolColumn, sym === undefined ? "the symbol is missing" : "the symbol is not a string", "give every row its symbol as a JSON string");
    const ts = o[spec.timeColumn];
    let us: number;
    if (typeof ts === "string") us = isoTimeToMicros(ts, line, spec.timeColumn);
    else if (typeof ts === "number" && Number.isSafeInteger(ts)) us = integerTimeToMicros(String(ts), precision, line, spec.timeColumn);
    else throw new IngestFormatError(line, spec.timeColumn, ts === undefined ? "the time is missing" : `${JSON.stringify(ts)} is not a timestamp`, `send integer ${precision} since the epoch or an ISO date-time string`);
    into.add(line, sym, us, cells);
  }
}
