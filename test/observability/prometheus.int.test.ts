// A real Prometheus (Debian's package) scrapes a running node (real nats-server
// and clickhouse-server) while ticks flow in and queries run; PromQL over its
// HTTP API must find the series the dashboards use: ingest rate, ack-latency
// buckets, a shard's P advancing, query latency per operator and tier, shard
// states. A second target serves a registry whose label value needs escaping:
// Prometheus' own parser must read it back unchanged, and promtool must accept
// the node's exposition text.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { Server } from "node:http";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { ProxistClient } from "../../src/api/index.js";
import { createToken } from "../../src/auth/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { NodeMetrics } from "../../src/node/metrics.js";
import { runPxctl } from "../../src/cli/commands.js";
import type { ProxistNode } from "../../src/node/node.js";
import { findBinary, startPrometheus } from "../../src/runtime/servers/prometheus.js";
import type { PrometheusServer } from "../../src/runtime/servers/prometheus.js";
import { query } from "../api/fixture.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";

const TENANT = "obs";
const SPEC = parseClusterSpec({
  tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
});
/** A node id with a quote, a backslash and a newline: every character the exposition format escapes. */
const ODD_ID = 'odd "node" \\ id\nline2';

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode;
let prom: PrometheusServer;
let odd: Server;

const INFRA = new URL("../../infra/", import.meta.url).pathname;
const ALERTS = `${INFRA}prometheus/alerts.yml`;
const DASHBOARD = `${INFRA}grafana/dashboards/proxist-cluster.json`;

/** promtool's exit code and output. */
function promtool(args: readonly string[], input?: string): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync(findBinary("promtool"), args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], ...(input === undefined ? {} : { input }) }) };
  } catch (e) {
    const x = e as { status: number; stdout?: string; stderr?: string };
    return { code: x.status, out: String(x.stdout ?? "") + String(x.stderr ?? "") };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(500);
  }
  throw new Error(`${what}: not seen within ${timeoutMs} ms${last === undefined ? "" : ` (last error: ${(last as Error).message})`}`);
}

beforeAll(async () => {
  findBinary("prometheus");
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
  node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, grpcPort: 0, sink: { retry: { maxMs: 500 } } }, SPEC);
  const oddMetrics = new NodeMetrics(ODD_ID);
  odd = createServer((_req, res) => void oddMetrics.text().then((t) => res.writeHead(200, { "content-type": oddMetrics.contentType }).end(t)));
  await new Promise<void>((r) => odd.listen(0, "127.0.0.1", () => r()));
  const oddPort = (odd.address() as { port: number }).port;
  prom = await startPrometheus({ targets: [`127.0.0.1:${node.httpPort}`, `127.0.0.1:${oddPort}`], ruleFiles: [ALERTS] });
}, 120_000);

afterAll(async () => {
  await prom?.stop();
  await new Promise((r) => (odd ? odd.close(r) : r(undefined)));
  await node?.stop();
  await f?.close();
  await chf?.close();
});

