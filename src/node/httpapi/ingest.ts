// POST /v1/ingest/<table>: a body of JSON lines, CSV, InfluxDB line protocol
// or Arrow IPC (by Content-Type, or ?format=) becomes one batch through the
// gateway: the same checks, WAL append and ack as gRPC, Flight and NATS ingest
// (a body over the table's maxBatchRows as several batches, in order).
// 200 answers the ack (rows, LSNs) once the WAL stored the batch. Refusals name
// the line and column; a busy node answers 429 with Retry-After, never drops.
import type { IncomingMessage } from "node:http";
import { gunzipSync } from "node:zlib";
import { ApiError, ingestBatch, producerOf, resolveLimits, scopedTable, tableSpec } from "../../api/index.js";
import type { ApiLimits, ApiNode } from "../../api/index.js";
import { encodeTickIpcByBucketOrdered } from "../../codec/ipcwrite.js";
import { BytePool } from "../../codec/pool.js";
import { selectRows } from "../../codec/tickbatch.js";
import type { IngestAck } from "../../../protocols/ingest.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { parsePrecision, readTextBody, RowCollector, TEXT_FORMATS } from "../../ingest/formats/index.js";
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
  // curl --data-binary's default type: line protocol, as InfluxDB's /write reads it.
  "application/x-www-form-urlencoded": "lp",
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

/** The body after its Content-Encoding (gzip, for bursty clients on thin links), capped like a plain one. */
function decoded(body: Buffer, req: IncomingMessage, maxBytes: number): Buffer {
  const enc = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
  if (enc === "identity") return body;
  if (enc !== "gzip") throw new HttpRefusal(415, `Content-Encoding ${enc} is not supported; send gzip or an uncompressed body`);
  try {
    return gunzipSync(body, { maxOutputLength: maxBytes });
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw new HttpRefusal(413, `the gzip body inflates to over ${maxBytes} bytes; split it into smaller requests`);
    throw new ApiError("INVALID_ARGUMENT", `the body is not valid gzip (${(e as Error).message}); compress it with gzip or drop Content-Encoding`);
  }
}

/** One ack for a body stored as several batches: its rows, LSN range and every WAL append. */
function mergeAcks(acks: readonly IngestAck[]): IngestAck {
  const first = acks[0]!;
  return { ...first, rows: acks.reduce((n, a) => n + a.rows, 0), firstLsn: Math.min(...acks.map((a) => a.firstLsn)), lastLsn: Math.max(...acks.map((a) => a.lastLsn)), appends: acks.flatMap((a) => a.appends) };
}

/**
 * Gateway refusals name rows of the stream it was sent (rows grouped by
 * bucket); the answer names the body's row instead (`order[r]`: the body row of
 * stream row r, counted from `first`) and adds its line.
 */
function withLines(message: string, lines: readonly number[], order?: Uint32Array, first = 0): string {
  return message.replace(/\brow (\d+)\b/, (m, r: string) => {
    const row = order === undefined ? Number(r) : order[Number(r)];
    const line = row === undefined ? undefined : lines[first + row];
    return row === undefined || line === undefined ? m : `row ${row} (line ${line})`;
  });
}

/**
 * Collectors of bodies already answered, per table spec, for the next body to
 * fill: a body's typed columns grow to its size once instead of per body.
 */
class Collectors {
  private readonly free = new WeakMap<TableSpec, RowCollector[]>();

  take(spec: TableSpec): RowCollector {
    return this.free.get(spec)?.pop() ?? new RowCollector(spec);
  }

  give(c: RowCollector): void {
    c.reset();
    let list = this.free.get(c.spec);
    if (list === undefined) this.free.set(c.spec, (list = []));
    if (list.length < 8) list.push(c);
  }
}

