// The node's HTTP API against a real nats-server and a real node: ingest in
// every format (good and bad input, the bad named by line and column, nothing
// of a refused body stored), then SQL and JSON queries answered as JSON, CSV
// and Arrow; tokens and roles; 429 with Retry-After under load, with every
// acked row stored and none of the refused ones.
import { spawn } from "node:child_process";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tableFromIPC } from "apache-arrow";
import { bucketOf } from "../../protocols/routing.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { createToken } from "../../src/auth/index.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";

const SPEC = parseClusterSpec({
  tenants: [
    {
      name: "desk",
      tables: [
        { name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] },
        { name: "quotes", shards: 2, columns: [{ name: "bid", type: "float64" }, { name: "ask", type: "float64" }] },
        { name: "burst", shards: 1, columns: [{ name: "v", type: "float64" }] },
        { name: "small", shards: 1, maxBatchRows: 3, columns: [{ name: "v", type: "float64" }] },
      ],
    },
    { name: "other", tables: [{ name: "trades", columns: [{ name: "price", type: "float64" }] }] },
  ],
});
const T = Date.UTC(2024, 0, 2, 14, 30) * 1000;
const iso = (us: number): string => new Date(us / 1000).toISOString();

let nats: NatsFixture;
let node: ProxistNode;
let base: string;
const tok: Record<string, string> = {};

const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = {}, token: string = tok.writer!) =>
  fetch(`${base}${path}`, { method: "POST", body, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });

async function query(sql: string, o: { accept?: string; token?: string; params?: string } = {}): Promise<Response> {
  return post(`/v1/query${o.params ?? ""}`, sql, o.accept ? { accept: o.accept } : {}, o.token ?? tok.reader);
}

async function rowsOf(sql: string): Promise<unknown[][]> {
  const r = await query(sql);
  const body = (await r.json()) as { rows: unknown[][]; error?: string };
  expect(r.status, body.error).toBe(200);
  return body.rows;
}

/** Waits until the hot set answers `n` rows of `table` (ingest acks when the WAL stored a batch; shards apply it just after). */
async function waitCount(table: string, n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const rows = await rowsOf(`SELECT count(*) FROM ${table}`);
    if (rows[0]?.[0] === n) return;
    if (Date.now() > deadline) throw new Error(`${table} has ${JSON.stringify(rows)} rows, want ${n}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  nats = await natsFixture();
  // maxInFlight 2 and 2 HTTP bodies at once: bursts overflow (the 429 tests); sequential calls never do.
  // grpcPort: the node's API runs, and HTTP queries use its served (metered) engine, as under `proxist up`.
  node = await nodeOn(nats.server, nats.nc, { maxInFlight: 2, grpcPort: 0, httpMaxConcurrentIngest: 2 }, SPEC);
  base = `http://127.0.0.1:${node.httpPort}`;
  const deadline = Date.now() + 20_000;
  while (node.shards.all().length < 8) {
    if (Date.now() > deadline) throw new Error("shards did not start");
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const role of ["reader", "writer", "admin"] as const) tok[role] = await createToken(nats.nc, { tenant: "desk", role });
  tok.other = await createToken(nats.nc, { tenant: "other", role: "admin" });
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await nats?.close();
});

