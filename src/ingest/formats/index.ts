// Text ingest formats (HTTP /v1/ingest): JSON lines, CSV and InfluxDB line
// protocol read into one TickBatch per body. Pure; the HTTP route sends the
// batch through the gateway like any other.
import { isAscii } from "node:buffer";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { readCsv } from "./csv.js";
import { readJsonLines } from "./jsonl.js";
import { readLineProtocol } from "./lineproto.js";
import { RowCollector } from "./rows.js";
import type { Precision } from "./rows.js";

export { IngestFormatError, RowCollector, parsePrecision } from "./rows.js";
export type { Precision } from "./rows.js";

export const TEXT_FORMATS = ["jsonl", "csv", "lp"] as const;
export type TextFormat = (typeof TEXT_FORMATS)[number];

/**
 * Rows of `text` for `spec`; throws IngestFormatError naming the line and column. `precision`: units of integer times (default: ns for line protocol, us otherwise).
 * `into`: an empty collector for `spec` to fill (one kept from an earlier body: its storage is reused).
 */
export function readTextBody(format: TextFormat, spec: TableSpec, body: string | Uint8Array, precision: Precision | undefined, nowMicros: number, into?: RowCollector): RowCollector {
  const rows = into ?? new RowCollector(spec);
  // Line protocol reads the bytes themselves; the other formats read text (an ASCII body as latin1: no UTF-8 decoding).
  const text = (): string => (typeof body === "string" ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString(isAscii(body) ? "latin1" : "utf8"));
  if (format === "jsonl") readJsonLines(text(), rows, precision ?? "us");
  else if (format === "csv") readCsv(text(), rows, precision ?? "us");
  else readLineProtocol(typeof body === "string" ? Buffer.from(body, "utf8") : body, rows, precision ?? "ns", nowMicros);
  return rows;
}
