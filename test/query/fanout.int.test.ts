// Cluster-wide queries on a real nats-server: three in-process Proxist nodes in
// `--shards assigned` mode share two tables whose shards the control plane
// spreads over them (trades 6 shards, quotes 4: join sides route differently).
// Every operator asked of every node equals the answer of a reference node
// holding every shard (same WAL, same LSNs). A node whose connection dies
// (its assignments stay until it times out) makes answers incomplete with a
// note naming each of its shards, and UNAVAILABLE under consistency "complete".
// A symbol list too large for one NATS message is refused with the sizes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createInbox, headers } from "@nats-io/transport-node";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { HDR_PART_LAST, HDR_PART_SEQ, queryCancelSubject, queryPartSubject } from "../../protocols/subjects.js";
import { TickPublisher } from "../../src/client/publisher.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import { queryEngineOf } from "../../src/node/api.js";
import type { QueryError } from "../../protocols/errors.js";
import { runPart } from "../../src/node/fanout.js";
import { startNode } from "../../src/node/node.js";
import type { ProxistNode } from "../../src/node/node.js";
import { chunks, encodePartReply } from "../../src/query/index.js";
import type { PartRequest, ProxistQueryEngine } from "../../src/query/index.js";
import { natsFixture, applyAndWait } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { stampFunctions } from "../../src/udf/index.js";
import { SLIDING_VWAP_SOURCE } from "../udf/sources.js";
import { rng } from "./fixture.js";
import { diffRows, outRows } from "./oracle.js";

const TENANT = "fan";
const SPEC = parseClusterSpec({
  tenants: [
    {
      name: TENANT,
      tables: [
        { name: "trades", shards: 6, columns: [{ name: "price", type: "float64" }, { name: "size", type: "int64" }] },
        { name: "quotes", shards: 4, columns: [{ name: "bid", type: "float64" }, { name: "ask", type: "float64" }] },
      ],
      // User-defined functions (issue 17): an aggregate with merge and retract, and a scalar.
      functions: [
        { name: "slidevwap", kind: "aggregate", source: SLIDING_VWAP_SOURCE },
        { name: "notional", kind: "scalar", source: "function notional(price, size) { return price * size; }" },
      ],
    },
  ],
});
const spec = (name: string): TableSpec => SPEC.tenants[0]!.tables.find((t) => t.name === name)!;
const T0 = Date.UTC(2025, 5, 2, 14, 30) * 1000;
const SYMBOLS = Array.from({ length: 30 }, (_, i) => `SYM${i}`);
// Nodes time out only after a minute: a dead node's shards stay assigned to it during the test.
const CONTROL = { heartbeatMs: 200, nodeTimeoutMs: 60_000, reconcileMs: 200, leaseMs: 1_000 };

let f: NatsFixture;
const nodes: ProxistNode[] = [];
let reference: ProxistNode;
let oracle: ProxistQueryEngine;
let maxLsn = 0;

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const live = (state: string): boolean => /running\.(live|snapshotting)/.test(state);

/** Seeded ticks: many symbols, timestamps on a 1 ms grid (equal timestamps), late rows. */
function batch(rand: () => number, table: TableSpec, n: number, at: number): TickBatch {
  const symbolIndex = new Uint32Array(n);
  const ts = new Float64Array(n);
  const values = table.columns.map(() => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    symbolIndex[i] = Math.floor(rand() * SYMBOLS.length);
    ts[i] = at + Math.floor(rand() * 2_000) * 1_000 - (rand() < 0.1 ? 3_000_000 : 0);
    values[0]![i] = 100 + Math.round(rand() * 1000) / 100;
    values[1]![i] = table.name === "trades" ? 1 + Math.floor(rand() * 500) : values[0]![i]! + 0.05;
  }
  return { rows: n, symbols: SYMBOLS, symbolIndex, ts, values };
}

beforeAll(async () => {
  f = await natsFixture();
  const stamped = await stampFunctions(new Map(), SPEC);
  expect(stamped.refused).toEqual([]);
  await applyAndWait(f.nc, stamped.spec);
  for (const id of ["n1", "n2", "n3"]) nodes.push(await startNode({ natsUrl: f.server.url, nodeId: id, shards: "assigned", grpcPort: 0, control: CONTROL, log: () => {} }));
  // The reference holds every shard itself (single-node mode) and reads the same WAL.
  reference = await startNode({ natsUrl: f.server.url, nodeId: "ref", shards: "all", log: () => {} });
  oracle = queryEngineOf(reference.catalog, reference.shards, undefined);
  const total = 6 + 4;
  await until("every shard live on one of the three nodes, each node holding some", () => {
    const per = nodes.map((n) => n.shards.status().filter((s) => s.tenant === TENANT && live(s.state)).length);
    return per.reduce((a, b) => a + b, 0) === total && per.every((k) => k > 0);
  });
  const rand = rng(7);
  for (const name of ["trades", "quotes"]) {
    const p = new TickPublisher(f.nc, { tenant: TENANT, spec: spec(name) });
    for (let k = 0; k < 12; k++) maxLsn = Math.max(maxLsn, (await p.publish(batch(rand, spec(name), 200, T0 + k * 1_000_000))).lastLsn);
  }
}, 180_000);