describe("http api - ingest", () => {
  it("http - JSON lines, CSV, line protocol and Arrow IPC are stored and acked with their LSNs", async () => {
    const jsonl = `{"sym":"AAPL","ts":${T},"price":10.5,"size":100}\n{"sym":"MSFT","ts":"${iso(T + 1000)}","price":20,"size":5}\n`;
    const csv = `sym,ts,price,size\nAAPL,${T + 2000},11,7\n"MSFT",${iso(T + 3000)},21,8\n`;
    const lp = `trades,sym=AAPL price=12,size=9i ${T + 4000}000\ntrades,sym=IBM price=30.25,size=1i ${(T + 5000) / 1000}`;
    const arrow = tickBatchToIpc(SPEC.tenants[0]!.tables[0]!, { rows: 1, symbols: ["IBM"], symbolIndex: Uint32Array.of(0), ts: Float64Array.of(T + 6000), values: [Float64Array.of(31), Float64Array.of(2)] });
    const acks = [
      await post("/v1/ingest/trades", jsonl, { "content-type": "application/x-ndjson" }),
      await post("/v1/ingest/trades", csv, { "content-type": "text/csv" }),
      await post("/v1/ingest/trades?precision=ns", lp.split("\n")[0]!, { "content-type": "text/plain" }),
      await post("/v1/ingest/trades?precision=ms", lp.split("\n")[1]!),
      await post("/v1/ingest/desk.trades", arrow, { "content-type": "application/vnd.apache.arrow.stream" }),
    ];
    const bodies = (await Promise.all(acks.map((r) => r.json()))) as { ok: boolean; rows: number; lastLsn: number }[];
    expect(acks.map((r) => r.status), JSON.stringify(bodies)).toEqual([200, 200, 200, 200, 200]);
    expect(bodies.map((b) => b.rows)).toEqual([2, 2, 1, 1, 1]);
    expect(bodies.every((b) => b.ok && b.lastLsn > 0)).toBe(true);
    await waitCount("trades", 7);
    expect(await rowsOf("SELECT * FROM trades ORDER BY ts")).toEqual([
      ["AAPL", T, 10.5, 100],
      ["MSFT", T + 1000, 20, 5],
      ["AAPL", T + 2000, 11, 7],
      ["MSFT", T + 3000, 21, 8],
      ["AAPL", T + 4000, 12, 9],
      ["IBM", T + 5000, 30.25, 1],
      ["IBM", T + 6000, 31, 2],
    ]);
  });

  it("http - a gzip body is inflated; a broken one or another encoding is refused", async () => {
    const lp = `quotes,sym=GZ bid=1,ask=2 ${T}000`;
    const ok = await post("/v1/ingest/quotes", gzipSync(lp), { "content-encoding": "gzip" });
    expect(ok.status).toBe(200);
    expect((await post("/v1/ingest/quotes", "not gzip", { "content-encoding": "gzip" })).status).toBe(400);
    expect((await post("/v1/ingest/quotes", lp, { "content-encoding": "br" })).status).toBe(415);
    await waitCount("quotes", 1);
  });

  it("http - a retried body with the same producer id and seq is stored once", async () => {
    const body = `quotes,sym=AAPL bid=1,ask=2 ${T}000`;
    const h = { "px-producer-id": "http-test", "px-producer-seq": "1" };
    const a = (await (await post("/v1/ingest/quotes", body, h)).json()) as { lastLsn: number };
    const b = (await (await post("/v1/ingest/quotes", body, h)).json()) as { lastLsn: number; appends: { duplicate: boolean }[] };
    expect(b.lastLsn).toBe(a.lastLsn);
    expect(b.appends.every((x) => x.duplicate)).toBe(true);
    await waitCount("quotes", 2);
  });

  it.each([
    ["jsonl", '{"sym":"A","ts":1704205800000000,"price":1,"size":1}\n{"sym":"A","ts":1704205800000000,"price":"x","size":1}', 2, "price"],
    ["jsonl", '{"sym":"A","ts":1704205800000000,"price":1,"size":1.5}', 1, "size"],
    ["csv", "sym,ts,price,size\nA,1704205800000000,1,1\nA,1704205800000000,1", 3, null],
    ["csv", "sym,ts,price,qty\n", 1, "qty"],
    ["lp", "trades,sym=A price=1,size=1i 1704205800000000000\ntrades,sym=A price=1,size=2.5 1704205800000000000", 2, "size"],
    ["lp", "quotes,sym=A bid=1 1704205800000000000", 1, null],
  ])("http - a bad %s body is refused naming its line and column (case %#)", async (format, body, line, column) => {
    const r = await post(`/v1/ingest/trades?format=${format}`, body);
    const j = (await r.json()) as { error: string; line: number; column: string | null };
    expect(r.status).toBe(400);
    expect([j.line, j.column]).toEqual([line, column]);
    expect(j.error).toMatch(new RegExp(`^line ${line}`));
  });

  it("http - the gateway's own checks name the row and its line; nothing of a refused body is stored", async () => {
    // A tick in 1970 (seconds sent as microseconds) on line 3: the gateway's plausibility check refuses the whole body.
    const body = `trades,sym=ZZ price=1,size=1i ${T}000\n\ntrades,sym=ZZ price=1,size=1i 1704205800000`;
    const r = await post("/v1/ingest/trades", body);
    const j = (await r.json()) as { error: string; code: string };
    expect(r.status).toBe(400);
    expect(j.error).toMatch(/row 1 \(line 3\)/);
    expect(j.error).toMatch(/column ts/);
    expect(await rowsOf("SELECT * FROM trades WHERE sym = 'ZZ'")).toEqual([]);
    await waitCount("trades", 7);
  });

  it("http - rows sent grouped by bucket: a gateway refusal still names the body's row and line", async () => {
    // One symbol of each bucket; the bad row (line 3) is the body's row 2 but the stream's row 1 (bucket 0 goes first).
    const cands = Array.from({ length: 50 }, (_, i) => `G${i}`);
    const b0 = cands.find((s) => bucketOf(s, 2) === 0)!;
    const b1 = cands.find((s) => bucketOf(s, 2) === 1)!;
    const body = [`trades,sym=${b1} price=1,size=1i ${T}000`, `trades,sym=${b0} price=1,size=1i ${T}000`, `trades,sym=${b0} price=1,size=1i 1704205800000`].join("\n");
    const r = await post("/v1/ingest/trades", body);
    const j = (await r.json()) as { error: string };
    expect(r.status).toBe(400);
    expect(j.error).toMatch(/row 2 \(line 3\)/);
    expect(await rowsOf(`SELECT * FROM trades WHERE sym IN ('${b0}', '${b1}')`)).toEqual([]);
  });

  it("http - a body over maxBatchRows goes as several batches; a refused one says which lines are stored", async () => {
    const body = (bad?: number) => Array.from({ length: 7 }, (_, i) => `small,sym=S v=${i} ${i + 1 === bad ? 1704205800000 : T + i}000`).join("\n");
    const ok = await post("/v1/ingest/small", body());
    const ack = (await ok.json()) as { rows: number; appends: unknown[] };
    expect([ok.status, ack.rows, ack.appends.length]).toEqual([200, 7, 3]);
    // Line 5 (the second batch's second row) is from 1970: lines 1-3 are stored, the answer says to resend from line 4.
    const bad = await post("/v1/ingest/small", body(5));
    const j = (await bad.json()) as { error: string; storedRows: number; storedThroughLine: number; resendFromLine: number };
    expect(bad.status).toBe(400);
    expect([j.storedRows, j.storedThroughLine, j.resendFromLine]).toEqual([3, 3, 4]);
    expect(j.error).toMatch(/row 1 \(line 5\)/);
    await waitCount("small", 10);
  });

  it("http - tokens: none is 401, a reader may not ingest, another tenant's table is 403, an unknown table 404", async () => {
    expect((await post("/v1/ingest/trades", "x", {}, "")).status).toBe(401);
    expect((await post("/v1/ingest/trades", `trades,sym=A price=1,size=1i ${T}000`, {}, tok.reader)).status).toBe(403);
    expect((await post("/v1/ingest/other.trades", `trades,sym=A price=1 ${T}000`)).status).toBe(403);
    const nf = await post("/v1/ingest/nosuch", "x");
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { error: string }).error).toMatch(/its tables: burst, quotes, small, trades/);
    expect((await post("/v1/ingest/trades", "x", { "content-type": "image/png" })).status).toBe(415);
    expect((await post("/v1/ingest/trades", "", {})).status).toBe(400);
  });

  it("http - bodies beyond the node's HTTP ingest limit get 429 with Retry-After before anything is read; the others are stored", async () => {
    // Two uploads stay open (their bodies unfinished): they hold both slots.
    const slow = [0, 1].map((i) => {
      let push!: (s: string) => void;
      let end!: () => void;
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          push = (s) => c.enqueue(new TextEncoder().encode(s));
          end = () => c.close();
        },
      });
      const reply = fetch(`${base}/v1/ingest/burst`, { method: "POST", body: stream, duplex: "half", headers: { authorization: `Bearer ${tok.writer}` } } as RequestInit);
      push(`burst,sym=SLOW v=${i}`);
      return { reply, finish: () => (push(` ${T + i}000\n`), end()) };
    });
    await new Promise((r) => setTimeout(r, 300));
    const third = await post("/v1/ingest/burst", `burst,sym=FAST v=9 ${T}000`);
    expect([third.status, third.headers.get("retry-after")]).toEqual([429, "1"]);
    expect(((await third.json()) as { error: string }).error).toMatch(/limit 2\); retry after 1 s/);
    slow.forEach((s) => s.finish());
    expect((await Promise.all(slow.map((s) => s.reply))).map((r) => r.status)).toEqual([200, 200]);
    expect((await post("/v1/ingest/burst", `burst,sym=FAST v=9 ${T}000`)).status).toBe(200);
    await waitCount("burst", 3);
    expect((await rowsOf("SELECT sym, v FROM burst ORDER BY sym, ts")).map((r) => `${String(r[0])} ${String(r[2])}`)).toEqual(["FAST 9", "SLOW 0", "SLOW 1"]);
  });

  it("http - a burst is answered 200 or 429 + Retry-After only; every acked row is stored, no refused one", async () => {
    const N = 40;
    const replies = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const lines = Array.from({ length: 200 }, (_, k) => `burst,sym=B${k % 7} v=${(i + 1) * 1000 + k} ${T + (i + 1) * 1000 + k}000`).join("\n");
        const r = await post("/v1/ingest/burst", lines);
        return { i: i + 1, status: r.status, retry: r.headers.get("retry-after"), body: (await r.json()) as { rows?: number } };
      }),
    );
    const ok = replies.filter((r) => r.status === 200);
    const busy = replies.filter((r) => r.status === 429);
    expect(ok.length + busy.length, JSON.stringify(replies.filter((r) => r.status !== 200 && r.status !== 429))).toBe(N);
    expect(busy.every((r) => r.retry === "1")).toBe(true);
    await waitCount("burst", 3 + ok.length * 200);
    const stored = new Set((await rowsOf("SELECT * FROM burst WHERE sym IN ('B0', 'B1', 'B2', 'B3', 'B4', 'B5', 'B6')")).map((r) => Math.floor((r[2] as number) / 1000)));
    expect([...stored].sort((a, b) => a - b)).toEqual(ok.map((r) => r.i).sort((a, b) => a - b));
  });
});

