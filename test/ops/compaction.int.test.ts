// WAL compaction against real servers. A node process ingests, persists to
// ClickHouse, snapshots and compacts (pxctl's ops requests); after a SIGKILL
// the restarted node rebuilds each shard from snapshot + the WAL left, and its
// digest equals an oracle built from every record ever acknowledged. A stalled
// sink is never compacted past: once ClickHouse is back every acked row is
// there. Negative control (PX_COMPACT_IGNORE_SINK=1: P is no bound): the same
// run loses records, and the sink stops on the named gap.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, waitPersisted } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { readWal, walMessageCount } from "../helpers/wal.js";
import type { StoredRecord } from "../helpers/wal.js";
import { waitCaughtUp } from "../helpers/replay.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { NodeProcess } from "../helpers/nodeproc.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { HotTable } from "../../src/hotset/index.js";
import { applyWalRecord } from "../../src/shard/apply.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { opsRequest } from "../../src/cli/opsrequest.js";
import { runPxctl } from "../../src/cli/commands.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { readEvents } from "../../src/wal/index.js";
import { encodeWalRecord } from "../../protocols/codec.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec, TableSpec } from "../../protocols/tablespec.js";
import { parseWalSubject } from "../../protocols/subjects.js";
import type { ProxistNode } from "../../src/node/node.js";
import { MetadataStore } from "../../src/control/index.js";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";

let f: NatsFixture;
let chf: ClickhouseFixture;
const procs: NodeProcess[] = [];
const nodes: ProxistNode[] = [];

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
});
afterEach(async () => {
  for (const p of procs.splice(0)) await p.kill();
  for (const n of nodes.splice(0)) await n.stop();
  delete process.env.PX_COMPACT_IGNORE_SINK;
  if (!chf.server.running) await chf.server.restart();
});
afterAll(async () => {
  await f?.close();
  await chf?.close();
});

