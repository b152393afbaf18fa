// The ClickHouse sink against real servers: nats-server and clickhouse-server on
// free ports, the node in its own process where a test SIGKILLs it (failpoints
// before, during and after an INSERT, before the watermark), clickhouse-server
// killed mid-INSERT and stopped for a while. After each, every WAL record (so
// every acknowledged tick) is in ClickHouse exactly once, counted by
// (_lsn, _row); P never went backwards and was never announced before
// ClickHouse held it. The negative control turns the landed-LSN check off and
// must see duplicates.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, applyAndWait, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { NodeProcess } from "../helpers/nodeproc.js";
import { keepRunning } from "../helpers/pump.js";
import { WatermarkLog, clickhouseFixture, exactlyOnceReport, shardViews, waitPersisted, walRows } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec, TableSpec } from "../../protocols/tablespec.js";
import type { IngestAck } from "../../protocols/ingest.js";
import type { ProxistNode } from "../../src/node/node.js";

let f: NatsFixture;
let chf: ClickhouseFixture;
const procs: NodeProcess[] = [];
const nodes: ProxistNode[] = [];
let tenantNo = 0;

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
});
afterEach(async () => {
  for (const p of procs.splice(0)) await p.kill();
  for (const n of nodes.splice(0)) await n.stop();
  if (!chf.server.running) await chf.server.restart();
});
afterAll(async () => {
  await f?.close();
  await chf?.close();
});

interface Scenario {
  readonly tenant: string;
  readonly spec: ClusterSpec;
  readonly trades: TableSpec;
  readonly walk: RandomWalk;
  readonly acks: IngestAck[];
  readonly wm: WatermarkLog;
}

/** A fresh tenant (own WAL stream, own ClickHouse database) with a 2-shard trades table. */
async function scenario(): Promise<Scenario> {
  const tenant = `snk${++tenantNo}`;
  const spec = parseClusterSpec({
    tenants: [{ name: tenant, tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
  });
  const trades = spec.tenants[0]!.tables[0]!;
  await applyAndWait(f.nc, spec);
  return { tenant, spec, trades, walk: new RandomWalk(symbolNames(50), tenantNo, 1.75e15), acks: [], wm: new WatermarkLog(f.nc, chf.ch, tenant, trades) };
}

/** Publishes `batches` batches; failures (a node that died) are counted, not thrown. */
async function ingest(s: Scenario, batches: number, rows = 400): Promise<number> {
  const p = new TickPublisher(f.nc, { tenant: s.tenant, spec: s.trades, maxInFlight: 4, maxAttempts: 1, timeoutMs: 2_000 });
  let failed = 0;
  await Promise.all(
    Array.from({ length: batches }, () => {
      const b = s.walk.trades(rows, 200_000);
      return p.publish(b).then(
        (a) => void s.acks.push(a),
        (e: unknown) => {
          failed++;
          if (process.env.PX_TEST_VERBOSE) console.error(`publish failed: ${(e as Error).message}`);
        },
      );
    }),
  );
  return failed;
}

/** Publishes until `until` resolves (a node dying), `rows` per batch. */
async function ingestUntil(s: Scenario, node: NodeProcess, rows = 400): Promise<void> {
  const until = node.exited;
  let go = true;
  void until.then(() => (go = false));
  const p = new TickPublisher(f.nc, { tenant: s.tenant, spec: s.trades, maxInFlight: 4, maxAttempts: 1, timeoutMs: 1_000 });
  const deadline = Date.now() + 30_000;
  while (go && Date.now() < deadline) {
    await Promise.all(Array.from({ length: 4 }, () => p.publish(s.walk.trades(rows, 200_000)).then((a) => void s.acks.push(a), () => {})));
  }
  if (go) throw new Error(`the node did not die within 30 s: the failpoint never fired; its output:\n${node.output().slice(-3_000)}`);
}

async function expectExactlyOnce(s: Scenario, httpPort: number): Promise<void> {
  await waitPersisted(httpPort, f.nc, s.tenant, "trades");
  const r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
  expect(r).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
  expect(r.clickhouseRows).toBe(r.walRows);
  // Every acknowledged tick is among them: its record is in the WAL.
  const wal = await walRows(f.nc, s.tenant, "trades");
  for (const a of s.acks) for (const ap of a.appends) expect(wal.get(ap.lsn)?.rows).toBe(ap.rows);
  s.wm.close();
  const w = await s.wm.check(f.nc, s.tenant, "trades");
  expect(w.watermarks).toBeGreaterThan(0);
  expect(w.decreased).toEqual([]);
  expect(w.ahead).toEqual([]);
}

async function spawnNode(env: Record<string, string> = {}): Promise<NodeProcess> {
  const p = await spawnNodeProcess(f.server.url, env, ["--clickhouse", chf.server.httpUrl]);
  procs.push(p);
  return p;
}

describe("sink - basics", () => {
  it("sink - ticks reach ClickHouse exactly once, P and T_persisted are reported, the hot set keeps serving", async () => {
    const s = await scenario();
    const node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl }, s.spec);
    nodes.push(node);
    expect(await ingest(s, 20)).toBe(0);
    await expectExactlyOnce(s, node.httpPort);
    const views = await shardViews(node.httpPort, s.tenant);
    for (const v of views) {
      expect(v.sinkState).toBe("idle");
      expect(v.tPersistedMicros).toBeGreaterThan(1.75e15);
      expect(v.lagRecords).toBe(0);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`px_shard_persisted_lsn\\{tenant="${s.tenant}",table="trades",bucket="0"\\} [1-9]`));
  });
});