describe("http api - query", () => {
  it("http - SQL LATEST ON, a JSON query and {\"sql\": ...} answer the same engine", async () => {
    const latest = [
      ["AAPL", T + 4000, 12, 9],
      ["IBM", T + 6000, 31, 2],
      ["MSFT", T + 3000, 21, 8],
    ];
    expect(await rowsOf("SELECT * FROM trades LATEST ON ts PARTITION BY sym")).toEqual(latest);
    expect(await rowsOf(JSON.stringify({ op: "lastBy", table: "trades" }))).toEqual(latest);
    expect(await rowsOf(JSON.stringify({ sql: "SELECT * FROM trades LATEST BY sym" }))).toEqual(latest);
    expect(await rowsOf(`SELECT sym, ts, price FROM trades WHERE sym IN ('AAPL') AND ts >= '${iso(T + 1)}' ORDER BY ts DESC LIMIT 1`)).toEqual([["AAPL", T + 4000, 12]]);
  });

  it("http - JSON, CSV and Arrow by Accept or ?format=", async () => {
    const sql = "SELECT sym, ts, price FROM trades WHERE sym = 'IBM'";
    const j = await query(sql, { accept: "application/json" });
    expect(j.headers.get("content-type")).toMatch(/json/);
    expect(j.headers.get("proxist-complete")).toBe("true");
    const jb = (await j.json()) as { columns: { name: string; type: string }[]; complete: boolean };
    expect(jb.columns.map((c) => `${c.name}:${c.type}`)).toEqual(["sym:Dictionary<Int32, Utf8>", "ts:timestamp_us", "price:Float64"]);
    expect(jb.complete).toBe(true);
    const csv = await (await query(sql, { accept: "text/csv" })).text();
    expect(csv).toBe(`sym,ts,price\nIBM,2024-01-02T14:30:00.005000Z,30.25\nIBM,2024-01-02T14:30:00.006000Z,31\n`);
    expect(await (await query(sql, { params: "?format=csv&ts=us" })).text()).toContain(`IBM,${T + 5000},30.25`);
    const arrow = await query(sql, { accept: "application/vnd.apache.arrow.stream" });
    const t = tableFromIPC(new Uint8Array(await arrow.arrayBuffer()));
    expect(t.numRows).toBe(2);
    expect(String(t.schema.fields[1]!.type)).toMatch(/Timestamp/);
    expect(t.getChild("price")!.toArray()).toEqual(Float64Array.of(30.25, 31));
    const empty = tableFromIPC(new Uint8Array(await (await query("SELECT * FROM trades WHERE sym = 'NONE'", { params: "?format=arrow" })).arrayBuffer()));
    expect([empty.numRows, empty.schema.fields.length]).toEqual([0, 4]);
    expect((await query(sql, { accept: "image/png" })).status).toBe(406);
  });

  it("http - bars, rolling and as-of through SQL", async () => {
    expect(await rowsOf("SELECT sym, ts, first(price) AS o, sum(size) AS v FROM trades WHERE sym = 'AAPL' SAMPLE BY 1s")).toEqual([["AAPL", T, 10.5, 116]]);
    expect(await rowsOf("SELECT sym, ts, sum(size) OVER (PARTITION BY sym ORDER BY ts ROWS 1 PRECEDING) AS s2 FROM trades WHERE sym = 'AAPL'")).toEqual([
      ["AAPL", T, 100],
      ["AAPL", T + 2000, 107],
      ["AAPL", T + 4000, 16],
    ]);
    expect(await rowsOf("SELECT t.sym, t.ts, q.bid FROM trades t ASOF JOIN quotes q ON (sym) WHERE t.sym = 'AAPL' AND t.ts < " + String(T + 1))).toEqual([["AAPL", T, T, 1]]);
  });

  it("http - HTTP queries are metered like gRPC ones (px_query_seconds by tenant and operator)", async () => {
    await rowsOf("SELECT * FROM trades LATEST ON ts PARTITION BY sym");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/px_query_seconds_count\{[^}]*tenant="desk"[^}]*op="lastBy"[^}]*\} [1-9]/);
  });

  it("http - EXPLAIN shows the compiled query and where each shard is answered", async () => {
    const r = await query("EXPLAIN SELECT * FROM trades WHERE sym IN ('AAPL') LATEST ON ts PARTITION BY sym");
    const { explain } = (await r.json()) as { explain: { query: unknown; op: string; tables: { table: string; shards: number; parts: { where: string; hot: string; clickhouse: string | null }[] }[]; note?: string } };
    expect(explain.query).toEqual({ op: "lastBy", table: "trades", symbols: ["AAPL"] });
    expect(explain.tables[0]!.shards).toBe(2);
    expect(explain.tables[0]!.parts.every((p) => p.where === "this node" && /LSN >/.test(p.hot) && p.clickhouse === null)).toBe(true);
    expect(explain.note).toMatch(/no ClickHouse/);
  });

  it("http - refusals: unsupported SQL names the construct (400), no token 401, another tenant 403, unknown table 404", async () => {
    const bad = await query("SELECT * FROM trades WHERE price > 1");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/filtering on price is not supported; filter with sym IN/);
    expect((await query("SELECT * FROM trades", { token: "" })).status).toBe(401);
    expect((await query("SELECT * FROM other.trades")).status).toBe(403);
    const nf = await query("SELECT * FROM nosuch");
    expect(nf.status).toBe(404);
    expect((await fetch(`${base}/v1/query`, { headers: { authorization: `Bearer ${tok.reader}` } })).status).toBe(405);
  });
});

