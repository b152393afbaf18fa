// POST /v1/query: one SQL statement or JSON query in the body (a JSON body
// may also be {"sql": "..."}); the answer as JSON, CSV, Arrow IPC or Parquet
// by Accept (or ?format=). Runs on the node's query engine for the token's
// tenant; the request is cancelled when the client goes away or ?timeoutMs passes.
import type { IncomingMessage } from "node:http";
import type { RecordBatch, Schema } from "apache-arrow";
import { ApiError, checkQueryScope, presentingEngine } from "../../api/index.js";
import type { Scope } from "../../api/index.js";
import type { QueryEngine } from "../../api/index.js";
import { functionKinds } from "../../catalog.js";
import type { Catalog } from "../../catalog.js";
import { compileSql, looksLikeSql } from "../../sql/index.js";
import type { LocalShardHost } from "../shard/host.js";
import type { HttpTokens } from "./auth.js";
import { readBody, mediaType } from "./body.js";
import { explainPlan } from "./explain.js";
import { PARQUET_TYPE, renderParquet } from "./parquet.js";
import { CONTENT_TYPES, FORMATS, metaOf, renderArrow, renderCsv, renderJson } from "./render.js";
import type { Meta, ResultFormat, TsStyle } from "./render.js";
import { columnsFit, metaOfColumns, renderJsonColumns } from "./jsoncols.js";
import { arrowSchema, toRecordBatches } from "../../query/index.js";
import type { QueryColumns } from "../../query/index.js";
import { HttpRefusal, errorReply, json } from "./reply.js";
import type { HttpReply } from "../http.js";

export interface QueryRouteOptions {
  readonly tokens: HttpTokens;
  /** The node's engine (undefined while it starts). */
  readonly engine: () => QueryEngine | undefined;
  readonly catalog: () => Catalog;
  readonly shards: LocalShardHost;
  readonly hasCold: boolean;
  readonly log: (line: string) => void;
  readonly maxBodyBytes?: number;
  readonly defaultTimeoutMs?: number;
}

const ACCEPT: Record<string, ResultFormat> = { "application/json": "json", "text/csv": "csv", "application/vnd.apache.arrow.stream": "arrow", "application/vnd.apache.arrow.file": "arrow", [PARQUET_TYPE]: "parquet", "application/x-parquet": "parquet" };

function formatOf(url: URL, req: IncomingMessage): ResultFormat {
  const asked = url.searchParams.get("format");
  if (asked !== null) {
    if (!(FORMATS as readonly string[]).includes(asked)) throw new HttpRefusal(406, `format=${asked} is not a result format; use json, csv, arrow or parquet`);
    return asked as ResultFormat;
  }
  const accepts = (req.headers.accept ?? "*/*").split(",").map((a) => mediaType(a));
  for (const a of accepts) {
    if (ACCEPT[a] !== undefined) return ACCEPT[a];
    if (a === "*/*" || a === "application/*" || a === "") return "json";
  }
  throw new HttpRefusal(406, `Accept: ${req.headers.accept} names no result format; accept application/json, text/csv, application/vnd.apache.arrow.stream or ${PARQUET_TYPE} (or pass ?format=)`);
}

/** The body as a JSON query object, compiling SQL on the way; `explain` from EXPLAIN. */
function queryOf(text: string, scope: Scope, catalog: Catalog): { query: Record<string, unknown>; explain: boolean } {
  const compiled = queryText(text, scope.tenant, catalog);
  checkQueryScope(scope, compiled.query);
  return compiled;
}

function queryText(text: string, tenant: string, catalog: Catalog): { query: Record<string, unknown>; explain: boolean } {
  const tables = (name: string) => catalog.get(tenant)?.get(name.split(".").pop()!);
  const functions = functionKinds(catalog, tenant);
  if (text.trim() === "") throw new ApiError("INVALID_ARGUMENT", "the body is empty; send SQL (SELECT * FROM trades LATEST ON ts PARTITION BY sym) or a JSON query");
  if (looksLikeSql(text)) return compileSql(text, tables, undefined, functions);
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new ApiError("INVALID_ARGUMENT", `the body starts with "{" but is not valid JSON (${(e as Error).message}); send a JSON query object or SQL text`);
  }
  const o = obj as Record<string, unknown>;
  if (typeof o.sql === "string" && Object.keys(o).length === 1) return compileSql(o.sql, tables, undefined, functions);
  return { query: o, explain: false };
}