describe("sink - sink crashes (SIGKILL via failpoints)", () => {
  // After 3 verified flushes of the process, so the crash has committed history behind it.
  const crash = async (failpoint: string, restartEnv: Record<string, string> = {}): Promise<{ s: Scenario; b: NodeProcess }> => {
    const t0 = Date.now();
    const lap = (what: string): void => void (process.env.PX_TEST_VERBOSE && console.error(`${failpoint}: ${what} at ${Date.now() - t0} ms`));
    const s = await scenario();
    const a = await spawnNode({ PX_FAILPOINTS: failpoint, PX_SINK_FAILPOINTS_AFTER: "3" });
    lap("first node up");
    await ingestUntil(s, a);
    expect((await a.exited).signal).toBe("SIGKILL");
    lap("first node died");
    const b = await spawnNode(restartEnv);
    lap("second node up");
    expect(await ingest(s, 6)).toBe(0);
    lap("ingested");
    await waitPersisted(b.httpPort, f.nc, s.tenant, "trades");
    lap("persisted");
    return { s, b };
  };

  it("crash - SIGKILL before an INSERT: after restart every tick is in ClickHouse once", async () => {
    const { s, b } = await crash("sink.before-insert");
    await expectExactlyOnce(s, b.httpPort);
  });

  it("crash - SIGKILL during an INSERT (a prefix of it committed): the restarted sink sends only the missing rows", async () => {
    const { s, b } = await crash("sink.mid-insert");
    await expectExactlyOnce(s, b.httpPort);
    expect(b.output()).toMatch(/rows already in ClickHouse \(\d+ LSNs partly\)/);
  });

  it("crash - SIGKILL after an INSERT, before its watermark: the restarted sink finds it landed and sends nothing twice", async () => {
    const { s, b } = await crash("sink.after-insert");
    await expectExactlyOnce(s, b.httpPort);
    // Whole LSNs landed (another shard's INSERT cut by the kill may add partly landed ones).
    expect(b.output()).toMatch(/rows already in ClickHouse(?: \(\d+ LSNs partly\))?; sending the other/);
  });

  it("crash - negative control: with the landed-LSN check off, the same crash leaves duplicates and the check reports them", async () => {
    const { s } = await crash("sink.after-insert", { PX_SINK_UNSAFE_SKIP_LANDED_CHECK: "1" });
    const r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
    expect(r.duplicates).toBeGreaterThan(0);
    expect(r.missing).toBe(0);
    s.wm.close();
  });
});

describe("sink - ClickHouse failures", () => {
  it("clickhouse - SIGKILL of clickhouse-server during an INSERT, then restart: every tick once, P monotonic", async () => {
    const s = await scenario();
    const node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl }, s.spec);
    nodes.push(node);
    expect(await ingest(s, 10)).toBe(0);
    await waitPersisted(node.httpPort, f.nc, s.tenant, "trades");
    // Keep ingesting; kill the server the moment a sink INSERT is running.
    const pump = keepRunning(() => ingest(s, 4, 2_000));
    const deadline = Date.now() + 20_000;
    let killed = false;
    while (!killed && Date.now() < deadline) {
      const n = await chf.ch.query("SELECT count() FROM system.processes WHERE substring(query_id, 1, 7) = 'pxsink-' AND query LIKE 'INSERT%' FORMAT TabSeparated").catch(() => "0");
      if (Number(n) > 0) {
        await chf.server.kill("SIGKILL");
        killed = true;
      }
    }
    expect(killed).toBe(true);
    await new Promise((r) => setTimeout(r, 1_000));
    await chf.server.restart();
    await pump.stop();
    expect(await ingest(s, 4)).toBe(0);
    await expectExactlyOnce(s, node.httpPort);
    // The INSERT in flight failed and was retried (after asking what landed).
    const views = await shardViews(node.httpPort, s.tenant);
    expect(views.reduce((n, v) => n + (v.sink?.failures ?? 0), 0)).toBeGreaterThan(0);
  });

  it("clickhouse - stopped for a while: ingest and hot queries go on, lag grows and is reported, then everything lands once", async () => {
    const s = await scenario();
    const node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, sink: { retry: { maxMs: 500 } } }, s.spec);
    nodes.push(node);
    expect(await ingest(s, 6)).toBe(0);
    await waitPersisted(node.httpPort, f.nc, s.tenant, "trades");
    const before = await shardViews(node.httpPort, s.tenant);
    await chf.server.stop();
    // Acks keep coming while ClickHouse is down.
    expect(await ingest(s, 10)).toBe(0);
    await new Promise((r) => setTimeout(r, 2_500));
    const during = await shardViews(node.httpPort, s.tenant);
    for (const v of during) {
      const b = before.find((x) => x.bucket === v.bucket)!;
      expect(v.rows).toBeGreaterThan(b.rows); // the hot set has the new ticks
      expect(v.persistedLsn).toBe(b.persistedLsn);
      expect(v.lagRecords).toBeGreaterThan(0);
      expect(v.lagMs).toBeGreaterThan(2_000);
      expect(["backoff", "degraded", "flushing"]).toContain(v.sinkState);
      expect(v.sink?.pendingRows).toBeGreaterThan(0);
    }
    await chf.server.restart();
    await expectExactlyOnce(s, node.httpPort);
    const after = await shardViews(node.httpPort, s.tenant);
    for (const v of after) expect(v.lagMs).toBe(0);
  });
});