const specOf = (tenant: string, shards: number, walKeep: number): ClusterSpec =>
  parseClusterSpec({ tenants: [{ name: tenant, tables: [{ name: "trades", shards, retention: { walKeep }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });

/** Digests of every shard from a list of WAL records (the oracle: every record ever acknowledged). */
function digestsOf(tenant: string, spec: TableSpec, records: Iterable<StoredRecord>): Map<string, { appliedLsn: number; rows: number; digest: string }> {
  const tables = new Map<string, HotTable>();
  for (let b = 0; b < spec.shards; b++) tables.set(`${tenant}.${spec.name}.${b}`, new HotTable(spec));
  for (const r of [...records].sort((a, b) => a.lsn - b.lsn)) {
    const a = parseWalSubject(r.subject)!;
    const t = tables.get(`${a.tenant}.${a.table}.${a.bucket}`)!;
    applyWalRecord(t, spec, { lsn: r.lsn, data: encodeWalRecord(r.record) });
  }
  return new Map([...tables].map(([k, t]) => [k, { appliedLsn: t.appliedLsn, rows: t.rowCount, digest: t.digest() }]));
}

const chCount = async (tenant: string): Promise<number> => Number((await chf.ch.query(`SELECT count() FROM ${qualifiedTable(tenant, "trades")}`)).trim());

describe("ops - WAL compaction", () => {
  it("compaction - snapshot, compact, SIGKILL, restart: the hot set is snapshot + the WAL left and equals the oracle", async () => {
    const spec = specOf("cmp", 2, 2);
    const trades = spec.tenants[0]!.tables[0]!;
    await (await MetadataStore.open(f.nc)).applyCurrent(spec);
    const env = { PX_COMPACTION_INTERVAL_MS: "0" };
    const args = ["--clickhouse", chf.server.httpUrl, "--snapshot-interval-ms", "0"];
    const a = await spawnNodeProcess(f.server.url, env, args);
    procs.push(a);
    const walk = new RandomWalk(symbolNames(40), 3, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: "cmp", spec: trades, maxInFlight: 4 });
    for (let i = 0; i < 30; i++) await pub.publish(walk.trades(200, 50_000));
    await waitPersisted(a.httpPort, f.nc, "cmp", "trades");
    const every = new Map((await readWal(f.nc, "cmp")).map((r) => [r.lsn, r]));

    // One node: each request ends at its reply (the timeout only bounds a node that never answers).
    const snaps = await opsRequest(f.nc, "snapshot", { shards: ["cmp"] }, 30_000, 1);
    expect(snaps.flatMap((r) => r.lines).map((l) => l.ok)).toEqual([true, true]);
    const dry = (await opsRequest(f.nc, "compact", { shards: ["cmp.trades"], dryRun: true }, 30_000, 1)).flatMap((r) => r.lines);
    expect(dry).toHaveLength(2);
    for (const l of dry) expect(l.message).toMatch(/^dry run: cmp\/trades\/\d: purge below LSN \d+ \(/);
    expect(await walMessageCount(f.nc, "cmp")).toBe(every.size + 1);

    const run = await opsRequest(f.nc, "compact", { shards: ["cmp"] }, 30_000, 1);
    expect(run.map((r) => r.error)).toEqual([undefined]);
    const lines = run.flatMap((r) => r.lines);
    expect(lines.every((l) => l.ok && /records purged/.test(l.message))).toBe(true);
    const left = await readWal(f.nc, "cmp");
    expect(left.length).toBeLessThan(every.size);
    // Each subject keeps walKeep LSNs below what its readers need; nothing below its cut.
    for (const l of lines) {
      const bucket = Number(l.shard.split(".")[2]);
      const first = left.find((r) => parseWalSubject(r.subject)!.bucket === bucket);
      if (first !== undefined) expect(first.lsn).toBeGreaterThanOrEqual(l.cut!);
    }

    // More ticks after the snapshot: the restart replays them from the WAL.
    for (let i = 0; i < 5; i++) await pub.publish(walk.trades(200, 50_000));
    for (const r of await readWal(f.nc, "cmp")) every.set(r.lsn, r);
    const oracle = digestsOf("cmp", trades, every.values());

    await a.kill("SIGKILL");
    const b = await spawnNodeProcess(f.server.url, env, args);
    procs.push(b);
    const got = await waitCaughtUp(b.httpPort, oracle, 60_000);
    for (const [k, e] of oracle) {
      expect(got.get(k)?.state, k).toBe("running.live");
      expect(got.get(k)?.rows, k).toBe(e.rows);
      expect(got.get(k)?.digest, k).toBe(e.digest);
    }
    const events = await readEvents(await jetstreamManager(f.nc), jetstream(f.nc), 50);
    expect(events.some((e) => e.kind === "compaction.purged" && /cmp\/trades\/0: purge below LSN/.test(e.message))).toBe(true);
    expect(events.some((e) => e.kind === "snapshot.requested")).toBe(true);

    // The same through pxctl, as an operator runs it (admin credentials).
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: f.server.auth!.credsPath("admin") } };
    // pxctl gathers replies for --wait (3 s by default): one node here, a dry run answers at once.
    expect(await runPxctl(["--nats", f.server.url, "compact", "cmp", "--dry-run", "--wait", "1500"], io)).toBe(EXIT.ok);
    expect(out.join("\n")).toMatch(/cmp\.trades\.0 {2}dry run: cmp\/trades\/0: /);
    expect(await runPxctl(["--nats", f.server.url, "events", "--last", "10"], io)).toBe(EXIT.ok);
    expect(out.join("\n")).toMatch(/compaction\.purged {2}cmp\/trades\/0: purge below LSN/);
  }, 120_000);

  it("compaction - retention.walKeepSeconds keeps what the WAL took within that time; once it is older it goes", async () => {
    const spec = parseClusterSpec({ tenants: [{ name: "keept", tables: [{ name: "trades", shards: 1, retention: { walKeep: 1, walKeepSeconds: 3 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });
    const trades = spec.tenants[0]!.tables[0]!;
    expect(trades.retention.walKeepSeconds).toBe(3);
    const node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, snapshotIntervalMs: 0, compaction: { intervalMs: 0 } }, spec);
    nodes.push(node);
    const walk = new RandomWalk(symbolNames(20), 5, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: "keept", spec: trades, maxInFlight: 4 });
    for (let i = 0; i < 5; i++) await pub.publish(walk.trades(100, 50_000));
    await waitPersisted(node.httpPort, f.nc, "keept", "trades");
    await node.shards.get({ tenant: "keept", table: "trades", bucket: 0 })!.runtime.snapshotNow();
    // Persisted and snapshotted: walKeep 1 alone would purge all but the last record; the time margin holds every record back.
    const young = await node.compaction!.compactNow(["keept.trades.0"]);
    expect(young.error).toBeUndefined();
    const walRecords = (await readWal(f.nc, "keept")).filter((r) => r.subject.includes(".wal.trades."));
    expect(young.plans[0]!.cut).toBeLessThanOrEqual(Math.min(...walRecords.map((r) => r.lsn)));
    expect(young.results.reduce((n, r) => n + r.purged, 0)).toBe(0);
    await new Promise((r) => setTimeout(r, 3_500));
    const old = await node.compaction!.compactNow(["keept.trades.0"]);
    expect(old.error).toBeUndefined();
    expect(old.plans[0]!.cut).toBeGreaterThan(1);
    expect(old.results.reduce((n, r) => n + r.purged, 0)).toBeGreaterThan(0);
  }, 60_000);

  /** Persist, stop ClickHouse, ingest more, snapshot, compact, start ClickHouse. */
  async function compactBehindStalledSink(tenant: string): Promise<{ node: ProxistNode; ackedRows: number; purged: number; neededBy: string }> {
    const spec = specOf(tenant, 1, 1);
    const trades = spec.tenants[0]!.tables[0]!;
    // Retries at most 500 ms apart: the default backoff (up to 10 s) only delays the sink once ClickHouse is back.
    const node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, snapshotIntervalMs: 0, compaction: { intervalMs: 0 }, sink: { maxAckPending: 4, retry: { maxMs: 500 } } }, spec);
    nodes.push(node);
    const walk = new RandomWalk(symbolNames(20), 9, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant, spec: trades, maxInFlight: 4 });
    let ackedRows = 0;
    for (let i = 0; i < 5; i++) ackedRows += (await pub.publish(walk.trades(100, 50_000))).rows;
    await waitPersisted(node.httpPort, f.nc, tenant, "trades");
    await chf.server.stop();
    for (let i = 0; i < 15; i++) ackedRows += (await pub.publish(walk.trades(100, 50_000))).rows;
    const host = node.shards.get({ tenant, table: "trades", bucket: 0 })!;
    await host.runtime.snapshotNow();
    // Only this test's shard (the catalog still holds the earlier tests' tenants).
    const run = await node.compaction!.compactNow([`${tenant}.trades.0`]);
    expect(run.error).toBeUndefined();
    await chf.server.restart();
    return { node, ackedRows, purged: run.results.reduce((n, r) => n + r.purged, 0), neededBy: run.plans.find((p) => p.shard.tenant === tenant)!.neededBy };
  }

  it("compaction - a stalled sink is never compacted past: once ClickHouse is back every acknowledged row is there", async () => {
    const { node, ackedRows, neededBy } = await compactBehindStalledSink("stall");
    // The sink, not the newer snapshot, bounded the cut.
    expect(neededBy).toMatch(/^the sink \(P \d+\)$/);
    await waitPersisted(node.httpPort, f.nc, "stall", "trades", 90_000);
    expect(await chCount("stall")).toBe(ackedRows);
  }, 150_000);

  it("compaction - negative control: with P ignored (PX_COMPACT_IGNORE_SINK=1) the stalled sink's records are purged; it stops on the named gap and ClickHouse misses rows", async () => {
    process.env.PX_COMPACT_IGNORE_SINK = "1";
    const { node, ackedRows, purged } = await compactBehindStalledSink("stalloff");
    expect(purged).toBeGreaterThan(0);
    const sink = node.shards.get({ tenant: "stalloff", table: "trades", bucket: 0 })!.sink!;
    const deadline = Date.now() + 90_000;
    while (sink.status().state !== "failed" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(sink.status().lastError).toMatch(/WAL gap: the sink of shard stalloff\/trades\/0 needs records from LSN \d+, but compaction purged/);
    expect(await chCount("stalloff")).toBeLessThan(ackedRows);
  }, 150_000);
});
