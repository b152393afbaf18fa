// Fenced sinks and verified P against real servers: nats-server and
// clickhouse-server on free ports, a gateway-only node for ingest, and two sink
// runtimes for the same shard (an old owner, lease revision 1, and a new one,
// revision 2), as two nodes would run them. The old owner is paused while it
// holds a pending batch (its INSERT stalled, its permit no longer renewed, as
// under SIGSTOP); the new owner persists; the old one resumes: 0 duplicates by
// (_lsn, _row), P never decreases. The same with clickhouse-server SIGSTOPped
// while the old owner's INSERT runs on it. Forged (P far ahead) and stale
// (older revision) watermarks are refused: nothing counts as persisted that
// ClickHouse lacks. The negative control (fence off) finds the duplicates. A
// permit renewed wrongly (the late-heartbeat negative control) lets the old
// owner's INSERT go, and ClickHouse's write fence still refuses it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { keepRunning } from "../helpers/pump.js";
import { WatermarkLog, clickhouseFixture, exactlyOnceReport, shardViews, waitPersisted, walRows } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec, TableSpec } from "../../protocols/tablespec.js";
import type { ProxistNode } from "../../src/node/node.js";
import { SinkRuntime } from "../../src/node/sink/runtime.js";
import type { WrapFlushIo } from "../../src/node/sink/runtime.js";
import { SinkClickhouse } from "../../src/sink/index.js";
import { publishWatermark } from "../../src/wal/index.js";

let f: NatsFixture;
let chf: ClickhouseFixture;
let js: JetStreamClient;
let jsm: JetStreamManager;
const nodes: ProxistNode[] = [];
const sinks: SinkRuntime[] = [];
const clients: SinkClickhouse[] = [];
const timers: NodeJS.Timeout[] = [];
let tenantNo = 0;
const FENCE_OFF = process.env.PX_FENCE_OFF === "1";

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
  js = jetstream(f.nc);
  jsm = await jetstreamManager(f.nc);
});
afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
  for (const s of sinks.splice(0)) await s.stop();
  for (const c of clients.splice(0)) c.close();
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
  readonly wm: WatermarkLog;
  readonly shard: { tenant: string; table: string; bucket: number };
}

