// Observability of a cluster (two in-process nodes, --shards assigned, sharing
// this process's tracer and in-memory exporter):
// - tracing across nodes: a query asked of one node whose table has shards on
//   another yields, in one trace, the coordinator's px.query span, a
//   px.query.part span per part sent to the other node, and that node's
//   px.query.part.serve span as the part span's child (the traceparent travels
//   in the NATS request);
// - the control plane's metrics: exactly one node reports the leader role, with
//   its term, won elections and the assignment writes that placed the shards.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentials } from "@grpc/grpc-js";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { ProxistClient } from "../../src/api/index.js";
import { createToken } from "../../src/auth/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { startNode } from "../../src/node/node.js";
import type { ProxistNode } from "../../src/node/node.js";
import { startTracing } from "../../src/node/obs/index.js";
import { query } from "../api/fixture.js";
import { applyAndWait, natsFixture } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";

const TENANT = "ftr";
const SPEC = parseClusterSpec({ tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 8, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });
const CONTROL = { heartbeatMs: 200, nodeTimeoutMs: 60_000, reconcileMs: 200, leaseMs: 1_000 };

let f: NatsFixture;
const nodes: ProxistNode[] = [];
const exporter = new InMemorySpanExporter();
let stopTracing: (() => Promise<void>) | undefined;

beforeAll(async () => {
  f = await natsFixture();
  await applyAndWait(f.nc, SPEC);
  for (const id of ["n1", "n2"]) nodes.push(await startNode({ natsUrl: f.server.url, nodeId: id, shards: "assigned", grpcPort: 0, control: CONTROL, log: () => {} }));
  const deadline = Date.now() + 90_000;
  // Both nodes hold live shards of the table (rendezvous placement of 8 shards over 2 nodes).
  for (;;) {
    const per = nodes.map((n) => n.shards.status().filter((s) => s.tenant === TENANT && /running\.(live|snapshotting)/.test(s.state)).length);
    if (per[0]! + per[1]! === 8 && per.every((k) => k > 0)) break;
    if (Date.now() > deadline) throw new Error(`shards not live on both nodes: ${per.join(", ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const p = new TickPublisher(f.nc, { tenant: TENANT, spec: SPEC.tenants[0]!.tables[0]! });
  const walk = new RandomWalk(symbolNames(40), 3, 1.75e15);
  for (let i = 0; i < 5; i++) await p.publish(walk.trades(200, 100_000));
  stopTracing = startTracing({ sampleRatio: 1, exporter });
}, 180_000);

afterAll(async () => {
  await stopTracing?.();
  for (const n of nodes) await n.stop().catch(() => {});
  await f?.close();
});

describe("observability - two nodes", () => {
  it("tracing - a fan-out query yields the coordinator's part span per remote part and the owner's serve span in the same trace", async () => {
    const client = new ProxistClient(`127.0.0.1:${nodes[0]!.grpcPort!}`, credentials.createInsecure());
    try {
      const r = await query(client, await createToken(f.nc, { tenant: TENANT, role: "reader" }), { op: "lastBy", table: "trades" });
      expect(r.error).toBeUndefined();
      expect(r.rows).toBe(40);
    } finally {
      client.close();
    }
    const spans = exporter.getFinishedSpans();
    const q = spans.find((s) => s.name === "px.query");
    expect(q?.attributes["px.tier"]).toBe("fanout");
    const traceId = q!.spanContext().traceId;
    const parts = spans.filter((s) => s.name === "px.query.part" && s.spanContext().traceId === traceId);
    expect(parts.length).toBeGreaterThan(0);
    for (const part of parts) {
      expect(part.parentSpanContext?.spanId).toBe(q!.spanContext().spanId);
      expect(part.attributes["px.node"]).toBe("n2");
      const serve = spans.filter((s) => s.name === "px.query.part.serve" && s.parentSpanContext?.spanId === part.spanContext().spanId);
      expect(serve).toHaveLength(1);
      expect(serve[0]!.spanContext().traceId).toBe(traceId);
      expect(serve[0]!.attributes).toMatchObject({ "px.node": "n2", "px.tenant": TENANT, "px.table": "trades", "px.buckets": part.attributes["px.buckets"] });
    }
  }, 60_000);

  it("metrics - the control plane: one leader with its term and elections, the assignment writes that placed every shard", async () => {
    const scrape = async (n: ProxistNode): Promise<Map<string, number>> => {
      const text = await (await fetch(`http://127.0.0.1:${n.httpPort}/metrics`)).text();
      const out = new Map<string, number>();
      for (const line of text.split("\n")) {
        const m = /^(px_(?:controller|agent)_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
        if (m) out.set(m[1]!, Number(m[2]));
      }
      return out;
    };
    const [a, b] = await Promise.all(nodes.map(scrape));
    const leaders = [a!, b!].filter((m) => m.get('px_controller_role{role="leader"}') === 1);
    expect(leaders).toHaveLength(1);
    const follower = [a!, b!].find((m) => m !== leaders[0])!;
    expect(follower.get('px_controller_role{role="follower"}')).toBe(1);
    expect(follower.get("px_controller_leader_term")).toBe(0);
    const l = leaders[0]!;
    expect(l.get("px_controller_leader_term")).toBeGreaterThan(0);
    expect(l.get("px_controller_elections_total")).toBeGreaterThanOrEqual(1);
    // Every one of the 8 shards was placed by a leader's write (a lead that changed hands splits the count).
    expect((a!.get("px_controller_assignment_writes_total") ?? 0) + (b!.get("px_controller_assignment_writes_total") ?? 0)).toBeGreaterThanOrEqual(8);
    for (const m of [a!, b!]) expect([...m.entries()].filter(([k, v]) => k.startsWith("px_agent_phase{") && v === 1)).toHaveLength(1);
    // The dashboard's control-plane panels name only these families (the single-node Prometheus test cannot see them).
    const dash = JSON.parse(readFileSync(fileURLToPath(new URL("../../infra/grafana/dashboards/proxist-cluster.json", import.meta.url)), "utf8")) as { panels: { targets?: { expr: string }[] }[] };
    const exported = new Set([...a!.keys(), ...b!.keys()].map((k) => k.split("{")[0]!));
    const named = dash.panels.flatMap((p) => p.targets ?? []).flatMap((t) => [...t.expr.matchAll(/\b(px_(?:controller|agent)_[a-z0-9_]+)\b/g)].map((m) => m[1]!));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((n) => !exported.has(n))).toEqual([]);
  }, 60_000);
});
