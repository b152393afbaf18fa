// The web console in a real browser: Debian's chromium driven by
// playwright-core against a real node (nats-server, no ClickHouse) serving the
// vite-built bundle. Logs in (a wrong token shows the node's error), runs SQL
// and checks the table's rows, draws bars as candlesticks (counted on the
// canvas), shows the cluster page with the node and its shards, and sees a
// newly ingested tick flash on the live board. Screenshots: test/.artifacts/console/.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { createToken } from "../../src/auth/index.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = resolve(import.meta.dirname, "../..");
const SHOTS = join(ROOT, "test/.artifacts/console");
const SPEC = parseClusterSpec({
  tenants: [{ name: "desk", tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] }] }],
});
const T = Date.UTC(2024, 0, 2, 14, 30) * 1000;
const STEP_US = 5_000_000;
const SYMS = ["AAPL", "MSFT", "IBM"] as const;
/** 60 ticks per symbol, 5 s apart (5 minutes: five 1 m bars); AAPL's price climbs 0.5 a tick. */
const priceOf = (s: number, i: number): number => (s === 0 ? 100 + i * 0.5 : 200 + s * 50 + Math.sin(i / 4) * 5 + (i % 7));
const BULK = 20_000;


let nats: NatsFixture;
let node: ProxistNode;
let base: string;
let reader: string;
let writer: string;
let ctx: BrowserContext;
let page: Page;
let profile: string;

async function ingest(lines: string[]): Promise<void> {
  const r = await fetch(`${base}/v1/ingest/trades`, { method: "POST", body: lines.join("\n"), headers: { authorization: `Bearer ${writer}`, "content-type": "application/x-ndjson" } });
  expect(r.status, await r.clone().text()).toBe(200);
}

