// POST /v1/ingest/<table>: a body of JSON lines, CSV, InfluxDB line protocol
// or Arrow IPC (by Content-Type, or ?format=) becomes one batch through the
// gateway: the same checks, WAL append and ack as gRPC, Flight and NATS ingest.
// 200 answers the ack (rows, LSNs) once the WAL stored the batch. Refusals name
// the line and column; a busy node answers 429 with Retry-After, never drops.
import type { IncomingMessage } from "node:http";
import { ApiError, ingestBatch, producerOf, resolveLimits, scopedTable, tableSpec } from "../../api/index.js";
import type { ApiLimits, ApiNode } from "../../api/index.js";
import { tickBatchToIpc } from "../../codec/arrow.js";
import { parsePrecision, readTextBody, TEXT_FORMATS } from "../../ingest/formats/index.js";
import type { TextFormat } from "../../ingest/formats/index.js";
import type { HttpReply } from "../http.js";
import type { HttpTokens } from "./auth.js";
import { mediaType, readBody } from "./body.js";
import { HttpRefusal, RETRY_AFTER_S, errorReply, json } from "./reply.js";

export interface IngestRouteOptions {
  readonly tokens: HttpTokens;
  readonly node: ApiNode;
  readonly log: (line: string) => void;
  readonly limits?: Partial<ApiLimits>;
  /** Bodies being parsed or stored at once; more get 429 (default 32). */
  readonly maxConcurrent?: number;
  /** Largest body (default: the API's maxMessageBytes). */
  readonly maxBodyBytes?: number;
  /** The node's clock in microseconds (line protocol lines without a timestamp). */
  readonly nowMicros?: () => number;
}

type Format = TextFormat | "arrow";
const FORMATS: readonly Format[] = [...TEXT_FORMATS, "arrow"];
const BY_TYPE: Record<string, Format> = {
  "application/x-ndjson": "jsonl",
  "application/jsonl": "jsonl",
  "application/json": "jsonl",
  "text/csv": "csv",
  "text/plain": "lp",
  "application/vnd.apache.arrow.stream": "arrow",
};

function formatOf(url: URL, req: IncomingMessage): Format {
  const asked = url.searchParams.get("format");
  if (asked !== null) {
    if (!(FORMATS as readonly string[]).includes(asked)) throw new HttpRefusal(415, `format=${asked} is not an ingest format; use jsonl, csv, lp (line protocol) or arrow`);
    return asked as Format;
  }
  const type = mediaType(req.headers["content-type"]);
  if (type === "" || type === "application/octet-stream") return "lp";
  const f = BY_TYPE[type];
  if (f === undefined) throw new HttpRefusal(415, `Content-Type ${type} is not an ingest format; send application/x-ndjson, text/csv, text/plain (line protocol) or application/vnd.apache.arrow.stream, or pass ?format=`);
  return f;
}

/** Gateway refusals name rows of the batch; the answer adds the body line of that row. */
const withLines = (message: string, lines: readonly number[] | undefined): string =>
  lines === undefined ? message : message.replace(/\brow (\d+)\b/, (m, r: string) => (lines[Number(r)] === undefined ? m : `${m} (line ${lines[Number(r)]})`));

export function ingestRoute(o: IngestRouteOptions): (url: URL, method: string, req: IncomingMessage) => Promise<HttpReply> {
  const limits = resolveLimits(o.limits);
  const maxConcurrent = o.maxConcurrent ?? 32;
  const now = o.nowMicros ?? (() => Date.now() * 1000);
  let running = 0;
  return async (url, method, req) => {
    // Back-pressure before reading anything: a bursty client is told to come back, nothing it sent is half-taken.
    if (running >= maxConcurrent) {
      req.resume();
      return json(429, { error: `this node is storing ${running} HTTP ingest bodies (limit ${maxConcurrent}); retry after ${RETRY_AFTER_S} s`, code: "RESOURCE_EXHAUSTED" }, { "retry-after": String(RETRY_AFTER_S) });
    }
    running++;
    let lines: readonly number[] | undefined;
    try {
      if (method !== "POST") throw new HttpRefusal(405, "use POST with the rows in the body");
      const p = await o.tokens.principal(req.headers.authorization, "ingest");
      const name = decodeURIComponent(url.pathname.slice("/v1/ingest/".length));
      const table = scopedTable(p, [name]);
      const spec = tableSpec(o.node.catalog(), p, table);
      const format = formatOf(url, req);
      const body = await readBody(req, o.maxBodyBytes ?? limits.maxMessageBytes, `the body for table ${table}`);
      let payload: Uint8Array;
      if (format === "arrow") payload = body;
      else {
        const precisionText = url.searchParams.get("precision");
        const rows = readTextBody(format, spec, body.toString("utf8"), precisionText === null ? undefined : parsePrecision(precisionText, "us"), now());
        if (rows.rows === 0) throw new ApiError("INVALID_ARGUMENT", `the body for table ${table} has no rows; send at least one`);
        if (rows.rows > spec.maxBatchRows) throw new HttpRefusal(413, `the body has ${rows.rows} rows; table ${table} takes at most ${spec.maxBatchRows} per batch (maxBatchRows): split it into several requests`);
        lines = rows.lines;
        payload = tickBatchToIpc(spec, rows.batch());
      }
      const producer = producerOf(String(req.headers["px-producer-id"] ?? ""), BigInt(String(req.headers["px-producer-seq"] ?? "0")));
      const ack = await ingestBatch(o.node, limits, { principal: p, table, payload, producer, checked: undefined });
      return json(200, ack);
    } catch (e) {
      const reply = errorReply(e, o.log);
      if (lines === undefined || reply.status !== 400) return reply;
      const body = JSON.parse(String(reply.body)) as { error: string };
      return { ...reply, body: JSON.stringify({ ...body, error: withLines(body.error, lines) }) };
    } finally {
      running--;
    }
  };
}
