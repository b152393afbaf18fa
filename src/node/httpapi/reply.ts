// Errors of the HTTP API as replies: every layer's error is classified once
// (src/api classify, the gRPC API's mapping) and its code becomes the HTTP
// status; retryable refusals carry Retry-After so clients back off, never drop.
import { ApiError, classify } from "../../api/index.js";
import type { ApiCode } from "../../api/index.js";
import { IngestFormatError } from "../../ingest/formats/index.js";
import type { HttpReply } from "../http.js";

const STATUS: Record<ApiCode, number> = {
  CANCELLED: 499,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 409,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  UNAUTHENTICATED: 401,
};

/** Seconds a client should wait before retrying a 429 or 503. */
export const RETRY_AFTER_S = 1;

/** An HTTP-only refusal (413, 405, 406, 415) with its own status. */
export class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const json = (status: number, body: unknown, headers?: Record<string, string>): HttpReply => ({ status, body: JSON.stringify(body), ...(headers === undefined ? {} : { headers }) });

export function errorReply(e: unknown, log: (line: string) => void): HttpReply {
  if (e instanceof HttpRefusal) return json(e.status, { error: e.message, code: e.status });
  if (e instanceof IngestFormatError) return json(400, { error: e.message, code: "INVALID_ARGUMENT", line: e.line, column: e.column ?? null });
  const a = e instanceof ApiError ? e : classify(e, log);
  const status = STATUS[a.code];
  const retry = status === 429 || status === 503 ? { "retry-after": String(RETRY_AFTER_S) } : undefined;
  return json(status, { error: a.message, code: a.code }, retry);
}
