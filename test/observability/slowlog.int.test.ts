// The slow-query log end to end: a node with a ClickHouse and a threshold of 0
// records every query over the gRPC API in px_system.query_log with its plan
// (hot buckets, cold reads with P and H), stages, rows and caller; `pxctl
// queries --slow` shows it. A tenant with a high threshold records nothing.
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { ProxistClient } from "../../src/api/index.js";
import { createToken } from "../../src/auth/index.js";
import { runPxctl } from "../../src/cli/commands.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import type { ProxistNode } from "../../src/node/node.js";
import { query } from "../api/fixture.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";

const table = { name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] };
const SPEC = parseClusterSpec({ tenants: [{ name: "slow", tables: [table] }, { name: "fast", tables: [table] }] });

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode;

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
  node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, grpcPort: 0, slowQuery: { defaultMs: 60_000, perTenantMs: { slow: 0 }, flushMs: 100 } }, SPEC);
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await f?.close();
  await chf?.close();
});

async function pxctl(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runPxctl(args, { stdout: (t) => (out += t), stderr: (t) => (err += t), readFile: async () => "", prompt: async () => "", env: {} });
  return { code, out, err };
}

describe("slow-query log", () => {
  it("slow queries - a query over its tenant's threshold lands in px_system.query_log with its plan, and pxctl queries --slow shows it", async () => {
    const spec = SPEC.tenants[0]!.tables[0]!;
    const walk = new RandomWalk(symbolNames(10), 3, 1.75e15);
    const lsn = new Map<string, number>();
    for (const tenant of ["slow", "fast"]) {
      const pub = new TickPublisher(f.nc, { tenant, spec, maxInFlight: 2 });
      lsn.set(tenant, Number((await pub.publish(walk.trades(500, 10_000))).lastLsn));
    }
    const client = new ProxistClient(`127.0.0.1:${node.grpcPort!}`, credentials.createInsecure());
    try {
      for (const tenant of ["slow", "fast"]) {
        const token = await createToken(f.nc, { tenant, role: "reader" });
        const r = await query(client, token, { op: "range", table: "trades", minLsn: lsn.get(tenant) });
        expect(r.error).toBeUndefined();
      }
    } finally {
      client.close();
    }
    const ch = `http://127.0.0.1:${chf.server.httpPort}`;
    let json: Record<string, unknown>[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const r = await pxctl("queries", "--slow", "--since", "1h", "--clickhouse", ch, "-o", "json");
      expect(r.err).toBe("");
      json = JSON.parse(r.out) as Record<string, unknown>[];
      if (json.length > 0) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    // Only tenant "slow" (threshold 0) is recorded; "fast" stays under its 60 s.
    expect(json.map((r) => r.tenant)).toEqual(["slow"]);
    const row = json[0]!;
    expect(JSON.parse(row.query as string)).toMatchObject({ op: "range", table: "trades" });
    const plan = JSON.parse(row.plan as string) as { table: string; tier: string; hotBuckets: number[]; coldReads: unknown[] };
    expect(plan).toMatchObject({ table: "trades" });
    expect([...plan.hotBuckets].sort()).toEqual([0, 1]);
    expect(["hot", "cold"]).toContain(plan.tier);
    const stages = JSON.parse(row.stages as string) as Record<string, number>;
    expect(stages.totalMs).toBeGreaterThanOrEqual(0);
    expect(Object.keys(stages)).toEqual(expect.arrayContaining(["firstBatchMs", "coldMs", "fanoutMs", "hotAndOperatorMs", "totalMs"]));
    expect(row.resultRows).toBeGreaterThan(0);
    expect(row.caller).toMatch(/^grpc Query, token \S+, peer /);
    expect(row.node).toBe(node.nodeId);

    const table = await pxctl("queries", "--slow", "--clickhouse", ch);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/ slow {2}\d+\.\d ms {2}\d+ rows \(\d+ cold\)/);
    expect(table.out).toContain("plan:");
    const bad = await pxctl("queries", "--clickhouse", ch);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/only the slow-query log is kept; run pxctl queries --slow/);
  }, 120_000);
});
