// The console's calls to the node: the token kept for this browser tab
// (sessionStorage), sent as `authorization: Bearer` on every call; errors
// carry the server's own message (the API names the input, rule and fix).
const KEY = "proxist.token";

export const token = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (t: string): void => sessionStorage.setItem(KEY, t),
  clear: (): void => sessionStorage.removeItem(KEY),
  /** Signed in: a token, or "" for a node that checks none. */
  known: (): boolean => sessionStorage.getItem(KEY) !== null,
};

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const headers = (extra: Record<string, string>, t = token.get()): Record<string, string> => (t ? { ...extra, authorization: `Bearer ${t}` } : extra);

async function errorOf(r: Response): Promise<ApiCallError> {
  const text = await r.text();
  let msg = text.trim();
  try {
    const j = JSON.parse(text) as { error?: string; code?: unknown };
    if (typeof j.error === "string") msg = j.error;
  } catch {
    // not JSON: the text as it is
  }
  // A token that expired or was revoked while the tab was open: say where to get past it.
  const hint = r.status === 401 && token.known() ? "\n(Sign out and sign in again with a valid token.)" : "";
  return new ApiCallError(r.status, `${r.status} ${r.statusText}: ${msg || "(no message)"}${hint}`);
}

export async function post(path: string, body: string, accept: string, t?: string | null): Promise<Response> {
  const r = await fetch(path, { method: "POST", body, headers: headers({ accept, "content-type": "text/plain" }, t === undefined ? token.get() : t) });
  if (!r.ok) throw await errorOf(r);
  return r;
}

export async function getJson<T>(path: string): Promise<T> {
  const r = await fetch(path, { headers: headers({ accept: "application/json" }) });
  if (!r.ok) throw await errorOf(r);
  return (await r.json()) as T;
}

export interface Column {
  readonly name: string;
  readonly type: string;
}

export interface QueryResult {
  readonly columns: readonly Column[];
  readonly rows: readonly (readonly unknown[])[];
  readonly complete: boolean;
  readonly notes: readonly string[];
}

/** POST /v1/query as JSON, times as integer µs. */
export async function query(body: string): Promise<QueryResult> {
  return (await (await post("/v1/query?ts=us", body, "application/json")).json()) as QueryResult;
}

export interface ChartSeries {
  readonly name: string;
  readonly sym: string | null;
  readonly column: string;
  readonly points: readonly (readonly number[])[];
}

export interface ChartAnswer {
  readonly kind: "candles" | "lines" | "none";
  readonly rows: number;
  readonly bucketMs: number;
  readonly series: readonly ChartSeries[];
  readonly notes: readonly string[];
}

/** POST /v1/chart: the query's answer downsampled on the node to at most `points` per series. */
export async function chart(body: string, points = 2000): Promise<ChartAnswer> {
  return (await (await post(`/v1/chart?points=${points}`, body, "application/json")).json()) as ChartAnswer;
}

/**
 * Checks a token with a request that needs one and does nothing else: an empty
 * query is refused as empty (400) only after the token passed, as 401/403 before.
 */
export async function checkToken(t: string): Promise<void> {
  const r = await fetch("/v1/query", { method: "POST", body: "", headers: headers({ accept: "application/json" }, t) });
  if (r.status === 400) return;
  if (r.ok) return;
  throw await errorOf(r);
}

/** SQL string literal. */
export const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;