const metaHeaders = (meta: Meta): Record<string, string> => ({ "proxist-complete": String(meta.complete), ...(meta.notes.length ? { "proxist-notes": encodeURIComponent(meta.notes.join("; ")) } : {}) });

export function queryRoute(o: QueryRouteOptions): (url: URL, method: string, req: IncomingMessage) => Promise<HttpReply> {
  return async (url, method, req) => {
    try {
      if (method !== "POST") throw new HttpRefusal(405, "use POST with the query in the body");
      const p = await o.tokens.principal(req.headers.authorization, "query");
      const format = formatOf(url, req);
      const text = (await readBody(req, o.maxBodyBytes ?? 1 << 20, "the query")).toString("utf8");
      const { query, explain } = queryOf(text, p, o.catalog());
      if (explain && format === "parquet") throw new HttpRefusal(406, "EXPLAIN answers a plan, not a table, so it has no Parquet form; ask for it with Accept: application/json");
      if (explain) return json(200, { explain: explainPlan(p.tenant, query, o.catalog(), o.shards, o.hasCold) });
      const raw = o.engine();
      if (raw === undefined) throw new ApiError("UNAVAILABLE", "the query engine is starting; retry in a moment");
      // Arrow and Parquet carry time columns as timestamp[us, UTC] (the API's presentation).
      const engine = format === "arrow" || format === "parquet" ? presentingEngine(raw) : raw;
      const tsParam = url.searchParams.get("ts");
      if (tsParam !== null && tsParam !== "us" && tsParam !== "iso") throw new HttpRefusal(400, `ts=${tsParam}: use ts=us (integer microseconds) or ts=iso (ISO date-times)`);
      const ts: TsStyle = (tsParam as TsStyle | null) ?? (format === "csv" ? "iso" : "us");
      const timeoutMs = Number(url.searchParams.get("timeoutMs") ?? o.defaultTimeoutMs ?? 60_000);
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(new ApiError("DEADLINE_EXCEEDED", `the query ran over ${timeoutMs} ms (?timeoutMs=); narrow the time range or the symbols`)), timeoutMs);
      const gone = (): void => abort.abort(new ApiError("CANCELLED", "the client went away"));
      req.socket.once("close", gone);
      if (format === "json" && engine.runColumns !== undefined) {
        // JSON straight from the engine's typed columns: no record batches built only to be read back row by row.
        let answer: QueryColumns;
        try {
          answer = await engine.runColumns(p.tenant, query, abort.signal, `http:${p.tenant}`);
        } finally {
          clearTimeout(timer);
          req.socket.off("close", gone);
        }
        const meta = metaOfColumns(answer);
        const headers = metaHeaders(meta);
        if (columnsFit(answer)) return { status: 200, type: CONTENT_TYPES.json, body: renderJsonColumns(answer, ts), headers };
        const schema = arrowSchema(answer.fields);
        const withMeta = arrowSchema(answer.fields, new Map([["proxist.complete", String(meta.complete)], ...(answer.notes.length > 0 ? [["proxist.notes", answer.notes.join("\n")] as [string, string]] : [])]));
        return { status: 200, type: CONTENT_TYPES.json, body: renderJson(schema, answer.tables.flatMap((t) => toRecordBatches(t, withMeta)), ts), headers };
      }
      const batches: RecordBatch[] = [];
      let schema: Schema;
      try {
        schema = await engine.schema(p.tenant, query);
        for await (const b of engine.run(p.tenant, query, abort.signal, `http:${p.tenant}`)) batches.push(b);
      } finally {
        clearTimeout(timer);
        req.socket.off("close", gone);
      }
      const headers = metaHeaders(metaOf(batches));
      const body =
        format === "json" ? renderJson(schema, batches, ts) : format === "csv" ? renderCsv(schema, batches, ts) : format === "parquet" ? renderParquet(schema, batches) : renderArrow(schema, batches);
      return { status: 200, type: CONTENT_TYPES[format], body, headers };
    } catch (e) {
      return errorReply(e, o.log);
    }
  };
}