export function ingestRoute(o: IngestRouteOptions): (url: URL, method: string, req: IncomingMessage) => Promise<HttpReply> {
  const limits = resolveLimits(o.limits);
  const maxConcurrent = o.maxConcurrent ?? 32;
  const now = o.nowMicros ?? (() => Date.now() * 1000);
  // Bodies and the Arrow streams sent for them reuse buffers of requests already answered (src/codec/pool.ts).
  const pool = new BytePool(maxConcurrent);
  const collectors = new Collectors();
  let running = 0;
  return async (url, method, req) => {
    // Back-pressure before reading anything: a bursty client is told to come back, nothing it sent is half-taken.
    if (running >= maxConcurrent) {
      req.resume();
      return json(429, { error: `this node is storing ${running} HTTP ingest bodies (limit ${maxConcurrent}); retry after ${RETRY_AFTER_S} s`, code: "RESOURCE_EXHAUSTED" }, { "retry-after": String(RETRY_AFTER_S) });
    }
    running++;
    // The rows read so far (their body lines are built only when a refusal names one), and the stream order of the batch sent.
    let read: { readonly lines: number[] } | undefined;
    let sentOrder: Uint32Array | undefined;
    // Pooled buffers and the collector this request holds: given back once it is answered (nothing reads them then).
    let raw: Buffer | undefined;
    let collector: RowCollector | undefined;
    try {
      if (method !== "POST") throw new HttpRefusal(405, "use POST with the rows in the body");
      const p = await o.tokens.principal(req.headers.authorization, "ingest");
      const name = decodeURIComponent(url.pathname.slice("/v1/ingest/".length));
      const table = scopedTable(p, [name]);
      const spec = tableSpec(o.node.catalog(), p, table);
      const format = formatOf(url, req);
      raw = await readBody(req, o.maxBodyBytes ?? limits.maxMessageBytes, `the body for table ${table}`, pool);
      const body = decoded(raw, req, o.maxBodyBytes ?? limits.maxMessageBytes);
      const producerId = String(req.headers["px-producer-id"] ?? "");
      const firstSeq = BigInt(String(req.headers["px-producer-seq"] ?? "0"));
      const send = (payload: Uint8Array, part: number) => ingestBatch(o.node, limits, { principal: p, table, payload, producer: producerOf(producerId, firstSeq + BigInt(part)), checked: undefined });
      if (format === "arrow") return json(200, await send(body, 0));
      const precisionText = url.searchParams.get("precision");
      const precision = precisionText === null ? undefined : parsePrecision(precisionText, "us");
      collector = collectors.take(spec);
      const rows = readTextBody(format, spec, body, precision, now(), collector);
      if (rows.rows === 0) throw new ApiError("INVALID_ARGUMENT", `the body for table ${table} has no rows; send at least one`);
      read = rows;
      // A body over the table's maxBatchRows goes as several batches, in order (producer seq, seq+1, ...); if
      // one is refused, the answer says which lines are stored so the client resends only the rest.
      const all = rows.batch();
      const acks: IngestAck[] = [];
      for (let start = 0, part = 0; start < all.rows; start += spec.maxBatchRows, part++) {
        const end = Math.min(all.rows, start + spec.maxBatchRows);
        const batch = start === 0 && end === all.rows ? all : selectRows(all, Array.from({ length: end - start }, (_, k) => start + k));
        // Rows grouped by bucket, as TickPublisher sends them: the gateway forwards each bucket's bytes to
        // the WAL as they are (src/ingest/fastpath.ts). Its messages then name rows in that order.
        const { bytes, order } = encodeTickIpcByBucketOrdered(spec, batch, spec.shards, (n) => pool.acquire(n));
        sentOrder = order;
        try {
          acks.push(await send(bytes, part).finally(() => pool.release(bytes.buffer)));
        } catch (e) {
          if (acks.length === 0) throw e;
          const reply = errorReply(e, o.log);
          const err = JSON.parse(String(reply.body)) as Record<string, unknown>;
          const lines = rows.lines;
          return { ...reply, body: JSON.stringify({ ...err, error: withLines(String(err.error), lines, order, start), storedRows: start, storedThroughLine: lines[start - 1], resendFromLine: lines[start], acks }) };
        }
      }
      return json(200, acks.length === 1 ? acks[0] : mergeAcks(acks));
    } catch (e) {
      const reply = errorReply(e, o.log);
      if (read === undefined || reply.status !== 400) return reply;
      const body = JSON.parse(String(reply.body)) as { error: string };
      return { ...reply, body: JSON.stringify({ ...body, error: withLines(body.error, read.lines, sentOrder) }) };
    } finally {
      running--;
      if (raw !== undefined) pool.release(raw.buffer);
      if (collector !== undefined) collectors.give(collector);
    }
  };
}
