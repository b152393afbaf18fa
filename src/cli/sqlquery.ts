// pxctl query / pxctl sql: SQL or JSON queries over a node's HTTP API
// (POST /v1/query with an API token). `query` runs one statement (argument,
// --file or stdin) and prints a table, JSON, CSV, Arrow IPC or Parquet (Parquet
// to a pipe or --out FILE); --watch reruns it. `sql` is an interactive prompt
// with history. Parsed apart from the NATS commands (args.ts) because its flags
// and outputs differ.
import { parseArgs } from "node:util";
import { DEFAULT_PORTS, ENV } from "../config/defaults.js";
import { CliError, EXIT } from "./exitcodes.js";
import { table } from "./render.js";

export const QUERY_OUTPUTS = ["table", "json", "csv", "arrow", "parquet"] as const;
export type QueryOutput = (typeof QUERY_OUTPUTS)[number];

export interface QueryInvocation {
  readonly kind: "query" | "sql";
  readonly url: string;
  readonly token: string | undefined;
  readonly output: QueryOutput;
  /** Statement text; undefined: read stdin (query) or prompt (sql). */
  readonly text: string | undefined;
  readonly file: string | undefined;
  readonly watchSeconds: number | undefined;
  readonly timeoutMs: number;
  /** --out FILE: write the result there instead of stdout. */
  readonly out: string | undefined;
}

export interface QueryIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Binary output (-o arrow, -o parquet). */
  readonly stdoutBytes: (bytes: Uint8Array) => void;
  /** Whether stdout is a terminal (Parquet is not written to one). */
  readonly stdoutIsTty?: boolean;
  /** --out FILE. */
  readonly writeFile?: (path: string, bytes: Uint8Array) => Promise<void>;
  readonly readFile: (path: string) => Promise<string>;
  readonly readStdin: () => Promise<string>;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly fetch?: typeof fetch;
}

export const QUERY_USAGE = `pxctl query [--url URL] [--token T] [-o table|json|csv|arrow|parquet] [--out FILE] [--watch 2s] "SQL or JSON" | -f FILE | < stdin
pxctl sql [--url URL] [--token T]        interactive SQL prompt (a line ending in \\ continues; \\q quits; \\o csv switches output)
  --url URL     the node's HTTP address (default $PX_HTTP_URL or http://127.0.0.1:${DEFAULT_PORTS.http})
  --token T     an API token with the reader role (default $PX_TOKEN, else $TOKEN)
  --out FILE    write the result to FILE (without it, -o parquet writes to stdout only when that is not a terminal)`;

const VALUE_FLAGS = new Set(["--url", "--token", "-o", "--output", "--file", "-f", "--watch", "--timeout", "--out", "--nats", "--creds", "--auth-dir"]);

/** "query" or "sql" when that is the command of `argv` (the first word that is not a flag or a flag's value). */
export function queryCommandOf(argv: readonly string[]): "query" | "sql" | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("-")) {
      if (VALUE_FLAGS.has(a)) i++;
      continue;
    }
    return a === "query" || a === "sql" ? a : undefined;
  }
  return undefined;
}

const usage = (msg: string): never => {
  throw new CliError(EXIT.usage, `${msg}\n${QUERY_USAGE}`);
};

