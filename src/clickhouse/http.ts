// A small client for ClickHouse's HTTP interface: statements in, text or raw
// bytes out, and INSERTs whose body is already encoded (RowBinary). It speaks
// to 18.16 and to current releases alike, and turns every failure into a typed
// error (errors.ts). One instance per server; `close()` ends its sockets.
//
// Why not @clickhouse/client (tried against 18.16.1, the Debian package): its
// ping, queries and DDL work, but its error parser expects the "(TYPE_NAME)"
// marker that 18.16's exception text lacks, so the server's error code (which
// decides retry or refusal here) is lost; its typed `query_params` are refused
// by 18.16 (code 115, unknown setting param_x); and a RowBinary insert from a
// Buffer needs `exec` with a stream. Each call is one POST here, so it is not a
// dependency.
import { Agent, request } from "node:http";
import type { IncomingMessage } from "node:http";
import { randomUUID } from "node:crypto";
import { ClickhouseQueryError, ClickhouseUnavailableError, classifyClickhouseError, parseServerException } from "./errors.js";

export type ClickhouseSettings = Readonly<Record<string, string | number | boolean>>;

export interface ClickhouseHttpOptions {
  /** e.g. `http://127.0.0.1:8123`. */
  readonly url: string;
  readonly user?: string;
  readonly password?: string;
  /** Database for unqualified names (Proxist always qualifies). */
  readonly database?: string;
  /** Whole-request timeout, from sending to the last response byte (default 60 s). */
  readonly requestTimeoutMs?: number;
  /** Settings sent with every request as URL parameters. */
  readonly settings?: ClickhouseSettings;
  /**
   * Idle keep-alive sockets are closed after this long (default 2.5 s), below
   * the server's keep_alive_timeout (3 s in 18.16's stock config, 10 s in ours),
   * so a request never goes out on a socket the server just closed.
   */
  readonly idleSocketTtlMs?: number;
}