/** A fresh tenant with a 1-shard table, and a gateway-only node that writes the WAL. */
async function scenario(): Promise<Scenario> {
  const tenant = `fnc${++tenantNo}`;
  const spec = parseClusterSpec({
    tenants: [{ name: tenant, tables: [{ name: "trades", shards: 1, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
  });
  const trades = spec.tenants[0]!.tables[0]!;
  nodes.push(await nodeOn(f.server, f.nc, { shards: "none" }, spec));
  return { tenant, spec, trades, walk: new RandomWalk(symbolNames(30), tenantNo, 1.75e15), wm: new WatermarkLog(f.nc, chf.ch, tenant, trades), shard: { tenant, table: "trades", bucket: 0 } };
}

async function ingest(s: Scenario, batches: number, rows = 300): Promise<void> {
  const p = new TickPublisher(f.nc, { tenant: s.tenant, spec: s.trades, maxInFlight: 4, timeoutMs: 5_000 });
  await Promise.all(Array.from({ length: batches }, () => p.publish(s.walk.trades(rows, 200_000))));
}

async function lastLsn(s: Scenario): Promise<number> {
  return Math.max(0, ...(await walRows(f.nc, s.tenant, "trades")).keys());
}

interface Owner {
  readonly sink: SinkRuntime;
  readonly log: string[];
  /** Renews the permit as the agent does after each heartbeat; `pause()` stops that (SIGSTOP). */
  pause(): void;
  /** When set, the next INSERT waits for it (in front of the permit check, as a paused process would). */
  stallNext(): { entered: Promise<void>; release: () => void };
  inserts: number;
}

function owner(s: Scenario, revision: number, o: { fenceOff?: boolean; clickhouseFenceOff?: boolean; leaseTtlMs?: number; wrap?: WrapFlushIo } = {}): Owner {
  const ch = new SinkClickhouse({ url: chf.server.httpUrl, requestTimeoutMs: 20_000 });
  clients.push(ch);
  const log: string[] = [];
  let stall: { gate: Promise<void>; entered: () => void } | undefined;
  // A process resumed from SIGSTOP finds its clock far ahead of its last renewal; this process keeps
  // running, so the jump is applied at the pause (nothing it does afterwards has a permit).
  let skewMs = 0;
  const self: Owner = {
    sink: undefined as unknown as SinkRuntime,
    log,
    inserts: 0,
    pause: () => {
      clearInterval(renew);
      skewMs += 10_000;
    },
    stallNext: () => {
      let release = (): void => {};
      let entered = (): void => {};
      const gate = new Promise<void>((r) => (release = r));
      const enteredP = new Promise<void>((r) => (entered = r));
      stall = { gate, entered };
      return { entered: enteredP, release };
    },
  };
  const wrap: WrapFlushIo = (io, ctx) => {
    const inner = o.wrap === undefined ? io : o.wrap(io, ctx);
    return {
      ...inner,
      insert: async (plan, queryId, signal) => {
        const st = stall;
        if (st !== undefined) {
          stall = undefined;
          st.entered();
          await st.gate;
          // The request was on its way when the process froze: it is not cancelled by what happened meanwhile.
          await inner.insert(plan, queryId);
          self.inserts++;
          return;
        }
        await inner.insert(plan, queryId, signal);
        self.inserts++;
      },
    };
  };
  const sink = new SinkRuntime({
    shard: s.shard,
    spec: s.trades,
    js,
    jsm,
    clickhouse: ch,
    leaseRevision: revision,
    leaseTtlMs: o.leaseTtlMs ?? 1_500,
    unsafeFenceOff: o.fenceOff ?? FENCE_OFF,
    unsafeClickhouseFenceOff: o.clickhouseFenceOff ?? false,
    log: (l) => log.push(l),
    limits: { maxBatchDelayMs: 50 },
    retry: { baseMs: 50, maxMs: 500, uncertainGraceMs: 500 },
    writersGoneTimeoutMs: 60_000,
    flushIo: wrap,
    clock: () => Date.now() + skewMs,
  });
  (self as { sink: SinkRuntime }).sink = sink;
  const renew = setInterval(() => sink.renew(0), 200);
  timers.push(renew);
  sinks.push(sink);
  sink.start();
  return self;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const persisted = (o: Owner, lsn: number) => () => o.sink.status().persistedLsn >= lsn && o.sink.status().publishedLsn >= lsn;

/** Old owner A holds a pending batch while paused; new owner B persists it; A resumes. */
async function pausedOwner(fenceOff: boolean): Promise<{ s: Scenario; a: Owner; b: Owner }> {
  const s = await scenario();
  const a = owner(s, 1, { fenceOff });
  await ingest(s, 6);
  const l1 = await lastLsn(s);
  await waitFor("A persisted the first batches", persisted(a, l1));
  const stalled = a.stallNext();
  await ingest(s, 4);
  const l2 = await lastLsn(s);
  await stalled.entered;
  // A freezes (SIGSTOP): no renewal, no event handling; its INSERT is on its way.
  a.pause();
  const frozenAt = Date.now();
  const b = owner(s, 2, { fenceOff });
  await waitFor("B persisted everything", persisted(b, l2));
  // Past A's lease TTL since its last renewal (it is well past in practice).
  while (Date.now() - frozenAt < 2_000) await new Promise((r) => setTimeout(r, 100));
  stalled.release();
  await waitFor("A's INSERT resolved one way or the other", () => a.sink.state === "fenced" || a.inserts > 0 || a.sink.status().attempt > 0, 30_000);
  await new Promise((r) => setTimeout(r, 500));
  return { s, a, b };
}

/**
 * Old owner A paused with a batch on its way and a heartbeat put in flight; new owner B persists the batch; the
 * put's reply comes back after the pause and renews A's permit, from when the put was sent (`fromSend`) or, as
 * before the fix, from now; then A's INSERT reaches its permit check. The permit alone is under test unless
 * `clickhouseFence` (ClickHouse's write fence, which refuses the INSERT wherever the permit failed).
 */
async function lateHeartbeat(fromSend: boolean, clickhouseFence = false): Promise<{ s: Scenario; a: Owner }> {
  const s = await scenario();
  const a = owner(s, 1, { clickhouseFenceOff: !clickhouseFence });
  await ingest(s, 6);
  await waitFor("A persisted the first batches", persisted(a, await lastLsn(s)));
  const stalled = a.stallNext();
  await ingest(s, 4);
  const l2 = await lastLsn(s);
  await stalled.entered;
  // The heartbeat put goes out, then A freezes (its clock 10 s ahead once it resumes, see owner()).
  const sentAt = Date.now();
  a.pause();
  const b = owner(s, 2, { clickhouseFenceOff: !clickhouseFence });
  await waitFor("B persisted everything", persisted(b, l2));
  while (Date.now() - sentAt < 2_000) await new Promise((r) => setTimeout(r, 100));
  // The put's reply, handled after SIGCONT: the agent passes how long ago the put was sent (in A's time).
  a.sink.renew(fromSend ? Date.now() + 10_000 - sentAt : 0);
  stalled.release();
  await waitFor("A's INSERT resolved one way or the other", () => a.sink.state === "fenced" || a.inserts > 0 || a.sink.status().attempt > 0, 30_000);
  await new Promise((r) => setTimeout(r, 500));
  return { s, a };
}

describe("fenced sinks", () => {
  it("fence - a heartbeat reply that comes back after a pause renews from when it was sent: the old owner's INSERT is refused, 0 duplicates", async () => {
    const { s, a } = await lateHeartbeat(true);
    expect(a.sink.state).toBe("fenced");
    expect(a.log.join("\n")).toMatch(/lease revision 1 expired/);
    const r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
    expect(r).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    s.wm.close();
  });

  it("fence - negative control: the same reply renewing from when it came back (as before the fix) lets the old owner's INSERT through: duplicates", async () => {
    const { s } = await lateHeartbeat(false);
    const r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
    expect(r.duplicates).toBeGreaterThan(0);
    s.wm.close();
  });

  it("fence - the same late renewal with ClickHouse's write fence on: the permit lets the INSERT go, ClickHouse refuses it, 0 duplicates", async () => {
    const { s, a } = await lateHeartbeat(false, true);
    expect(a.sink.state).toBe("fenced");
    expect(a.log.join("\n")).toMatch(/refused by the shard's write fence in ClickHouse/);
    const r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
    expect(r).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    s.wm.close();
  });

  it("fence - the old owner paused with a pending batch resumes after the new owner persisted it: fenced, 0 duplicates, P never decreases", async () => {
    const { s, a, b } = await pausedOwner(false);
    expect(a.sink.state).toBe("fenced");
    expect(a.log.join("\n")).toMatch(/lease revision 1 expired/);
    await ingest(s, 3);
    await waitFor("B persisted the rest", persisted(b, await lastLsn(s)));
    const r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
    expect(r).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    s.wm.close();
    const w = await s.wm.check(f.nc, s.tenant, "trades");
    expect(w.decreased).toEqual([]);
    expect(w.ahead).toEqual([]);
    // Every watermark after B's first is B's (revision 2): A published nothing once fenced.
    const revs = s.wm.seen.map((x) => x.leaseRevision);
    expect(revs.slice(revs.indexOf(2))).not.toContain(1);
  });

  it("fence - negative control: with the fence off (PX_FENCE_OFF) the resumed old owner's INSERT duplicates rows", async () => {
    const { s } = await pausedOwner(true);
    const r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
    expect(r.duplicates).toBeGreaterThan(0);
    s.wm.close();
  });

  it("fence - clickhouse-server SIGSTOPped while the old owner's INSERT runs: the new owner waits for it, then sends only what is missing", async () => {
    const s = await scenario();
    const a = owner(s, 1);
    await ingest(s, 4);
    await waitFor("A persisted", persisted(a, await lastLsn(s)));
    // Big batches, so an INSERT is visible in system.processes for a while.
    const pump = keepRunning(() => ingest(s, 2, 20_000).catch(() => {}));
    const deadline = Date.now() + 60_000;
    let stopped = false;
    while (!stopped && Date.now() < deadline) {
      const n = await chf.ch.query("SELECT count() FROM system.processes WHERE substring(query_id, 1, 7) = 'pxsink-' AND query LIKE 'INSERT%' FORMAT TabSeparated").catch(() => "0");
      if (Number(n) > 0) {
        await chf.server.kill("SIGSTOP");
        stopped = true;
      }
    }
    await pump.stop();
    expect(stopped).toBe(true);
    // The agent's watch of px_assign moves the shard: A is revoked, B starts while ClickHouse is frozen.
    a.sink.revoke("px_assign moved the shard to n2 (lease revision 2)");
    const b = owner(s, 2);
    await new Promise((r) => setTimeout(r, 3_000));
    await chf.server.kill("SIGCONT");
    await waitFor("B persisted everything", persisted(b, await lastLsn(s)), 120_000);
    expect(a.sink.state).toBe("fenced");
    const r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
    expect(r).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    s.wm.close();
    const w = await s.wm.check(f.nc, s.tenant, "trades");
    expect(w.decreased).toEqual([]);
    expect(w.ahead).toEqual([]);
  }, 240_000);
});

describe("verified P", () => {
  it("verify - a forged watermark (P far ahead) and a stale one (older revision, P ahead): refused, the gap is persisted again, nothing counts that ClickHouse lacks", async () => {
    const s = await scenario();
    const a = owner(s, 1);
    await ingest(s, 4);
    await waitFor("A persisted", persisted(a, await lastLsn(s)));
    await a.sink.stop();
    // Records ClickHouse does not have yet, then a forged watermark claiming them and far more.
    await ingest(s, 3);
    const l2 = await lastLsn(s);
    await publishWatermark(js, s.shard, { persistedLsn: l2 + 1_000_000, tPersistedMicros: 0, leaseRevision: 1 }, Date.now());
    const b = owner(s, 2);
    await waitFor("B persisted the gap", persisted(b, l2));
    expect(b.log.join("\n")).toMatch(/REFUSED watermark P \d+ claims more than ClickHouse holds/);
    expect(b.sink.status().refusedWatermarks).toBe(1);
    let r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
    expect(r).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    await b.sink.stop();
    // A stale owner (revision 1 < 2) claims more again.
    await ingest(s, 2);
    const l3 = await lastLsn(s);
    await publishWatermark(js, s.shard, { persistedLsn: l3, tPersistedMicros: 0, leaseRevision: 1 }, Date.now());
    const c = owner(s, 3);
    await waitFor("C persisted the gap", persisted(c, l3));
    expect(c.log.join("\n")).toMatch(/REFUSED watermark P \d+ claims more than ClickHouse holds/);
    r = await exactlyOnceReport(chf.ch, f.nc, s.tenant, s.trades);
    expect(r).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    s.wm.close();
  });

  it("verify - a sink of an older revision than the last watermark's fences itself at recovery and writes nothing", async () => {
    const s = await scenario();
    const b = owner(s, 5);
    await ingest(s, 2);
    await waitFor("B persisted", persisted(b, await lastLsn(s)));
    const stale = owner(s, 4);
    await waitFor("the stale sink fenced", () => stale.sink.state === "fenced", 30_000);
    expect(stale.inserts).toBe(0);
    expect(stale.log.join("\n")).toMatch(/lease revision 4 is stale: revision 5 wrote the last watermark/);
    s.wm.close();
  });
});

describe("verified P - shards", () => {
  /** A node whose sink cannot write while `block` holds; a forged watermark claims everything; what did the shard do? */
  async function forgedWatermarkOnShard(fenceOff: boolean) {
    const tenant = `fnc${++tenantNo}`;
    const spec = parseClusterSpec({
      tenants: [{ name: tenant, tables: [{ name: "trades", shards: 1, retention: { hotSeconds: 1 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
    });
    const trades = spec.tenants[0]!.tables[0]!;
    let block = false;
    const log: string[] = [];
    // The host reads the switch when it is made.
    if (fenceOff) process.env.PX_FENCE_OFF = "1";
    const node = await nodeOn(
      f.server,
      f.nc,
      {
        clickhouseUrl: chf.server.httpUrl,
        log: (l) => log.push(l),
        sink: {
          limits: { maxBatchDelayMs: 50 },
          retry: { baseMs: 50, maxMs: 300 },
          // The sink cannot write while `block` holds: records pile up unpersisted.
          flushIo: (io) => ({
            ...io,
            insert: async (plan, queryId, signal) => {
              if (block) throw new Error("test: ClickHouse writes blocked");
              await io.insert(plan, queryId, signal);
            },
          }),
        },
      },
      spec,
    ).finally(() => delete process.env.PX_FENCE_OFF);
    nodes.push(node);
    const s: Scenario = { tenant, spec, trades, walk: new RandomWalk(symbolNames(30), 77, 1.75e15), wm: new WatermarkLog(f.nc, chf.ch, tenant, trades), shard: { tenant, table: "trades", bucket: 0 } };
    const pub = new TickPublisher(f.nc, { tenant, spec: trades, maxInFlight: 4, timeoutMs: 5_000 });
    for (let i = 0; i < 4; i++) await pub.publish(s.walk.trades(300, 4_000_000));
    await waitPersisted(node.httpPort, f.nc, tenant, "trades");
    block = true;
    for (let i = 0; i < 4; i++) await pub.publish(s.walk.trades(300, 4_000_000));
    const last = await lastLsn(s);
    await waitFor("the shard applied everything", async () => (await shardViews(node.httpPort, tenant))[0]!.appliedLsn >= last);
    const before = (await shardViews(node.httpPort, tenant))[0]!;
    expect(before.persistedLsn).toBeLessThan(last);
    await publishWatermark(js, s.shard, { persistedLsn: last + 1_000_000, tPersistedMicros: 0, leaseRevision: 0 }, Date.now());
    if (fenceOff) {
      await waitFor("the shard evicting against the forged P", async () => (await shardViews(node.httpPort, tenant))[0]!.persistedLsn > last, 30_000);
      const after = (await shardViews(node.httpPort, tenant))[0]!;
      block = false;
      s.wm.close();
      return { before, after, last };
    }
    await waitFor("the refusal", () => log.some((l) => /REFUSED watermark P \d+ claims more than ClickHouse holds/.test(l)), 30_000);
    const after = (await shardViews(node.httpPort, tenant))[0]!;
    expect(after.persistedLsn).toBe(before.persistedLsn);
    expect(after.rows).toBe(before.rows);
    const metrics = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`px_sink_refused_watermarks_total\\{tenant="${tenant}",table="trades",bucket="0"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`px_sink_fenced\\{tenant="${tenant}",table="trades",bucket="0"\\} 0`));
    block = false;
    await waitPersisted(node.httpPort, f.nc, tenant, "trades");
    expect(await exactlyOnceReport(chf.ch, f.nc, tenant, trades)).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    s.wm.close();
    return { before, after, last };
  }

  it("verify - a shard refuses a forged watermark claiming records ClickHouse lacks: nothing is evicted against it (log line, metric)", async () => {
    await forgedWatermarkOnShard(false);
  });

  it("verify - negative control: with the fence off (PX_FENCE_OFF=1) the shard takes the forged P and evicts rows ClickHouse never got", async () => {
    const { before, after } = await forgedWatermarkOnShard(true);
    expect(after.rows).toBeLessThan(before.rows);
  });
});
