// Typed ClickHouse errors, classified once where a raw transport or server
// error enters Proxist (the HTTP client in http.ts). Callers decide on retries
// from the class alone: unavailable means "try again later, then ask which LSNs
// landed"; a query error carries the server's code and whether it is transient.
import { TaggedError } from "../../protocols/tagged.js";

/** The server could not be reached, or the connection broke before a full answer. */
export class ClickhouseUnavailableError extends TaggedError("ClickhouseUnavailableError") {
  readonly url: string;
  /**
   * False only when the request certainly never reached the server (connection
   * refused, unknown host). An INSERT that failed with `mayHaveLanded` true may
   * be fully or partly committed: ask `landedLsns` before retrying it.
   */
  readonly mayHaveLanded: boolean;
  /** The transport's code (ECONNREFUSED, ECONNRESET, TIMEOUT, ...). */
  readonly code: string;
  /**
   * `query_id` of the failed request. An INSERT whose client gave up can still
   * commit on the server: wait until this id has left system.processes
   * (`waitQueryGone`) before asking which LSNs landed.
   */
  queryId: string | undefined;
  constructor(url: string, code: string, detail: string, mayHaveLanded: boolean, options?: { cause?: unknown; queryId?: string }) {
    super(`ClickHouse at ${url} is unavailable (${code}: ${detail}); check that clickhouse-server runs and is reachable, then retry`, options);
    this.url = url;
    this.code = code;
    this.mayHaveLanded = mayHaveLanded;
    this.queryId = options?.queryId;
  }
}

/**
 * Server error codes that describe a transient condition: the same statement
 * may succeed later (overload, timeouts, too many parts, network between servers).
 */
const TRANSIENT_CODES = new Set<number>([
  159, // TIMEOUT_EXCEEDED
  164, // READONLY (e.g. replica lost ZooKeeper session)
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  203, // NO_FREE_CONNECTION
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  285, // TOO_FEW_LIVE_REPLICAS
  319, // UNKNOWN_STATUS_OF_INSERT
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION
]);

/** The server answered with an exception. */
export class ClickhouseQueryError extends TaggedError("ClickhouseQueryError") {
  /** ClickHouse error code (e.g. 81 UNKNOWN_DATABASE, 60 UNKNOWN_TABLE); 0 when the body had none. */
  readonly code: number;
  /** The server's message without the `Code: N` prefix. */
  readonly serverMessage: string;
  readonly httpStatus: number;
  /** The statement, cut to 300 characters. */
  readonly sql: string;
  /** `query_id` of the failed request, when known. */
  queryId: string | undefined;
  constructor(code: number, serverMessage: string, httpStatus: number, sql: string) {
    const shortSql = sql.length > 300 ? `${sql.slice(0, 300)}...` : sql;
    super(`ClickHouse rejected \`${shortSql.split("\n")[0]}\` with code ${code}: ${serverMessage}`);
    this.code = code;
    this.serverMessage = serverMessage;
    this.httpStatus = httpStatus;
    this.sql = shortSql;
  }
  /** True when retrying the same statement later may succeed. */
  get retryable(): boolean {
    return TRANSIENT_CODES.has(this.code) || this.httpStatus === 502 || this.httpStatus === 503 || this.httpStatus === 504;
  }
}

/** A response that does not have the shape the request asked for (e.g. undecodable RowBinary). */
export class ClickhouseProtocolError extends TaggedError("ClickhouseProtocolError") {}

/**
 * Parses a ClickHouse exception text. 18.16 writes
 * `Code: 81, e.displayText() = DB::Exception: Database x doesn't exist, e.what() = DB::Exception`;
 * current releases write `Code: 81. DB::Exception: Database x does not exist. (UNKNOWN_DATABASE) (version 24.3.1.1)`.
 */
export function parseServerException(text: string): { code: number; message: string } {
  const trimmed = text.trim();
  const m = /Code:\s*(\d+)\s*[,.]\s*(?:e\.displayText\(\)\s*=\s*)?(?:DB::Exception:\s*)?([\s\S]*)$/.exec(trimmed);
  if (m === null) return { code: 0, message: trimmed.slice(0, 2_000) };
  const message = m[2]!
    .replace(/,\s*e\.what\(\)\s*=\s*DB::Exception\s*$/, "")
    .replace(/\s*\(version \d[\s\S]*$/, "")
    .trim();
  return { code: Number(m[1]), message: message.slice(0, 2_000) };
}

/** Transport error codes for which the request never left this process. */
const NEVER_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "EADDRNOTAVAIL"]);

/** True for a raw Node.js socket/DNS error (as opposed to a programming error). */
function transportCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return code;
  if (err instanceof Error && err.message === "socket hang up") return "ECONNRESET";
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return "TIMEOUT";
  return undefined;
}

/**
 * Classifies an error thrown by a ClickHouse request: already typed errors pass
 * through; socket errors become `ClickhouseUnavailableError`; errors of
 * carrying a server exception text in their message become
 * `ClickhouseQueryError` with the code read from the message. Anything else is
 * returned unchanged.
 */
export function classifyClickhouseError(err: unknown, url: string, sql = ""): unknown {
  if (err instanceof ClickhouseUnavailableError || err instanceof ClickhouseQueryError || err instanceof ClickhouseProtocolError) return err;
  const code = transportCode(err);
  if (code !== undefined) {
    const detail = err instanceof Error ? err.message : String(err);
    return new ClickhouseUnavailableError(url, code, detail, !NEVER_SENT.has(code), { cause: err });
  }
  if (err instanceof Error && /Code:\s*\d+/.test(err.message)) {
    const parsed = parseServerException(err.message);
    return new ClickhouseQueryError(parsed.code, parsed.message, 0, sql);
  }
  return err;
}
