// Parquet answers of POST /v1/query (Accept: application/vnd.apache.parquet)
// and `pxctl query -o parquet`, against a real nats-server and node: pyarrow
// reads the file and it equals the JSON answer of the same query; times stay
// INT64 TIMESTAMP(MICROS); a non-table answer (EXPLAIN) is refused by name.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { createToken } from "../../src/auth/index.js";
import type { ProxistNode } from "../../src/node/node.js";
import { PYTHON, havePython } from "../api/python.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";

const SPEC = parseClusterSpec({
  tenants: [{ name: "desk", tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] }] }],
});
const T = Date.UTC(2024, 0, 2, 14, 30) * 1000;
const READ = fileURLToPath(new URL("./parquet_read.py", import.meta.url));
const PARQUET = "application/vnd.apache.parquet";
const SQL = "SELECT * FROM trades WHERE sym IN ('AAPL', 'MSFT') ORDER BY ts";

let nats: NatsFixture;
let node: ProxistNode;
let base: string;
let dir: string;
const tok: Record<string, string> = {};

const query = (body: string, accept: string) => fetch(`${base}/v1/query`, { method: "POST", body, headers: { authorization: `Bearer ${tok.reader}`, accept } });

interface ParquetRead {
  schema: string[];
  parquet: Record<string, { physical: string; logical: string }>;
  rows: unknown[][];
  num_rows: number;
}

function readParquet(bytes: Uint8Array): Promise<ParquetRead> {
  const path = join(dir, `r${Math.random().toString(36).slice(2)}.parquet`);
  writeFileSync(path, bytes);
  return new Promise((resolve, reject) =>
    execFile(PYTHON, [READ, path], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as ParquetRead))),
  );
}

function pxctl(args: readonly string[]): Promise<{ code: number | null; out: Buffer; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["--import", "tsx", "src/cli/pxctl.ts", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PX_TOKEN: tok.reader } });
    const out: Buffer[] = [];
    let err = "";
    p.stdout.on("data", (d: Buffer) => out.push(d));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.once("exit", (code) => resolve({ code, out: Buffer.concat(out), err }));
  });
}

beforeAll(async () => {
  if (!havePython()) throw new Error("the Python venv is missing: run `bash scripts/setup.sh` (it creates .venv with pyarrow)");
  dir = mkdtempSync(join(tmpdir(), "px-parquet-"));
  nats = await natsFixture();
  node = await nodeOn(nats.server, nats.nc, { grpcPort: 0 }, SPEC);
  base = `http://127.0.0.1:${node.httpPort}`;
  for (const role of ["reader", "writer"] as const) tok[role] = await createToken(nats.nc, { tenant: "desk", role });
  const syms = ["AAPL", "MSFT", "IBM"];
  const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ sym: syms[i % 3], ts: T + i * 1000 + 7, price: 100 + i / 8, size: i + 1 })).join("\n");
  const deadline = Date.now() + 30_000;
  // The node accepts ingest once its gateway is up; shards apply acked rows just after.
  for (;;) {
    const r = await fetch(`${base}/v1/ingest/trades`, { method: "POST", body: lines, headers: { authorization: `Bearer ${tok.writer}`, "content-type": "application/x-ndjson" } });
    if (r.status === 200) break;
    if (Date.now() > deadline) throw new Error(`ingest answered ${r.status}: ${await r.text()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  for (;;) {
    const r = (await (await query("SELECT count(*) FROM trades", "application/json")).json()) as { rows?: number[][] };
    if (r.rows?.[0]?.[0] === 300) break;
    if (Date.now() > deadline) throw new Error(`trades holds ${JSON.stringify(r)}, want 300 rows`);
    await new Promise((res) => setTimeout(res, 50));
  }
}, 90_000);

afterAll(async () => {
  await node?.stop();
  await nats?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("http api - parquet", () => {
  it("parquet - Accept: application/vnd.apache.parquet answers a file pyarrow reads, equal to the JSON answer", async () => {
    const r = await query(SQL, PARQUET);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe(PARQUET);
    expect(r.headers.get("proxist-complete")).toBe("true");
    const got = await readParquet(new Uint8Array(await r.arrayBuffer()));
    const json = (await (await query(SQL, "application/json")).json()) as { columns: { name: string }[]; rows: unknown[][] };
    expect(got.num_rows).toBe(200);
    expect(got.rows).toEqual(json.rows);
    expect(got.schema).toEqual(["sym:dictionary<values=string, indices=int32, ordered=0>", "ts:timestamp[us, tz=UTC]", "price:double", "size:int64"]);
    expect(got.parquet.ts).toEqual({ physical: "INT64", logical: "Timestamp(isAdjustedToUTC=true, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)" });
  });

  it("parquet - an empty result is a file with the columns and no rows; ?format=parquet works too", async () => {
    const r = await fetch(`${base}/v1/query?format=parquet`, { method: "POST", body: "SELECT * FROM trades WHERE sym = 'NONE'", headers: { authorization: `Bearer ${tok.reader}` } });
    expect(r.status).toBe(200);
    const got = await readParquet(new Uint8Array(await r.arrayBuffer()));
    expect([got.num_rows, got.schema.length]).toEqual([0, 4]);
  });

  it("parquet - EXPLAIN (a plan, not a table) asked as Parquet is 406 saying to ask for JSON", async () => {
    const r = await query(`EXPLAIN ${SQL}`, PARQUET);
    expect(r.status).toBe(406);
    expect(await r.text()).toMatch(/EXPLAIN answers a plan, not a table, so it has no Parquet form; ask for it with Accept: application\/json/);
  });

  it("pxctl - query -o parquet writes the file to a pipe or to --out", { timeout: 60_000 }, async () => {
    const piped = await pxctl(["query", "--url", base, "-o", "parquet", SQL]);
    expect(piped.code, piped.err).toBe(0);
    expect(piped.out.subarray(0, 4).toString()).toBe("PAR1");
    const json = (await (await query(SQL, "application/json")).json()) as { rows: unknown[][] };
    expect((await readParquet(piped.out)).rows).toEqual(json.rows);
    const file = join(dir, "out.parquet");
    const written = await pxctl(["query", "--url", base, "-o", "parquet", "--out", file, SQL]);
    expect(written.code, written.err).toBe(0);
    expect(written.out.length).toBe(0);
    expect((await readParquet(readFileSync(file))).rows).toEqual(json.rows);
  });
});
