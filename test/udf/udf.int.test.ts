// User-defined functions on a real node (nats-server and clickhouse-server):
// the README's "User-defined functions" spec is applied with `pxctl apply -f`
// (the CLI, as a user runs it) and its queries run as printed over the node's
// HTTP API, giving the built-ins' answers; more functions are checked the same
// way; a bad function is refused at apply and nothing changes; a looping one
// is stopped with the error naming it and the limit, and the node keeps answering.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createToken } from "../../src/auth/index.js";
import { tenantFunctions } from "../../src/catalog.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { VWAP_SOURCE } from "./sources.js";

// The demo's tenant and tables, as the README's spec declares them (the node starts with DEFAULT_CLUSTER_SPEC).
const TENANT = "default";
const TABLES = [
  { name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] },
  { name: "quotes", columns: ["bid", "ask", "bid_size", "ask_size"].map((name) => ({ name, type: "float64" })) },
];

/** The README section's blocks marked `udf-test`, by language. */
function readmeBlocks(): { yaml: string; bash: string } {
  const md = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = md.slice(md.indexOf("## User-defined functions\n"), md.indexOf("## SQL and HTTP\n"));
  const block = (lang: string): string => {
    const m = new RegExp("```" + lang + " udf-test\n([\\s\\S]*?)\n```").exec(section);
    if (m === null) throw new Error(`README: no \`\`\`${lang} udf-test block in "User-defined functions"`);
    return m[1]!;
  };
  return { yaml: block("yaml"), bash: block("bash") };
}
const T = Date.UTC(2024, 0, 2, 14, 30) * 1000;

let nats: NatsFixture;
let ch: ClickhouseFixture;
let node: ProxistNode;
let base: string;
let dir: string;
const tok: Record<string, string> = {};

const post = (path: string, body: string, token: string) => fetch(`${base}${path}`, { method: "POST", body, headers: { authorization: `Bearer ${token}` } });
async function query(q: unknown): Promise<{ status: number; rows: unknown[][]; columns?: string[]; error?: string; code?: string }> {
  const r = await post("/v1/query", JSON.stringify(q), tok.reader!);
  const body = (await r.json()) as { rows: unknown[][]; columns?: string[]; error?: string; code?: string };
  return { status: r.status, ...body };
}