/** Runs pxctl as a user would (node --import tsx src/cli/pxctl.ts), with `stdin` piped in. */
function pxctl(args: readonly string[], stdin = ""): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["--import", "tsx", "src/cli/pxctl.ts", ...args], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PX_TOKEN: tok.reader } });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.once("exit", (code) => resolve({ code, out, err }));
    p.stdin.end(stdin);
  });
}

describe("http api - pxctl query and pxctl sql", () => {
  it("pxctl - query prints a table, CSV or JSON; refusals exit 2 naming the construct", { timeout: 60_000 }, async () => {
    const t = await pxctl(["query", "--url", base, "SELECT sym, ts, price FROM trades LATEST ON ts PARTITION BY sym"]);
    expect(t.code, t.err).toBe(0);
    expect(t.out.split("\n").slice(0, 2)).toEqual(["sym   ts                           price", "AAPL  2024-01-02T14:30:00.004000Z  12"]);
    expect(t.out).toContain("(3 rows)");
    const csv = await pxctl(["-o", "csv", "query", "--url", base, "-"], "SELECT sym, price FROM trades WHERE sym = 'IBM'");
    expect(csv.out).toBe("sym,ts,price\nIBM,2024-01-02T14:30:00.005000Z,30.25\nIBM,2024-01-02T14:30:00.006000Z,31\n");
    const j = await pxctl(["query", "--url", base, "-o", "json", JSON.stringify({ op: "groupBy", table: "trades", by: [], aggregates: [{ fn: "count" }] })]);
    expect((JSON.parse(j.out) as { rows: unknown[][] }).rows).toEqual([[7]]);
    const bad = await pxctl(["query", "--url", base, "SELECT * FROM trades WHERE price > 1"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/filtering on price is not supported/);
    const noToken = await pxctl(["query", "--url", base, "--token", "", "SELECT * FROM trades"]);
    expect(noToken.err).toMatch(/HTTP 401.*--token/);
  });

  it("pxctl - sql reads statements (continued lines, \\o csv) until \\q", { timeout: 60_000 }, async () => {
    const r = await pxctl(["sql", "--url", base], "SELECT count(*) AS n FROM trades;\n\\o csv\nSELECT sym, ts \\\nFROM trades LATEST BY sym\n\\q\nSELECT 1\n");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("n\n7\n(1 row)");
    expect(r.out).toContain("sym,ts\nAAPL,2024-01-02T14:30:00.004000Z\nIBM,2024-01-02T14:30:00.006000Z\nMSFT,2024-01-02T14:30:00.003000Z");
  });
});
