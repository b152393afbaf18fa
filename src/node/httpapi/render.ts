// Query results as HTTP bodies: JSON ({columns, rows, complete, notes}), CSV
// (a header line, then rows) or an Arrow IPC stream. Time columns (int64
// microseconds marked proxist.unit=us) are integer microseconds in JSON and
// ISO date-times in CSV unless ?ts= asks otherwise; Arrow carries
// timestamp[us, UTC] (the API's presentation).
import { DataType, RecordBatchStreamWriter } from "apache-arrow";
import type { RecordBatch, Schema } from "apache-arrow";
import { schemaToIpc } from "../../api/index.js";

export const FORMATS = ["json", "csv", "arrow"] as const;
export type ResultFormat = (typeof FORMATS)[number];
export type TsStyle = "us" | "iso";

export const CONTENT_TYPES: Record<ResultFormat, string> = {
  json: "application/json",
  csv: "text/csv; charset=utf-8",
  arrow: "application/vnd.apache.arrow.stream",
};

/** 2024-01-02T14:30:00.123456Z from microseconds. */
export function isoOfMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, (_, m: string) => `.${m}${String(us - ms * 1000).padStart(3, "0")}Z`);
}

const isTime = (s: Schema, j: number): boolean => s.fields[j]!.metadata.get("proxist.unit") === "us";

/** Rows of the batches as plain values: 64-bit integers as numbers, times per `ts`, nulls as null. */
export function plainRows(batches: readonly RecordBatch[], ts: TsStyle): unknown[][] {
  const out: unknown[][] = [];
  for (const b of batches) {
    const getters = b.schema.fields.map((_, j) => {
      const v = b.getChildAt(j)!;
      const whole = v.toArray() as ArrayLike<unknown>;
      const wide = whole instanceof BigInt64Array || whole instanceof BigUint64Array;
      const iso = isTime(b.schema, j) && ts === "iso";
      // A column of plain numbers read straight from its array (Vector.get and isValid per cell cost most of a small answer).
      const typed = (DataType.isInt(v.type) || DataType.isFloat(v.type)) && ArrayBuffer.isView(whole) && whole.length === b.numRows && !iso;
      const nulls = v.nullCount > 0;
      if (typed && !nulls) return wide ? (i: number): unknown => Number(whole[i] as bigint) : (i: number): unknown => whole[i];
      return (i: number): unknown => {
        if (nulls && !v.isValid(i)) return null;
        const x = wide ? Number(whole[i] as bigint) : v.get(i);
        return iso && typeof x === "number" ? isoOfMicros(x) : x;
      };
    });
    const n = getters.length;
    for (let i = 0; i < b.numRows; i++) {
      const row = new Array<unknown>(n);
      for (let j = 0; j < n; j++) row[j] = getters[j]!(i);
      out.push(row);
    }
  }
  return out;
}

export interface Meta {
  readonly complete: boolean;
  readonly notes: readonly string[];
}

export function metaOf(batches: readonly RecordBatch[]): Meta {
  const m = batches[0]?.schema.metadata;
  const notes = m?.get("proxist.notes");
  return { complete: (m?.get("proxist.complete") ?? "true") === "true", notes: notes ? notes.split("\n") : [] };
}

export function renderJson(schema: Schema, batches: readonly RecordBatch[], ts: TsStyle): string {
  const columns = schema.fields.map((f, j) => ({ name: f.name, type: isTime(schema, j) ? "timestamp_us" : String(f.type) }));
  return JSON.stringify({ columns, rows: plainRows(batches, ts), ...metaOf(batches) });
}

const csvCell = (v: unknown): string => {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function renderCsv(schema: Schema, batches: readonly RecordBatch[], ts: TsStyle): string {
  const lines = [schema.fields.map((f) => csvCell(f.name)).join(",")];
  for (const r of plainRows(batches, ts)) lines.push(r.map(csvCell).join(","));
  return `${lines.join("\n")}\n`;
}

export function renderArrow(schema: Schema, batches: readonly RecordBatch[]): Uint8Array {
  return batches.length === 0 ? schemaToIpc(schema) : RecordBatchStreamWriter.writeAll(batches).toUint8Array(true);
}