export function parseQueryArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): QueryInvocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        output: { type: "string", short: "o", default: "table" },
        file: { type: "string", short: "f" },
        watch: { type: "string" },
        timeout: { type: "string", default: "60000" },
        out: { type: "string" },
        // Global pxctl flags that mean nothing here are accepted and ignored.
        nats: { type: "string" },
        creds: { type: "string" },
        "auth-dir": { type: "string" },
      },
    });
  } catch (e) {
    return usage((e as Error).message);
  }
  const { values: v, positionals: p } = parsed;
  const kind = p[0] as "query" | "sql";
  const output = v.output as QueryOutput;
  if (!QUERY_OUTPUTS.includes(output)) usage(`-o ${v.output}: use table, json, csv, arrow or parquet`);
  if (p.length > 2) usage(`${kind}: give the statement as one argument (quote it)`);
  if (kind === "sql" && (p.length > 1 || v.file !== undefined || v.watch !== undefined)) usage("sql: the prompt reads statements itself; use pxctl query for one statement");
  let watchSeconds: number | undefined;
  if (v.watch !== undefined) {
    const m = /^(\d+(?:\.\d+)?)(s|ms)?$/.exec(v.watch);
    if (!m || Number(m[1]) <= 0) usage(`--watch ${v.watch}: give an interval such as 2s or 500ms`);
    watchSeconds = m![2] === "ms" ? Number(m![1]) / 1000 : Number(m![1]);
  }
  const timeoutMs = Number(v.timeout);
  if (!(timeoutMs > 0)) usage(`--timeout ${v.timeout}: give milliseconds`);
  const url = (v.url ?? env.PX_HTTP_URL ?? `http://127.0.0.1:${env[ENV.httpPort] ?? DEFAULT_PORTS.http}`).replace(/\/+$/, "");
  // $TOKEN as the README's quick start exports it, when $PX_TOKEN is not set.
  const token = v.token ?? env.PX_TOKEN ?? env.TOKEN;
  return { kind, url, token, output, text: p[1] === "-" ? undefined : p[1], file: v.file, watchSeconds, timeoutMs, out: v.out };
}

const ACCEPT: Record<QueryOutput, string> = { table: "application/json", json: "application/json", csv: "text/csv", arrow: "application/vnd.apache.arrow.stream", parquet: "application/vnd.apache.parquet" };

interface JsonResult {
  columns: { name: string }[];
  rows: unknown[][];
  complete: boolean;
  notes: string[];
}

const cell = (v: unknown): string => (v === null || v === undefined ? "" : typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toPrecision(12))) : String(v));

/** A result as an aligned table (times in ISO), with the row count and any completeness notes under it. */
export function resultTable(r: JsonResult): string {
  const head = table(r.columns.map((c) => c.name), r.rows.map((row) => row.map(cell)));
  const foot = `(${r.rows.length} row${r.rows.length === 1 ? "" : "s"}${r.complete ? "" : ", INCOMPLETE"})`;
  return [head, foot, ...r.notes.map((n) => `note: ${n}`)].join("\n");
}

const EXIT_OF: Record<number, number> = { 400: EXIT.usage, 401: EXIT.usage, 403: EXIT.usage, 404: EXIT.notFound, 429: EXIT.unreachable, 503: EXIT.unreachable };

/** Runs one statement; prints the result; returns the exit status. */
export async function runStatement(inv: QueryInvocation, text: string, output: QueryOutput, io: QueryIo): Promise<number> {
  const f = io.fetch ?? fetch;
  const params = output === "table" ? "?ts=iso" : "";
  let res: Response;
  try {
    res = await f(`${inv.url}/v1/query${params}`, {
      method: "POST",
      body: text,
      headers: { accept: ACCEPT[output], ...(inv.token ? { authorization: `Bearer ${inv.token}` } : {}) },
      signal: AbortSignal.timeout(inv.timeoutMs),
    });
  } catch (e) {
    // fetch says only "fetch failed"; the socket's or TLS's reason is its cause.
    const cause = (e as { cause?: { message?: string; code?: string } }).cause;
    const why = cause?.message ?? (e as Error).message;
    const tls = /certificate|self[- ]signed|UNABLE_TO_VERIFY|CERT_/i.test(`${why} ${cause?.code ?? ""}`);
    io.stderr(
      tls
        ? `cannot reach the node at ${inv.url}: its TLS certificate is not trusted (${why}); trust its CA: PX_TLS_CA=/path/ca.crt ./proxist pxctl ... (or NODE_EXTRA_CA_CERTS=/path/ca.crt)`
        : `cannot reach the node at ${inv.url} (${why}); start it (./proxist up) or pass --url`,
    );
    return EXIT.unreachable;
  }
  if (!res.ok) {
    const body = await res.text();
    let msg = body;
    try {
      msg = (JSON.parse(body) as { error?: string }).error ?? body;
    } catch {
      // not JSON: print as is
    }
    const hint = res.status === 401 ? " (give --token or set $PX_TOKEN: pxctl token create --tenant T --role reader)" : "";
    io.stderr(`error (HTTP ${res.status}): ${msg}${hint}`);
    return EXIT_OF[res.status] ?? EXIT.other;
  }
  if (output === "arrow" || output === "parquet") {
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (inv.out !== undefined && io.writeFile) await io.writeFile(inv.out, bytes);
    else io.stdoutBytes(bytes);
  } else if (output === "csv") io.stdout((await res.text()).replace(/\n$/, ""));
  else {
    const body = (await res.json()) as JsonResult | { explain: unknown };
    if ("explain" in body) io.stdout(JSON.stringify(body.explain, null, 2));
    else io.stdout(output === "json" ? JSON.stringify(body) : resultTable(body));
  }
  return EXIT.ok;
}