async function count(): Promise<number> {
  const r = await fetch(`${base}/v1/query`, { method: "POST", body: "SELECT count(*) FROM trades", headers: { authorization: `Bearer ${reader}` } });
  const j = (await r.json()) as { rows: number[][] };
  return j.rows.reduce((n, row) => n + Number(row.at(-1)), 0);
}

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`) });

/** Pixels of the chart's canvases in the candles' up or down colour (lightweight-charts draws on several canvases). */
const CANDLE_PIXELS = `(() => {
  let n = 0;
  for (const c of document.querySelectorAll("#chart canvas")) {
    if (!c.width || !c.height) continue;
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
      if ((Math.abs(r - 0x26) < 12 && Math.abs(g - 0xa6) < 12 && Math.abs(b - 0x9a) < 12) || (Math.abs(r - 0xef) < 12 && Math.abs(g - 0x53) < 12 && Math.abs(b - 0x50) < 12)) n++;
    }
  }
  return n;
})()`;

describe("console - in chromium", () => {
  beforeAll(async () => {
    // A missing browser is a missing install step, not a reason to skip: fail and say how to get it.
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium) or apt-get install chromium`);
    // The bundle the node serves (built when missing or older than src/console).
    execFileSync("bash", [join(ROOT, "scripts/console.sh")], { cwd: ROOT, stdio: "inherit" });
    rmSync(SHOTS, { recursive: true, force: true }); // this run's screenshots only
    mkdirSync(SHOTS, { recursive: true });
    nats = await natsFixture();
    node = await nodeOn(nats.server, nats.nc, {}, SPEC);
    base = `http://127.0.0.1:${node.httpPort}`;
    reader = await createToken(nats.nc, { tenant: "desk", role: "reader" });
    writer = await createToken(nats.nc, { tenant: "desk", role: "writer" });
    const lines: string[] = [];
    for (let i = 0; i < 60; i++) SYMS.forEach((sym, s) => lines.push(JSON.stringify({ sym, ts: T + i * STEP_US, price: priceOf(s, i), size: 100 + i })));
    for (let i = 0; i < BULK; i++) lines.push(JSON.stringify({ sym: "BULK", ts: T + i * 1000, price: 50 + (i % 100) / 10, size: 1 }));
    await ingest(lines);
    const deadline = Date.now() + 30_000;
    while ((await count()) !== 180 + BULK) {
      if (Date.now() > deadline) throw new Error(`the node holds ${await count()} ticks, want ${180 + BULK}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    profile = mkdtempSync(join(tmpdir(), "px-chromium-"));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1400, height: 900 },
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(20_000);
  }, 120_000);

  afterAll(async () => {
    await ctx?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await node?.stop();
    await nats?.close();
  });

  it("console - the node serves the bundle at / with content types and caching", async () => {
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toMatch(/^text\/html/);
    expect(index.headers.get("cache-control")).toBe("no-cache");
    const js = /src="(\/assets\/[^"]+\.js)"/.exec(await index.text())?.[1];
    expect(js).toBeDefined();
    const asset = await fetch(`${base}${js}`);
    expect(asset.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(asset.headers.get("cache-control")).toContain("immutable");
    // The API keeps its routes and its own 404s.
    expect((await fetch(`${base}/assets/nope.js`)).status).toBe(404);
    expect((await fetch(`${base}/v1/query`, { method: "POST", body: "SELECT * FROM trades" })).status).toBe(401);
  });

  it("console - GET /v1/cluster: pxctl status's view, this node's shards with P and H, ingest and WAL", async () => {
    type Cluster = { node: { id: string; ingest: { acceptedRows: number }; wal: { tenant: string; bytes: number }[]; shards: { table: string; horizonMicros: number; persistedLsn: number }[] }; status: { nodes: { id: string }[]; shards: { shard: string; state: string; owner: string }[] }; statusError: string | null };
    const c = (await (await fetch(`${base}/v1/cluster`)).json()) as Cluster;
    expect(c.statusError).toBeNull();
    expect(c.node.id).toBe(node.nodeId);
    expect(c.node.ingest.acceptedRows).toBeGreaterThanOrEqual(180 + BULK);
    expect(c.node.wal.find((w) => w.tenant === "desk")!.bytes).toBeGreaterThan(0);
    expect(c.node.shards.map((s) => [s.table, s.horizonMicros, s.persistedLsn])).toEqual([["trades", 0, 0], ["trades", 0, 0]]);
    expect(c.status.shards.map((s) => [s.shard, s.owner])).toEqual([["desk.trades.0", node.nodeId], ["desk.trades.1", node.nodeId]]);
    expect(c.status.nodes.map((n) => n.id)).toEqual([node.nodeId]);
  });

  it("console - POST /v1/chart passes the query's errors on as they are", async () => {
    const bad = await fetch(`${base}/v1/chart`, { method: "POST", body: "SELECT * FROM nope", headers: { authorization: `Bearer ${reader}` } });
    expect(bad.status).toBe(404);
    expect(((await bad.json()) as { error: string }).error).toMatch(/nope/);
    expect((await fetch(`${base}/v1/chart?points=3`, { method: "POST", body: "SELECT * FROM trades", headers: { authorization: `Bearer ${reader}` } })).status).toBe(400);
  });

  it("console - a wrong token shows the node's error and stays on the login", async () => {
    await page.goto(base);
    // Well formed, but its secret is not the one the node stored a hash of.
    await page.fill("#token", `${reader.slice(0, -4)}${reader.endsWith("AAAA") ? "BBBB" : "AAAA"}`);
    await page.click("#login");
    await expect.poll(() => page.locator("#login-error").innerText()).toMatch(/401|token/i);
    await shot("01-wrong-token");
    expect(await page.locator("#editor").count()).toBe(0);
  });

  it("console - log in, run SQL, the table shows the rows", async () => {
    await page.fill("#token", reader);
    await page.click("#login");
    await page.waitForSelector("#editor");
    expect(await page.evaluate("sessionStorage.getItem('proxist.token')")).toBe(reader);
    await page.fill("#editor", "SELECT sym, ts, price, size FROM trades WHERE sym IN ('AAPL') ORDER BY ts LIMIT 5");
    await page.press("#editor", "Control+Enter");
    await expect.poll(() => page.locator("#status").innerText()).toMatch(/^5 rows/);
    const rows = await page.locator("#table-pane .vt-row").evaluateAll((rs) => rs.map((r) => [...r.children].map((c) => c.textContent)));
    expect(rows).toEqual([0, 1, 2, 3, 4].map((i) => ["AAPL", new Date((T + i * STEP_US) / 1000).toISOString().replace("T", " ").replace("Z", "000"), String(priceOf(0, i)), String(100 + i)]));
    await shot("02-sql-table");
  });

  it("console - a large result is virtualized: 20,000 rows, a screenful in the DOM", async () => {
    await page.fill("#editor", "SELECT sym, ts, price FROM trades WHERE sym IN ('BULK')");
    await page.press("#editor", "Control+Enter");
    await expect.poll(() => page.locator("#status").innerText()).toMatch(/^20,000 rows/);
    expect(await page.locator("#table-pane .vt").getAttribute("data-rows")).toBe(String(BULK));
    expect(await page.locator("#table-pane .vt-row").count()).toBeLessThan(100);
    await page.locator("#table-pane .vt-scroll").evaluate((el) => (el.scrollTop = 24 * 15_000));
    await expect.poll(() => page.locator("#table-pane .vt-row").evaluateAll((rs) => rs.some((r) => r.getAttribute("style")?.includes(`top: ${24 * 15_000}px`)))).toBe(true);
    // The chart of it comes downsampled from the node: at most 2000 points.
    await page.click("#tab-chart");
    await expect.poll(() => page.locator("#chart-note").innerText()).toMatch(/points drawn of 20,000 rows \(downsampled on the node/);
    // Negative control for the canvas count below: a line chart has no candle-coloured pixels.
    expect(await page.evaluate(CANDLE_PIXELS)).toBe(0);
    await shot("03-virtualized-and-downsampled");
  });

  it("console - a bars query draws candlesticks", async () => {
    await page.fill("#editor", "SELECT * FROM trades WHERE sym IN ('AAPL') SAMPLE BY 1m");
    await page.press("#editor", "Control+Enter");
    await expect.poll(() => page.locator("#status").innerText()).toMatch(/^5 rows/);
    await expect.poll(() => page.locator("#chart").getAttribute("data-kind")).toBe("candles");
    await expect.poll(() => page.evaluate(CANDLE_PIXELS), { timeout: 15_000 }).toBeGreaterThan(500);
    await shot("04-candles");
  });

  it("console - a JSON query runs, and CSV downloads through POST /v1/query; Parquet downloads or shows the node's answer", async () => {
    await page.fill("#editor", '{"op": "lastBy", "table": "trades"}');
    await page.press("#editor", "Control+Enter");
    await expect.poll(() => page.locator("#status").innerText()).toMatch(/^4 rows/);
    await page.click("#tab-table");
    expect(await page.locator("#table-pane .vt-row").evaluateAll((rs) => rs.map((r) => r.firstElementChild?.textContent).sort())).toEqual(["AAPL", "BULK", "IBM", "MSFT"]);
    const [csv] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
    const text = readFileSync((await csv.path())!, "utf8");
    expect(text.split("\n")[0]).toBe("sym,ts,price,size");
    expect(text).toContain(`AAPL,${new Date((T + 59 * STEP_US) / 1000).toISOString().replace("Z", "000Z")},${priceOf(0, 59)},159`);
    // Parquet comes from the node's Accept: application/vnd.apache.parquet; a node without it answers 406, shown as it is.
    // Whichever comes first; the other one's wait ends quietly (caught) when its timeout passes.
    const downloaded = page.waitForEvent("download").then(async (d) => readFileSync((await d.path())!).subarray(0, 4).toString("latin1"), () => new Promise<never>(() => {}));
    const refused = page.locator("#error .error").waitFor().then(() => page.locator("#error").innerText(), () => new Promise<never>(() => {}));
    await page.click("#parquet");
    const outcome = await Promise.race([downloaded, refused]);
    expect(outcome).toMatch(/^PAR1$|406.*parquet/i);
    await shot("05-json-and-downloads");
  });

  it("console - the cluster page shows the node and its shards live", async () => {
    await page.click("#nav-cluster");
    await expect.poll(() => page.locator("#kpi-node").innerText()).toContain(node.nodeId);
    await expect.poll(() => page.locator("#shards tbody tr").count()).toBe(2);
    const text = await page.locator("#shards").innerText();
    expect(text).toContain("desk.trades.0");
    expect(text).toContain("desk.trades.1");
    expect(await page.locator("#shard-states .badge").first().getAttribute("data-state")).toMatch(/running/);
    expect(await page.locator("#wal").innerText()).toContain("desk");
    await shot("06-cluster");
  });

  it("console - a new tick shows on the live board and flashes", async () => {
    await page.click("#nav-live");
    await expect.poll(() => page.locator('#board tr[data-sym="AAPL"]').innerText()).toContain(String(priceOf(0, 59)));
    await ingest([JSON.stringify({ sym: "AAPL", ts: T + 60 * STEP_US, price: 999.25, size: 7 })]);
    await expect.poll(() => page.locator('#board tr[data-sym="AAPL"]').innerText(), { timeout: 15_000 }).toContain("999.25");
    expect(await page.locator('#board tr[data-sym="AAPL"] td.up').count()).toBeGreaterThan(0);
    // The ticking chart of the first symbol drew on its canvas.
    expect(await page.locator("#live-chart canvas").count()).toBeGreaterThan(0);
    expect(await page.locator("#live-title").innerText()).toContain("AAPL price");
    await shot("07-live");
  });
});