describe("observability - Prometheus scrapes a node", () => {
  it("PromQL finds ingest rate, ack-latency buckets, P advancing, query latency per operator and tier, shard states", async () => {
    const trades = SPEC.tenants[0]!.tables[0]!;
    const walk = new RandomWalk(symbolNames(20), 7, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 4 });
    const client = new ProxistClient(`127.0.0.1:${node.grpcPort!}`, credentials.createInsecure());
    const token = await createToken(f.nc, { tenant: TENANT, role: "reader" });
    let stop = false;
    // Ticks and queries keep flowing while Prometheus scrapes.
    const load = (async () => {
      while (!stop) {
        await Promise.all(Array.from({ length: 4 }, () => pub.publish(walk.trades(200, 100_000))));
        const r = await query(client, token, { op: "range", table: "trades", limit: 10 });
        expect(r.error).toBeUndefined();
        await query(client, token, { op: "lastBy", table: "trades" });
        await sleep(200);
      }
    })();
    try {
      const rate = await eventually("ingest rate > 0", async () => {
        const s = await prom.query(`sum(rate(px_ingest_rows_accepted_total{job="proxist"}[5s]))`);
        return (s[0]?.value ?? 0) > 0 ? s[0]!.value : undefined;
      });
      expect(rate).toBeGreaterThan(0);

      const buckets = await prom.query(`sum by (le) (px_ingest_ack_seconds_bucket{tenant="${TENANT}",table="trades"})`);
      expect(buckets.length).toBeGreaterThan(5);
      expect(buckets.find((b) => b.metric.le === "+Inf")!.value).toBeGreaterThan(0);
      const p99 = await prom.query(`histogram_quantile(0.99, sum by (le) (rate(px_ingest_ack_seconds_bucket[10s])))`);
      expect(p99[0]!.value).toBeGreaterThan(0);
      const wal = await prom.query(`sum(px_wal_append_seconds_count{tenant="${TENANT}"})`);
      expect(wal[0]!.value).toBeGreaterThan(0);

      // P of a shard advances as the sink persists: two readings apart in time.
      const pOf = async (): Promise<number | undefined> => {
        const s = await prom.query(`max(px_shard_persisted_lsn{tenant="${TENANT}",table="trades",bucket="0"})`);
        return (s[0]?.value ?? 0) > 0 ? s[0]!.value : undefined;
      };
      const p1 = await eventually("P of bucket 0 > 0", pOf);
      const p2 = await eventually("P of bucket 0 advancing", async () => {
        const p = await pOf();
        return p !== undefined && p > p1 ? p : undefined;
      });
      expect(p2).toBeGreaterThan(p1);

      const flushes = await eventually("sink flush histogram", async () => {
        const s = await prom.query(`sum(px_sink_flush_seconds_count{tenant="${TENANT}"})`);
        return (s[0]?.value ?? 0) > 0 ? s[0]!.value : undefined;
      });
      expect(flushes).toBeGreaterThan(0);
      const applyLag = await prom.query(`sum(px_shard_apply_lag_seconds_count{tenant="${TENANT}"})`);
      expect(applyLag[0]!.value).toBeGreaterThan(0);

      const queries = await eventually("query latency per operator", async () => {
        const s = await prom.query(`sum by (op, tier) (px_query_seconds_count{tenant="${TENANT}"})`);
        return s.some((x) => x.metric.op === "range") && s.some((x) => x.metric.op === "lastBy") ? s : undefined;
      });
      expect(queries.every((q) => ["hot", "cold", "fanout"].includes(q.metric.tier!))).toBe(true);

      const live = await prom.query(`sum by (state) (px_shard_state{tenant="${TENANT}"})`);
      expect(live.find((s) => s.metric.state === "running.live")?.value ?? live.find((s) => s.metric.state === "running.snapshotting")?.value).toBeGreaterThan(0);
      // pxctl top reads the same figures from the node directly.
      let topOut = "";
      const topCode = await runPxctl(["top", "--metrics", `http://127.0.0.1:${node.httpPort}/metrics`, "--interval", "1s", "--once"], {
        stdout: (t) => (topOut += t),
        stderr: () => {},
        readFile: async () => "",
        prompt: async () => "",
        env: {},
      });
      expect(topCode).toBe(0);
      expect(topOut).toMatch(new RegExp(`${TENANT}/trades/0\\s+running\\.(live|snapshotting)`));
      // pxctl status: the control plane's view, and with --metrics the same figures as top.
      let statusOut = "";
      const metricsUrl = `http://127.0.0.1:${node.httpPort}/metrics`;
      const io = { stdout: (t: string) => (statusOut += t), stderr: () => {}, readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: f.server.auth!.credsPath("admin") } };
      expect(await runPxctl(["--nats", f.server.url, "status", "--metrics", metricsUrl, "--interval", "1s", "-o", "json"], io)).toBe(0);
      const status = JSON.parse(statusOut) as { shards: { shard: string }[]; metrics: { nodes: { url: string; ingestTicksPerS: number }[]; shards: { shard: string; state: string; rows: number }[] } };
      expect(status.shards.length).toBeGreaterThan(0);
      expect(status.metrics.nodes.map((n) => n.url)).toEqual([metricsUrl]);
      expect(status.metrics.nodes[0]!.ingestTicksPerS).toBeGreaterThan(0);
      expect(status.metrics.shards.find((s) => s.shard === `${TENANT}/trades/0`)?.rows).toBeGreaterThan(0);
      statusOut = "";
      expect(await runPxctl(["--nats", f.server.url, "status", "--metrics", metricsUrl, "--interval", "1s"], io)).toBe(0);
      expect(statusOut).toMatch(/^leader: /);
      expect(statusOut).toMatch(/metrics \(over 1 s\)\nNODE\s+INGEST TICKS\/S/);
      const nodes = await prom.query(`count(px_node_info)`);
      expect(nodes[0]!.value).toBe(2);
      // No symbol label anywhere: label sets stay bounded.
      const symbolSeries = await prom.query(`count({__name__=~"px_.*", symbol!=""})`);
      expect(symbolSeries).toEqual([]);
    } finally {
      stop = true;
      await load;
      client.close();
    }
  }, 180_000);

  it("label values with quotes, backslashes and newlines are escaped: Prometheus reads them back, promtool accepts the text", async () => {
    const info = await eventually("the odd target scraped", async () => {
      const s = await prom.query(`px_node_info{node_id!~"${node.nodeId}"}`);
      return s.length > 0 ? s : undefined;
    });
    expect(info[0]!.metric.node_id).toBe(ODD_ID);
    const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    // promtool reads the text with Prometheus' parser: exit 0 (lint remarks only) or 3 (lint problems), never a parse error (1).
    const { code, out } = promtool(["check", "metrics"], text);
    expect(out).not.toMatch(/error while linting|parse/i);
    expect([0, 3]).toContain(code);
    // promtool's lint problems, if any, are naming remarks: none may be about px_ metrics.
    expect(out.split("\n").filter((l) => l.startsWith("px_"))).toEqual([]);
  }, 90_000);
});