export interface RequestOptions {
  readonly settings?: ClickhouseSettings;
  /** Sent as `query_id`; a fresh UUID when omitted. */
  readonly queryId?: string;
  /**
   * Aborting rejects with the signal's reason as is. An INSERT aborted after
   * it started is as uncertain as an unavailable one: it may still commit.
   */
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

/** Data sent with a statement as a temporary table the statement can read (ClickHouse's "external data"). */
export interface ExternalTable {
  /** The name the statement reads it by. */
  readonly name: string;
  /** Its columns, e.g. `a UInt32, b String`. */
  readonly structure: string;
  /** The data's format, e.g. `RowBinary`. */
  readonly format: string;
  readonly data: Uint8Array;
}

/** A request body: the statement's data (INSERT) or its external table, with what the URL must say about it. */
interface Payload {
  readonly chunks: readonly Uint8Array[];
  readonly contentType: string;
  readonly params?: Readonly<Record<string, string>>;
}

export interface ClickhouseResponse {
  readonly queryId: string;
  readonly body: Buffer;
}

/**
 * `GET /ping` answers `Ok.` (true) or not (false: refused, timed out, another
 * answer); never throws. Without an `agent` it goes on a fresh connection that
 * is closed afterwards: a kept-alive probe socket would make a server that is
 * being stopped wait for it.
 */
export function pingClickhouse(url: string, opts: { readonly timeoutMs?: number; readonly agent?: Agent } = {}): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(new URL("/ping", url), { method: "GET", agent: opts.agent ?? false, timeout: opts.timeoutMs ?? 1_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve(res.statusCode === 200 && body.trim() === "Ok."));
      res.on("error", () => resolve(false));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

export class ClickhouseHttp {
  readonly url: string;
  private readonly agent: Agent;
  private readonly base: URL;
  private readonly authHeader: string | undefined;
  private readonly options: ClickhouseHttpOptions;

  constructor(options: ClickhouseHttpOptions) {
    this.options = options;
    this.base = new URL(options.url);
    if (this.base.protocol !== "http:") {
      throw new Error(`ClickHouse url ${options.url}: only http:// is supported; use the HTTP port (8123 by default)`);
    }
    this.url = this.base.origin;
    this.agent = new Agent({ keepAlive: true, maxSockets: 32, timeout: options.idleSocketTtlMs ?? 2_500 });
    this.authHeader =
      options.user === undefined ? undefined : `Basic ${Buffer.from(`${options.user}:${options.password ?? ""}`).toString("base64")}`;
  }

  /** Runs a statement and returns the response body as text (e.g. `FORMAT TabSeparated`). */
  async query(sql: string, opts: RequestOptions = {}): Promise<string> {
    return (await this.send(sql, undefined, opts)).body.toString("utf8");
  }

  /** Runs a statement and returns the raw response bytes (e.g. `FORMAT RowBinary`). */
  async queryBytes(sql: string, opts: RequestOptions = {}): Promise<Buffer> {
    return (await this.send(sql, undefined, opts)).body;
  }

  /** Runs a statement whose result is not needed (DDL). */
  async command(sql: string, opts: RequestOptions = {}): Promise<void> {
    await this.send(sql, undefined, opts);
  }

  /**
   * `sql` is an `INSERT ... FORMAT X` statement, `body` the data in format X;
   * the statement goes in the URL, the data is the POST body.
   */
  async insert(sql: string, body: Uint8Array, opts: RequestOptions = {}): Promise<ClickhouseResponse> {
    return this.send(sql, { chunks: [body], contentType: "application/octet-stream" }, opts);
  }

  /**
   * Runs `sql` (e.g. `INSERT ... SELECT ... FROM <name>`) with `table` sent
   * along as an external table: one multipart POST whose body is the data.
   * The server reads the whole body before the statement starts, so a request
   * cut short runs nothing.
   */
  async insertFrom(sql: string, table: ExternalTable, opts: RequestOptions = {}): Promise<ClickhouseResponse> {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table.name)) throw new RangeError(`external table name "${table.name}" must be letters, digits or _`);
    const boundary = `pxboundary${randomUUID().replaceAll("-", "")}`;
    // A part without a filename would be read as a setting, not as a table.
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${table.name}"; filename="${table.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      "latin1",
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`, "latin1");
    return this.send(
      sql,
      {
        chunks: [head, table.data, tail],
        contentType: `multipart/form-data; boundary=${boundary}`,
        params: { [`${table.name}_structure`]: table.structure, [`${table.name}_format`]: table.format },
      },
      opts,
    );
  }

  /** True when `GET /ping` answers `Ok.` (over this client's kept-alive sockets). Never throws. */
  ping(timeoutMs = 2_000): Promise<boolean> {
    return pingClickhouse(this.url, { timeoutMs, agent: this.agent });
  }

  /** Closes idle sockets; in-flight requests finish. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * A kept-alive socket the server closed (restarted, or its keep-alive ran out
   * while this process was paused) fails the next request on it with "socket
   * hang up" before the server saw a byte. A statement without a body (a read
   * or DDL, all idempotent here) is sent once more on a fresh connection; an
   * INSERT is not (it fails as possibly landed, and the sink asks what landed).
   */
  private async send(sql: string, data: Payload | undefined, opts: RequestOptions): Promise<ClickhouseResponse> {
    const stale = { reset: false };
    try {
      return await this.sendOnce(sql, data, opts, this.agent, stale);
    } catch (e) {
      if (!stale.reset || data !== undefined || opts.signal?.aborted === true) throw e;
      return this.sendOnce(sql, data, opts, false, { reset: false });
    }
  }

  private sendOnce(sql: string, data: Payload | undefined, opts: RequestOptions, agent: Agent | false, stale: { reset: boolean }): Promise<ClickhouseResponse> {
    const queryId = opts.queryId ?? randomUUID();
    const target = new URL(this.base.pathname === "" ? "/" : this.base.pathname, this.base);
    const params = target.searchParams;
    if (this.options.database !== undefined) params.set("database", this.options.database);
    for (const [k, v] of Object.entries({ ...this.options.settings, ...opts.settings })) params.set(k, typeof v === "boolean" ? (v ? "1" : "0") : String(v));
    params.set("query_id", queryId);
    const chunks = data === undefined ? [Buffer.from(sql, "utf8")] : data.chunks;
    if (data !== undefined) params.set("query", sql);
    for (const [k, v] of Object.entries(data?.params ?? {})) params.set(k, v);
    const headers: Record<string, string | number> = {
      "Content-Type": data === undefined ? "text/plain; charset=utf-8" : data.contentType,
      "Content-Length": chunks.reduce((n, c) => n + c.byteLength, 0),
    };
    if (this.authHeader !== undefined) headers["Authorization"] = this.authHeader;
    const timeoutMs = opts.timeoutMs ?? this.options.requestTimeoutMs ?? 60_000;

    return new Promise<ClickhouseResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown, classify = true): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        req.destroy();
        const typed = classify ? classifyClickhouseError(err, this.url, sql) : err;
        if (typed instanceof ClickhouseUnavailableError || typed instanceof ClickhouseQueryError) typed.queryId = queryId;
        reject(typed);
      };
      let answered = false;
      const req = request(target, { method: "POST", agent, headers }, (res: IncomingMessage) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", fail);
        // The connection closed before the whole response arrived (server killed mid-answer).
        res.on("close", () => {
          if (!res.complete) fail(Object.assign(new Error("connection closed before the response was complete"), { code: "ECONNRESET" }));
        });
        res.on("end", () => {
          if (settled) return;
          const payload = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          if (status !== 200) {
            if (status >= 500 && !/Code:\s*\d+/.test(payload.toString("utf8", 0, 200))) {
              // A proxy or a dying server: no ClickHouse exception in the body.
              fail(new ClickhouseUnavailableError(this.url, `HTTP_${status}`, payload.toString("utf8", 0, 200), data !== undefined));
              return;
            }
            const parsed = parseServerException(payload.toString("utf8"));
            fail(new ClickhouseQueryError(parsed.code, parsed.message, status, sql));
            return;
          }
          settled = true;
          clearTimeout(timer);
          opts.signal?.removeEventListener("abort", onAbort);
          resolve({ queryId, body: payload });
        });
      });
      // Before anything can destroy the request: a request destroyed without an error listener
      // (aborted before it was sent) throws "socket hang up" as an uncaught exception.
      req.on("error", (e: Error & { code?: string }) => {
        if (!answered && req.reusedSocket && (e.code === "ECONNRESET" || e.code === "EPIPE" || e.message === "socket hang up")) stale.reset = true;
        fail(e);
      });
      const timer = setTimeout(() => {
        fail(Object.assign(new Error(`no complete answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" }));
      }, timeoutMs);
      // The caller gave up: its reason is passed on as is, not as unavailability.
      const onAbort = (): void => fail(opts.signal?.reason ?? Object.assign(new Error("aborted"), { name: "AbortError" }), false);
      if (opts.signal?.aborted) {
        onAbort();
        return;
      }
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      for (let i = 0; i < chunks.length - 1; i++) req.write(chunks[i]);
      req.end(chunks[chunks.length - 1]);
    });
  }
}