afterAll(async () => {
  for (const n of [...nodes, reference]) await n?.stop().catch(() => {});
  await f?.close();
});

const t0 = T0 + 3_000_000;
const t1 = T0 + 9_000_000;
const QUERIES: Record<string, unknown>[] = [
  { op: "range", table: "trades" },
  { op: "range", table: "trades", t0, t1, symbols: ["SYM1", "SYM4", "NOPE"] },
  { op: "range", table: "trades", t0, t1, order: "desc", limit: 37 },
  { op: "range", table: "trades", sort: "symbol", limit: 45 },
  { op: "lastBy", table: "trades" },
  { op: "lastBy", table: "quotes", at: t0 },
  { op: "firstBy", table: "quotes", t0 },
  { op: "asof", table: "trades", t0, t1, right: { table: "quotes" } },
  { op: "windowJoin", table: "trades", t0, t1, right: { table: "quotes" }, before: "1s", after: "0s", aggregates: [{ fn: "avg", column: "bid" }, { fn: "count" }] },
  { op: "rolling", table: "trades", window: "2s", aggregates: [{ fn: "sum", column: "size" }] },
  { op: "bars", table: "trades", bucket: "1s", t0, t1 },
  { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "count" }, { fn: "sum", column: "size" }, { fn: "last", column: "price" }] },
  { op: "groupBy", table: "trades", by: [], aggregates: [{ fn: "count" }, { fn: "vwap", column: "price" }] },
  // User-defined functions: the coordinator folds the rows its parts bring, as one node folds its own.
  { op: "groupBy", table: "trades", by: ["symbol"], aggregates: [{ fn: "vwap", column: "price", weight: "size" }, { fn: "udf", name: "slidevwap", args: ["price", "size"] }] },
  { op: "bars", table: "trades", bucket: "1s", t0, t1, aggregates: [{ fn: "udf", name: "slidevwap", args: ["price", "size"], as: "mine" }] },
  { op: "rolling", table: "trades", window: "2s", aggregates: [{ fn: "udf", name: "slidevwap", args: ["price", "size"] }] },
  { op: "range", table: "trades", t0, t1, derived: [{ fn: "udf", name: "notional", args: ["price", "size"] }] },
];

