// Disk-full and gap safety against real servers. A WAL stream at its byte
// limit refuses new records (discard new): ingest is refused with
// RESOURCE_EXHAUSTED naming the cause, nothing acknowledged is lost, metrics
// and /readyz say so, and ingest resumes once there is room again. Records
// purged by hand behind a stalled sink: the sink stops on a named WAL gap and
// never persists past it; with the check switched off (PX_GAP_CHECK_OFF=1,
// negative control) the sink goes on and the test sees the loss.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, shardViews, waitPersisted } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { readWal } from "../helpers/wal.js";
import { replayDigests, waitCaughtUp } from "../helpers/replay.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec } from "../../protocols/tablespec.js";
import type { IngestAck } from "../../protocols/ingest.js";
import { KV_CONFIG, tenantConfigKey, walStream } from "../../protocols/subjects.js";
import { Kvm } from "@nats-io/kv";
import { startNode } from "../../src/node/node.js";
import type { ProxistNode } from "../../src/node/node.js";

let f: NatsFixture;
let chf: ClickhouseFixture;
const nodes: ProxistNode[] = [];

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
});
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  delete process.env.PX_GAP_CHECK_OFF;
  if (!chf.server.running) await chf.server.restart();
});
afterAll(async () => {
  await f?.close();
  await chf?.close();
});