/** Runs pxctl as a user would; the spec (YAML text or an object) is written to a file first. */
function pxctlApply(spec: unknown): Promise<{ code: number | null; out: string; err: string }> {
  const file = join(dir, typeof spec === "string" ? "udf.yaml" : `spec-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, typeof spec === "string" ? spec : JSON.stringify(spec));
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["--import", "tsx", "src/cli/pxctl.ts", "--nats", nats.server.url, "apply", "-f", file], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.once("exit", (code) => resolve({ code, out, err }));
  });
}

const specWith = (functions: unknown[]) => ({ tenants: [{ name: TENANT, tables: TABLES, functions }] });
const MYVWAP = { name: "myvwap", kind: "aggregate", source: VWAP_SOURCE };
const NOTIONAL = { name: "notional", kind: "scalar", source: "function notional(price, size) { return price * size; }" };
const SPIN = { name: "spin", kind: "scalar", source: "function spin(x) { for (;;) {} }", limits: { cpuMsPerCall: 300 } };

async function waitFunctions(names: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (tenantFunctions(node.catalog(), TENANT).map((f) => f.name).join() !== names.join()) {
    if (Date.now() > deadline) throw new Error(`the node did not serve functions ${names.join(", ")} within 20 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  [nats, ch] = await Promise.all([natsFixture(), clickhouseFixture()]);
  dir = mkdtempSync(join(tmpdir(), "px-udf-"));
  node = await nodeOn(nats.server, nats.nc, { grpcPort: 0, clickhouseUrl: ch.server.httpUrl });
  base = `http://127.0.0.1:${node.httpPort}`;
  for (const role of ["reader", "writer"] as const) tok[role] = await createToken(nats.nc, { tenant: TENANT, role });
  // 3 symbols x 400 trades over 40 s.
  const lines: string[] = [];
  for (let i = 0; i < 1200; i++) lines.push(JSON.stringify({ sym: ["AAPL", "MSFT", "IBM"][i % 3], ts: T + i * 33_333, price: 100 + ((i * 7919) % 1000) / 100, size: 1 + ((i * 104729) % 500) }));
  const r = await fetch(`${base}/v1/ingest/trades`, { method: "POST", body: lines.join("\n"), headers: { authorization: `Bearer ${tok.writer!}`, "content-type": "application/x-ndjson" } });
  expect(r.status, await r.clone().text()).toBe(200);
  const quotes = Array.from({ length: 300 }, (_, i) => JSON.stringify({ sym: ["AAPL", "MSFT", "IBM"][i % 3], ts: T + i * 100_000, bid: 100 + (i % 17) / 4, ask: 100.5 + (i % 13) / 4, bid_size: 1 + (i % 7), ask_size: 2 + (i % 5) }));
  const rq = await fetch(`${base}/v1/ingest/quotes`, { method: "POST", body: quotes.join("\n"), headers: { authorization: `Bearer ${tok.writer!}`, "content-type": "application/x-ndjson" } });
  expect(rq.status, await rq.clone().text()).toBe(200);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const c = await query({ op: "groupBy", table: "trades", by: [], aggregates: [{ fn: "count" }] });
    if (c.rows[0]?.[0] === 1200) break;
    if (Date.now() > deadline) throw new Error(`trades has ${JSON.stringify(c)} rows, want 1200`);
    await new Promise((res) => setTimeout(res, 50));
  }
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await nats?.close();
  await ch?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe("user-defined functions on a node", () => {
  it("udf - the README's example: its spec applied with pxctl, its queries run as printed", async () => {
    const { yaml, bash } = readmeBlocks();
    expect(bash).toMatch(/^pxctl apply -f udf\.yaml$/m);
    const a = await pxctlApply(yaml);
    expect(a.code, a.err).toBe(0);
    expect(a.out).toMatch(/\+ function default\.myvwap \(version 1, hash [0-9a-f]{16}\)/);
    await waitFunctions(["myvwap", "mid", "asvwap"]);
    const queries = [...bash.matchAll(/^q '(.*)'$/gm)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>);
    expect(queries.map((q) => q.op)).toEqual(["groupBy", "bars", "rolling", "range"]);
    // The whole day of the test's data (the README's queries name no range: all of it).
    const [g, b, r, m] = await Promise.all(queries.map((q) => query(q)));
    for (const x of [g, b, r, m]) {
      expect(x!.status, x!.error).toBe(200);
      expect(x!.rows.length).toBeGreaterThan(0);
    }
    const near = (x: unknown, y: unknown): boolean => Math.abs((x as number) - (y as number)) <= 1e-9 * Math.abs(y as number);
    expect(g!.rows.every((row) => near(row[2], row[1]))).toBe(true);
    // The AssemblyScript VWAP, compiled at apply and run in its worker on the node.
    expect(g!.rows.every((row) => near(row[3], row[1]))).toBe(true);
    expect(b!.rows.every((row) => near(row[9], row[8]))).toBe(true);
    expect(r!.rows.length).toBe(400);
    expect(m!.rows.every((row) => row[6] === ((row[2] as number) + (row[3] as number)) / 2)).toBe(true);
  });

  it("udf - pxctl apply registers them; groupBy, bars and range call them over the HTTP API and match the built-ins", async () => {
    const a = await pxctlApply(specWith([MYVWAP, NOTIONAL]));
    expect(a.code, a.err).toBe(0);
    // The README's myvwap (with retract) is replaced: a new hash, version 2; mid goes, notional comes.
    expect(a.out).toMatch(/~ function default\.myvwap: version 1 -> 2 \(hash [0-9a-f]{16}\)/);
    expect(a.out).toMatch(/\+ function default\.notional \(version 1, hash [0-9a-f]{16}\)/);
    expect(a.out).toMatch(/- function default\.mid/);
    await waitFunctions(["myvwap", "notional"]);

    const g = await query({ op: "groupBy", table: "trades", by: ["symbol", "bucket"], bucket: "10s", aggregates: [{ fn: "vwap", column: "price", weight: "size" }, { fn: "udf", name: "myvwap", args: ["price", "size"] }] });
    expect(g.status, g.error).toBe(200);
    expect(g.rows.length).toBe(12);
    for (const [, , vw, mine] of g.rows as [string, number, number, number][]) expect(Math.abs(mine - vw)).toBeLessThan(1e-9 * vw);

    const b = await query({ op: "bars", table: "trades", bucket: "5s", aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "size"], as: "mine" }] });
    expect(b.status, b.error).toBe(200);
    expect(b.rows.length).toBe(24);
    for (const row of b.rows) expect(Math.abs((row[9] as number) - (row[8] as number))).toBeLessThan(1e-9 * (row[8] as number));

    const r = await query({ op: "range", table: "trades", limit: 5, derived: [{ fn: "udf", name: "notional", args: ["price", "size"] }] });
    expect(r.status, r.error).toBe(200);
    expect(r.rows.length).toBe(5);
    for (const [, , price, size, notional] of r.rows as number[][]) expect(notional).toBe(price! * size!);
  });

  it("udf - SQL calls them over the HTTP API: an aggregate in GROUP BY and a scalar in a plain SELECT, equal to the built-ins", async () => {
    await waitFunctions(["myvwap", "notional"]);
    const sqlQuery = async (sql: string) => {
      const r = await post("/v1/query", sql, tok.reader!);
      return { status: r.status, ...((await r.json()) as { rows: unknown[][]; columns?: string[]; error?: string }) };
    };
    const g = await sqlQuery("SELECT sym, vwap(price, size) AS vw, myvwap(price, size) AS mine FROM trades GROUP BY sym");
    expect(g.status, g.error).toBe(200);
    expect(g.rows.length).toBe(3);
    for (const [, vw, mine] of g.rows as [string, number, number][]) expect(Math.abs(mine - vw)).toBeLessThan(1e-9 * vw);
    const r = await sqlQuery("SELECT ts, sym, price, size, notional(price, size) AS n FROM trades WHERE sym = 'IBM' LIMIT 4");
    expect(r.status, r.error).toBe(200);
    expect(r.rows.length).toBe(4);
    for (const [, , price, size, n] of r.rows as number[][]) expect(n).toBe(price! * size!);
    // A scalar with an aggregating form is refused by name, with the alternative.
    const bad = await sqlQuery("SELECT sym, notional(price, size) FROM trades GROUP BY sym");
    expect(bad.status).toBe(400);
    expect(bad.error).toMatch(/the scalar function notional\(\) with GROUP BY is not supported/);
  });

  it("udf - a function that does not parse is refused at apply by name, and the node keeps the applied ones", async () => {
    const bad = await pxctlApply(specWith([MYVWAP, NOTIONAL, { name: "broken", kind: "scalar", source: "function broken(x) { return x +; }" }]));
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/apply refused, nothing was changed:\s+tenant default function broken: the source does not parse: SyntaxError/);
    expect(tenantFunctions(node.catalog(), TENANT).map((f) => f.name)).toEqual(["myvwap", "notional"]);
  });

  it("udf - a looping function ends its query naming the function and the limit; the node keeps answering", async () => {
    const a = await pxctlApply(specWith([MYVWAP, NOTIONAL, SPIN]));
    expect(a.code, a.err).toBe(0);
    await waitFunctions(["myvwap", "notional", "spin"]);
    const t0 = Date.now();
    const s = await query({ op: "range", table: "trades", derived: [{ fn: "udf", name: "spin", args: ["price"] }] });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(s.status).toBe(429);
    expect(s.error).toMatch(/function spin \(tenant default, version 1\) was stopped: one call ran past its CPU-time limit of 300 ms per call \(limits\.cpuMsPerCall\)/);
    const g = await query({ op: "groupBy", table: "trades", by: [], aggregates: [{ fn: "udf", name: "myvwap", args: ["price", "size"] }, { fn: "count" }] });
    expect(g.status, g.error).toBe(200);
    expect(g.rows[0]![1]).toBe(1200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });
});