describe("fanout - three nodes over NATS", () => {
  it("fanout - every operator asked of every node equals one node holding every shard, complete", async () => {
    for (const q of QUERIES) {
      const want = await oracle.execute(TENANT, { ...q, minLsn: maxLsn });
      expect(want.table.rows).toBeGreaterThan(0);
      for (const n of nodes) {
        const got = await n.query!.execute(TENANT, { ...q, minLsn: maxLsn, consistency: "complete" });
        // Combined partials add floats in another order: equal within 1e-9 relative.
        expect({ node: n.nodeId, q, diff: diffRows(outRows(got.table), outRows(want.table)) }).toEqual({ node: n.nodeId, q, diff: undefined });
        expect({ node: n.nodeId, q, notes: got.notes }).toEqual({ node: n.nodeId, q, notes: [] });
      }
    }
    // The API path says so in the metadata.
    for await (const b of nodes[0]!.query!.run(TENANT, { op: "lastBy", table: "trades" }, new AbortController().signal)) {
      expect(b.schema.metadata.get("proxist.complete")).toBe("true");
      break;
    }
  }, 120_000);

  it("fanout - a part nobody answers is cancelled on the owner when the query is cancelled or its deadline passes", async () => {
    const cancels: string[] = [];
    const silent = f.nc.subscribe(queryPartSubject("ghost"), { callback: () => {} });
    const cs = f.nc.subscribe(queryCancelSubject("ghost"), { callback: (_e, m) => void cancels.push(m.string()) });
    const req = (id: string, timeoutMs: number): PartRequest => ({ id, tenant: TENANT, table: "trades", buckets: [0], symbols: undefined, t0: 0, t1: 1, behind: 0, ahead: 0, columns: [], minLsn: undefined, timeoutMs });
    const ctl = new AbortController();
    const p = runPart(f.nc, "ghost", spec("trades"), req("p1", 30_000), ctl.signal);
    setTimeout(() => ctl.abort(new Error("client cancelled")), 100);
    await expect(p).rejects.toThrow("client cancelled");
    await expect(runPart(f.nc, "ghost", spec("trades"), req("p2", 300), undefined)).rejects.toThrow(/deadline of 300 ms/);
    await expect(runPart(f.nc, `nobody-${createInbox().slice(-6)}`, spec("trades"), req("p3", 5_000), undefined)).rejects.toThrow(/no responders/);
    await f.nc.flush();
    await until("both cancels seen", () => cancels.length === 2, 5_000);
    expect(cancels).toEqual(["p1", "p2"]);
    silent.unsubscribe();
    cs.unsubscribe();
  }, 30_000);

  it("fanout - a symbol list too large for one NATS message: INVALID_ARGUMENT naming the sizes and the way out, at once, nothing sent", async () => {
    const seen: string[] = [];
    const owner = f.nc.subscribe(queryPartSubject("listener"), { callback: (_e, m) => void seen.push(m.subject) });
    // 600,000 symbols of 16 characters: ~11 MB of JSON against the server's 8 MiB max_payload.
    const symbols = Array.from({ length: 600_000 }, (_, i) => `SYM${String(i).padStart(13, "0")}`);
    const req: PartRequest = { id: "huge", tenant: TENANT, table: "trades", buckets: [0], symbols, t0: 0, t1: 1, behind: 0, ahead: 0, columns: [], minLsn: undefined, timeoutMs: 60_000 };
    const t0 = Date.now();
    const err = await runPart(f.nc, "listener", spec("trades"), req, undefined).then(
      () => undefined,
      (e: unknown) => e as QueryError,
    );
    expect(err?.code).toBe("INVALID_ARGUMENT");
    expect(err?.message).toMatch(/the part of table trades asked of node listener is \d+ bytes \(its symbol list: 600000 symbols\), over what one NATS message carries here \(max_payload 8388608 bytes.*split the list over several queries/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await f.nc.flush();
    expect(seen).toEqual([]);
    owner.unsubscribe();
    // Through a node's engine (each part carries the symbols of its buckets): 100,000 symbols (a query's most) of 300 characters.
    const long = Array.from({ length: 100_000 }, (_, i) => `S${String(i).padStart(299, "0")}`);
    await expect(nodes[0]!.query!.execute(TENANT, { op: "lastBy", table: "trades", symbols: long })).rejects.toThrow(/its symbol list: \d+ symbols\), over what one NATS message carries here/);
  }, 60_000);

  it("fanout - a large part answer arrives in order over many chunks and decodes whole", async () => {
    const n = 50_000;
    const ts = Float64Array.from({ length: n }, (_, i) => T0 + i);
    const series = [{ symbol: "BIG", n, ts, lsn: Float64Array.from(ts, (_, i) => i + 1), row: new Float64Array(n), values: [Float64Array.from(ts, (_, i) => i / 7), undefined], lo: 0, hi: n }];
    const bytes = encodePartReply(spec("trades"), { statuses: [{ bucket: 0, kind: "live", why: "" }], notes: [], coldRows: 0, series });
    const parts = chunks(bytes, 64 * 1024);
    expect(parts.length).toBeGreaterThan(10);
    const responder = f.nc.subscribe(queryPartSubject("chunky"), {
      callback: (_e, m) => {
        parts.forEach((p, i) => {
          const h = headers();
          h.set(HDR_PART_SEQ, String(i));
          if (i === parts.length - 1) h.set(HDR_PART_LAST, "1");
          m.respond(p, { headers: h });
        });
      },
    });
    const req: PartRequest = { id: "big", tenant: TENANT, table: "trades", buckets: [0], symbols: undefined, t0: 0, t1: T0 + n, behind: 0, ahead: 0, columns: ["price"], minLsn: undefined, timeoutMs: 20_000 };
    const r = await runPart(f.nc, "chunky", spec("trades"), req, undefined);
    responder.unsubscribe();
    expect(r.series.length).toBe(1);
    expect(r.series[0]!.n).toBe(n);
    expect(Array.from(r.series[0]!.ts)).toEqual(Array.from(ts));
    expect(r.series[0]!.values[0]![n - 1]).toBe((n - 1) / 7);
  }, 30_000);

  it("fanout - a dead owner: complete=false with a note per shard it owned, UNAVAILABLE under consistency complete", async () => {
    const victim = nodes[2]!;
    const owned = victim.shards
      .status()
      .filter((s) => s.tenant === TENANT && s.table === "trades")
      .map((s) => s.bucket)
      .sort((a, b) => a - b);
    expect(owned.length).toBeGreaterThan(0);
    // The process "dies": its NATS connection goes; px_assign still names it (node timeout 60 s).
    await victim.nc.close();
    const q = { op: "lastBy", table: "trades" };
    const want = outRows((await oracle.execute(TENANT, q)).table);
    for (const n of nodes.slice(0, 2)) {
      const got = await n.query!.execute(TENANT, q);
      expect([...got.notes].sort()).toEqual(owned.map((b) => expect.stringMatching(new RegExp(`^table trades shard ${b}: missing: owner n3 did not answer \\(no responders`)) as unknown));
      // Every row it has is right; only the dead node's symbols are absent.
      const rows = outRows(got.table);
      expect(rows.length).toBeLessThan(want.length);
      expect(want).toEqual(expect.arrayContaining(rows));
      await expect(n.query!.execute(TENANT, { ...q, consistency: "complete" })).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringContaining("owner n3 did not answer") as unknown });
      for await (const b of n.query!.run(TENANT, q, new AbortController().signal)) {
        expect(b.schema.metadata.get("proxist.complete")).toBe("false");
        expect(b.schema.metadata.get("proxist.notes")).toContain("owner n3 did not answer");
        break;
      }
    }
  }, 60_000);
});
