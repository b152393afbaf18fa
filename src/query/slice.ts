// Rows [from, to) of an operator result as a table of its own, and what such
// a table costs on the wire: a feed cuts one WAL record's output into several
// messages when it is larger than a message may be (src/feed/parts.ts).
import type { OutColumn, OutTable } from "./output.js";

/**
 * Rows [from, to) of `t`. The symbol dictionary keeps only the symbols those
 * rows use (a last-by's dictionary lists every row's symbol: a part holding
 * the whole dictionary would not be smaller than the table).
 */
export function sliceTable(t: OutTable, from: number, to: number): OutTable {
  if (from === 0 && to === t.rows) return t;
  const remap = new Int32Array(t.symbols.length).fill(-1);
  const symbols: string[] = [];
  const columns = t.columns.map((c): OutColumn => {
    const data = c.data.subarray(from, to);
    const valid = c.valid?.subarray(from, to);
    if (c.field.kind !== "sym") return valid === undefined ? { field: c.field, data } : { field: c.field, data, valid };
    const idx = new Int32Array(to - from);
    for (let i = 0; i < idx.length; i++) {
      const s = data[i]!;
      let k = remap[s]!;
      if (k < 0) {
        k = remap[s] = symbols.length;
        symbols.push(t.symbols[s]!);
      }
      idx[i] = k;
    }
    return valid === undefined ? { field: c.field, data: idx } : { field: c.field, data: idx, valid };
  });
  return { rows: to - from, symbols, columns };
}

/** Arrow IPC framing per message and per column (schema, headers, padding): a generous allowance. */
const FRAME_BYTES = 512;
const COLUMN_BYTES = 64;

/**
 * About how many bytes `t` takes as an Arrow IPC stream (64-bit values, 32-bit
 * dictionary indices, validity bitmaps, the dictionary's text): to pick where
 * to cut, not to check a hard limit.
 */
export function tableBytes(t: OutTable): number {
  let n = FRAME_BYTES;
  for (const c of t.columns) n += COLUMN_BYTES + t.rows * (c.field.kind === "sym" ? 4 : 8) + (c.valid === undefined ? 0 : Math.ceil(t.rows / 8));
  for (const s of t.symbols) n += 4 + s.length * 3;
  return n;
}