const specOf = (tenant: string, shards: number): ClusterSpec =>
  parseClusterSpec({ tenants: [{ name: tenant, tables: [{ name: "trades", shards, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });

const text = async (port: number, path: string): Promise<{ status: number; body: string }> => {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, body: await r.text() };
};

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("ops - WAL full", () => {
  it("WAL full - ingest is refused with RESOURCE_EXHAUSTED naming the cause, nothing acked is lost, ingest resumes when there is room", async () => {
    const spec = specOf("full", 2);
    const trades = spec.tenants[0]!.tables[0]!;
    const node = await nodeOn(f.server, f.nc, { walMaxBytes: 200_000 }, spec);
    nodes.push(node);
    const jsm = await jetstreamManager(f.nc);
    const cfg = (await jsm.streams.info(walStream("full"))).config;
    expect(cfg.max_bytes).toBe(200_000);
    expect(cfg.discard).toBe("new");

    const walk = new RandomWalk(symbolNames(50), 5, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: "full", spec: trades, maxInFlight: 1, maxAttempts: 1, timeoutMs: 5_000 });
    const acks: IngestAck[] = [];
    let refusal: Error | undefined;
    for (let i = 0; i < 500 && refusal === undefined; i++) {
      await pub.publish(walk.trades(200, 100_000)).then(
        (a) => void acks.push(a),
        (e: unknown) => void (refusal = e as Error),
      );
    }
    expect(refusal, "the WAL never filled").toBeDefined();
    expect((refusal as { code?: string }).code).toBe("RESOURCE_EXHAUSTED");
    expect(refusal!.message).toMatch(/the WAL is full \(the WAL stream reached its byte limit/);
    expect(acks.length).toBeGreaterThan(3);

    // The in-process path gRPC Ingest and Flight DoPut use: the same refusal.
    const viaApi = await node.ingest({ tenant: "full", table: "trades", payload: tickBatchToIpc(trades, walk.trades(200, 100_000)), producer: undefined });
    expect(viaApi.ok).toBe(false);
    if (!viaApi.ok) {
      expect(viaApi.error.code).toBe("RESOURCE_EXHAUSTED");
      expect(viaApi.error.message).toMatch(/WAL is full/);
    }
    expect((await text(node.httpPort, "/metrics")).body).toMatch(/^px_wal_full 1$/m);
    const ready = await text(node.httpPort, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/WAL full: the WAL stream reached its byte limit/);

    // Nothing acknowledged is lost: every acked LSN is in the WAL, and the hot sets equal its replay.
    const wal = new Map((await readWal(f.nc, "full")).map((r) => [r.lsn, r]));
    for (const a of acks) for (const x of a.appends) expect(wal.has(x.lsn), `acked LSN ${x.lsn}`).toBe(true);
    const expected = await replayDigests(f.nc, "full", [trades]);
    const got = await waitCaughtUp(node.httpPort, expected);
    for (const [k, e] of expected) expect(got.get(k)?.digest, k).toBe(e.digest);

    // Room again (an operator raises the limit; compaction is the other way): ingest resumes.
    await jsm.streams.update(walStream("full"), { ...cfg, max_bytes: 4_000_000 });
    const resumed = await until("ingest to resume", () => pub.publish(walk.trades(200, 100_000)).then((a) => a, () => undefined), 30_000);
    expect(resumed.rows).toBe(200);
    expect((await text(node.httpPort, "/metrics")).body).toMatch(/^px_wal_full 0$/m);
    expect((await text(node.httpPort, "/readyz")).status).toBe(200);

    // A node configured with a limit below what the WAL holds does not apply it: JetStream would drop the oldest records.
    const before = await jsm.streams.info(walStream("full"));
    const lines: string[] = [];
    const small = await startNode({ natsUrl: f.server.url, walMaxBytes: 50_000, log: (l) => lines.push(l) });
    nodes.push(small);
    await until("the small-limit node to prepare the tenant", async () => (lines.some((l) => l.includes("more than the configured limit 50000")) ? true : undefined), 30_000);
    const after = await jsm.streams.info(walStream("full"));
    expect(after.state.messages).toBe(before.state.messages);
    expect(after.config.max_bytes).toBe(4_000_000);
  }, 120_000);
});

describe("ops - WAL full, then compaction", () => {
  it("WAL full - compaction of what ClickHouse and a snapshot hold frees space: ingest resumes and every acknowledged row is in ClickHouse", async () => {
    const spec = parseClusterSpec({ tenants: [{ name: "fullc", tables: [{ name: "trades", shards: 1, retention: { walKeep: 1 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });
    const trades = spec.tenants[0]!.tables[0]!;
    const node = await nodeOn(f.server, f.nc, { walMaxBytes: 200_000, clickhouseUrl: chf.server.httpUrl, snapshotIntervalMs: 0, compaction: { intervalMs: 0 } }, spec);
    nodes.push(node);
    const walk = new RandomWalk(symbolNames(50), 8, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: "fullc", spec: trades, maxInFlight: 1, maxAttempts: 1, timeoutMs: 5_000 });
    let ackedRows = 0;
    let refusal: Error | undefined;
    for (let i = 0; i < 500 && refusal === undefined; i++) {
      await pub.publish(walk.trades(200, 100_000)).then(
        (a) => void (ackedRows += a.rows),
        (e: unknown) => void (refusal = e as Error),
      );
    }
    expect((refusal as { code?: string } | undefined)?.code).toBe("RESOURCE_EXHAUSTED");
    await waitPersisted(node.httpPort, f.nc, "fullc", "trades");
    await node.shards.get({ tenant: "fullc", table: "trades", bucket: 0 })!.runtime.snapshotNow();
    const run = await node.compaction!.compactNow();
    expect(run.error).toBeUndefined();
    expect(run.results.reduce((n, r) => n + r.purged, 0)).toBeGreaterThan(0);
    const resumed = await until("ingest to resume", () => pub.publish(walk.trades(200, 100_000)).then((a) => a, () => undefined), 30_000);
    ackedRows += resumed.rows;
    await waitPersisted(node.httpPort, f.nc, "fullc", "trades");
    expect(Number((await chf.ch.query(`SELECT count() FROM ${qualifiedTable("fullc", "trades")}`)).trim())).toBe(ackedRows);
  }, 150_000);
});

describe("ops - WAL gap on replay", () => {
  // The failed tenants leave px_config: every later node would host their failed shards and never be ready.
  afterEach(async () => {
    const kv = await new Kvm(f.nc).open(KV_CONFIG);
    for (const t of ["replaygap", "replaygapoff"]) await kv.delete(tenantConfigKey(t));
  });

  /** Ingest into a node, stop it, purge the stream by hand below the last two records, start a node again. */
  async function restartAfterPurge(tenant: string): Promise<{ node: ProxistNode; ackedRows: number; lines: string[] }> {
    const spec = specOf(tenant, 1);
    const trades = spec.tenants[0]!.tables[0]!;
    const first = await nodeOn(f.server, f.nc, { snapshotIntervalMs: 0 }, spec);
    const walk = new RandomWalk(symbolNames(20), 4, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant, spec: trades, maxInFlight: 4 });
    let ackedRows = 0;
    let lastLsn = 0;
    for (let i = 0; i < 10; i++) {
      const a = await pub.publish(walk.trades(100, 100_000));
      ackedRows += a.rows;
      lastLsn = a.lastLsn;
    }
    await first.stop();
    await (await jetstreamManager(f.nc)).streams.purge(walStream(tenant), { seq: lastLsn - 1 });
    const lines: string[] = [];
    const node = await startNode({ natsUrl: f.server.url, snapshotIntervalMs: 0, log: (l) => lines.push(l) });
    nodes.push(node);
    return { node, ackedRows, lines };
  }

  it("WAL gap - a shard replaying a WAL purged by hand fails with the named gap and /readyz names it", async () => {
    const { node } = await restartAfterPurge("replaygap");
    const h = await until("the shard to fail", async () => {
      const x = node.shards.get({ tenant: "replaygap", table: "trades", bucket: 0 });
      return x?.runtime.state === "failed" ? x : undefined;
    });
    expect(h.runtime.actor.getSnapshot().context.error).toMatch(/WAL gap: the hot set of shard replaygap\/trades\/0 needs records from LSN 1, but the WAL stream now starts at LSN \d+/);
    const ready = await text(node.httpPort, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/WAL gap: the hot set of shard replaygap/);
  }, 90_000);

  it("WAL gap - negative control: with the check off the shard goes live on the rows left and misses acknowledged ones", async () => {
    process.env.PX_GAP_CHECK_OFF = "1";
    const { node, ackedRows } = await restartAfterPurge("replaygapoff");
    const h = await until("the shard to go live", async () => {
      const x = node.shards.get({ tenant: "replaygapoff", table: "trades", bucket: 0 });
      return x?.runtime.state === "running.live" ? x : undefined;
    });
    expect(h.runtime.stats.rows).toBeLessThan(ackedRows);
  }, 90_000);
});

describe("ops - WAL gap", () => {
  /**
   * Ingest, persist, stop ClickHouse, ingest more (the sink holds at most 4
   * records), purge the stream by hand up to the last 3 records, start
   * ClickHouse. Returns what the sink did.
   */
  async function purgeBehindStalledSink(tenant: string): Promise<{ node: ProxistNode; purgedBelow: number; lastLsn: number; ackedRows: number }> {
    const spec = specOf(tenant, 1);
    const trades = spec.tenants[0]!.tables[0]!;
    const node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, sink: { maxAckPending: 4, limits: { maxBatchDelayMs: 50 } }, snapshotIntervalMs: 0 }, spec);
    nodes.push(node);
    const walk = new RandomWalk(symbolNames(20), 7, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant, spec: trades, maxInFlight: 4 });
    let ackedRows = 0;
    for (let i = 0; i < 5; i++) ackedRows += (await pub.publish(walk.trades(100, 100_000))).rows;
    await waitPersisted(node.httpPort, f.nc, tenant, "trades");
    await chf.server.stop();
    let lastLsn = 0;
    for (let i = 0; i < 20; i++) {
      const a = await pub.publish(walk.trades(100, 100_000));
      ackedRows += a.rows;
      lastLsn = a.lastLsn;
    }
    // By hand, as `nats stream purge --seq`: every record below the last three is gone.
    const purgedBelow = lastLsn - 2;
    const jsm = await jetstreamManager(f.nc);
    await jsm.streams.purge(walStream(tenant), { seq: purgedBelow });
    await chf.server.restart();
    return { node, purgedBelow, lastLsn, ackedRows };
  }

  const persistedLsnOf = async (node: ProxistNode, tenant: string): Promise<number> => (await shardViews(node.httpPort, tenant))[0]!.sink?.persistedLsn ?? 0;
  const hosted = (node: ProxistNode, tenant: string) => node.shards.get({ tenant, table: "trades", bucket: 0 })!;
  const sinkOf = (node: ProxistNode) => hosted(node, "gap").sink!.status();
  const maxLsnInClickhouse = async (tenant: string): Promise<number> => Number((await chf.ch.query(`SELECT max(_lsn) AS m FROM ${qualifiedTable(tenant, "trades")}`)).trim() || 0);

  it("WAL gap - a hand purge behind a stalled sink: the sink stops with a named gap error, the shard reports it, nothing is persisted or evicted past it", async () => {
    const { node, purgedBelow } = await purgeBehindStalledSink("gap");
    let last: unknown;
    const sink = await until("the sink to stop on the gap", async () => {
      const s = sinkOf(node);
      last = s;
      return s.state === "failed" ? s : undefined;
    }).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify(last)}`);
    });
    expect(sink.lastError).toMatch(/WAL gap: the sink of shard gap\/trades\/0 needs records from LSN \d+, but the WAL stream now starts at LSN/);
    expect((await text(node.httpPort, "/metrics")).body).toMatch(/^px_wal_gap\{tenant="gap",table="trades",bucket="0"\} 1$/m);
    const ready = await text(node.httpPort, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/WAL gap/);
    // Nothing past the gap reached ClickHouse, and P (what the shard evicts against) stays below it.
    expect(await maxLsnInClickhouse("gap")).toBeLessThan(purgedBelow);
    expect(await persistedLsnOf(node, "gap")).toBeLessThan(purgedBelow);
    expect(hosted(node, "gap").runtime.stats.persistedLsn).toBeLessThan(purgedBelow);
  }, 150_000);

  it("WAL gap - negative control: with the check off (PX_GAP_CHECK_OFF=1) the sink persists past the gap and ClickHouse misses acknowledged rows", async () => {
    process.env.PX_GAP_CHECK_OFF = "1";
    const { node, lastLsn, ackedRows } = await purgeBehindStalledSink("gapoff");
    await until("the sink to persist past the gap", async () => ((await persistedLsnOf(node, "gapoff")) >= lastLsn ? true : undefined));
    const rows = Number((await chf.ch.query(`SELECT count() FROM ${qualifiedTable("gapoff", "trades")}`)).trim());
    // The loss the check exists for: P says "everything up to the last LSN is in ClickHouse", and it is not.
    expect(rows).toBeLessThan(ackedRows);
    expect(await maxLsnInClickhouse("gapoff")).toBe(lastLsn);
  }, 150_000);
});