/** pxctl query: one statement, or the same statement every --watch interval until interrupted. */
export async function runQuery(inv: QueryInvocation, io: QueryIo, stop: AbortSignal = new AbortController().signal): Promise<number> {
  const text = inv.text ?? (inv.file !== undefined ? await io.readFile(inv.file) : await io.readStdin());
  if (text.trim() === "") usage("query: give a statement, e.g. pxctl query \"SELECT * FROM trades LATEST ON ts PARTITION BY sym\"");
  // Binary on a terminal is noise that can upset it: ask for a file instead.
  if (inv.output === "parquet" && inv.out === undefined && io.stdoutIsTty === true) usage("-o parquet: stdout is a terminal; redirect it (> result.parquet) or pass --out result.parquet");
  if (inv.watchSeconds === undefined) return runStatement(inv, text, inv.output, io);
  let code: number = EXIT.ok;
  while (!stop.aborted) {
    // Clear the screen and home the cursor: a live board, not a scrolling log.
    if (inv.output === "table") io.stdout(`\x1b[2J\x1b[H${new Date().toISOString()}  every ${inv.watchSeconds}s  ${inv.url}`);
    code = await runStatement(inv, text, inv.output, io);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, inv.watchSeconds! * 1000);
      stop.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
  }
  return code;
}

export interface Prompt {
  /** The next line, or undefined at end of input. */
  line(prompt: string): Promise<string | undefined>;
  close(): void;
}

/** pxctl sql: read statements, run each, until \q or end of input. */
export async function runSqlPrompt(inv: QueryInvocation, io: QueryIo, prompt: Prompt): Promise<number> {
  let output: QueryOutput = inv.output === "arrow" || inv.output === "parquet" ? "table" : inv.output;
  let buffer = "";
  try {
    for (;;) {
      const line = await prompt.line(buffer === "" ? "px> " : " .> ");
      if (line === undefined) return EXIT.ok;
      const t = line.trim();
      if (buffer === "" && (t === "\\q" || t === "exit" || t === "quit")) return EXIT.ok;
      const o = /^\\o\s+(\w+)$/.exec(t);
      if (buffer === "" && o) {
        if ((["table", "json", "csv"] as const).includes(o[1] as "table")) output = o[1] as QueryOutput;
        else io.stderr("\\o: table, json or csv");
        continue;
      }
      if (t.endsWith("\\")) {
        buffer += `${t.slice(0, -1)}\n`;
        continue;
      }
      const statement = (buffer + t).replace(/;\s*$/, "");
      buffer = "";
      if (statement.trim() !== "") await runStatement(inv, statement, output, io);
    }
  } finally {
    prompt.close();
  }
}