interface Panel {
  readonly title: string;
  readonly type: string;
  readonly targets?: readonly { readonly expr: string }[];
}

describe("observability - infra/ dashboards and alerts against the real Prometheus", () => {
  it("infra - promtool accepts the config and the rules; every alert rule evaluates without error", async () => {
    const rules = promtool(["check", "rules", ALERTS]);
    expect(rules.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(rules.code).toBe(0);
    const config = promtool(["check", "config", `${INFRA}prometheus/prometheus.yml`]);
    expect(config.out).toMatch(/is valid prometheus config/);
    expect(config.code).toBe(0);
    const groups = await eventually("every rule evaluated", async () => {
      const g = await prom.rules();
      const all = g.flatMap((x) => x.rules);
      return all.length > 0 && all.every((r) => r.health !== "unknown") ? g : undefined;
    });
    const all = groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(8);
    expect(all.filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.lastError ?? r.health}`)).toEqual([]);
  }, 90_000);

  const CLUSTER_ONLY = /^px_(controller|agent)_/;
  it("infra - every dashboard query parses, evaluates and names only metrics a node exports; the health panels show data", async () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: Panel[] };
    const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    const exported = new Set<string>(["up"]);
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exported.add(m[1]!);
      if (m[2] === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) exported.add(m[1]! + suffix);
    }
    // Grafana's variables, as Grafana substitutes them: every tenant, a rate window.
    const concrete = (expr: string): string => expr.replaceAll("$__rate_interval", "30s").replaceAll("$tenant", ".*");
    const empty: string[] = [];
    const clusterOnly = new Set<string>();
    let queries = 0;
    for (const p of dash.panels.filter((x) => x.type !== "row")) {
      expect(p.targets?.length, `panel ${p.title} has queries`).toBeGreaterThan(0);
      let rows = 0;
      for (const t of p.targets ?? []) {
        const names = [...t.expr.matchAll(/\b(px_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
        // The control plane's families exist only in a cluster (--shards assigned): cluster.int.test.ts checks those panels' names.
        expect(names.filter((n) => !exported.has(n) && !CLUSTER_ONLY.test(n)), `panel ${p.title}: ${t.expr}`).toEqual([]);
        if (names.some((n) => CLUSTER_ONLY.test(n))) clusterOnly.add(p.title);
        rows += (await prom.query(concrete(t.expr))).length;
        queries++;
      }
      if (rows === 0) empty.push(p.title);
    }
    expect(queries).toBeGreaterThan(15);
    // Nothing failed in this run and no WAL limit is set: only the error panel may be empty.
    expect(empty.filter((t) => t !== "Errors" && !clusterOnly.has(t))).toEqual([]);
  }, 90_000);
});
