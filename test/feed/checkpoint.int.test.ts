// Feed checkpoints end to end, against a real nats-server, clickhouse-server
// and node: materialized feeds (rolling VWAP + EMA, 1 s bars) save their
// state every second; the node's WAL is persisted, snapshotted and compacted
// (the feeds hold it only from their checkpoints), the node stops, a new node
// starts on the same servers, loads the checkpoints and folds on from the WAL
// left; more ticks come. Each feed's stream equals the stream of a twin of
// the same definition that ran the whole time without a restart (in the test
// process): no gap, no duplicate, the same values. Negative control: a feed of
// the same definition that saves no checkpoint (checkpointSeconds 0) fails
// after the same restart, naming the WAL records compaction purged, when
// reading them back from ClickHouse is switched off (PX_UNSAFE_NO_WAL_GAP_READ=1).
// Then a bar feed and an as-of feed (trades 2 shards, quotes 1) declared only
// now, on the compacted WAL, read the compacted records back from ClickHouse
// (merged with the WAL's) and publish exactly the streams of twins that ran
// from the start.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { tableFromIPC } from "apache-arrow";
import { HDR_FEED_KIND, HDR_FEED_OFFSET, feedCheckpointObject, feedCheckpointPrefix, feedStream, feedSubject } from "../../protocols/subjects.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { opsRequest } from "../../src/cli/opsrequest.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { planFeed } from "../../src/feed/index.js";
import type { FeedPlan } from "../../src/feed/index.js";
import { startFeed } from "../../src/node/feed/runtime.js";
import type { FeedRuntime } from "../../src/node/feed/runtime.js";
import type { ProxistNode } from "../../src/node/node.js";
import { openSnapshotBucket } from "../../src/snapshot/store.js";
import { applyAndWait, natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, waitPersisted, walRows } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { readWal } from "../helpers/wal.js";

const TENANT = "ckpt";
const VWAP = { op: "rolling", table: "trades", window: "2s", aggregates: [{ fn: "vwap", column: "price", weight: "size" }, { fn: "ema", column: "price", alpha: 0.1 }] };
const BARS = { op: "bars", table: "trades", bucket: "1s" };
const ASOF = { op: "asof", table: "trades", right: { table: "quotes", columns: ["bid"] } };
const spec = parseClusterSpec({
  tenants: [
    {
      name: TENANT,
      tables: [
        { name: "trades", shards: 2, retention: { walKeep: 1 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] },
        { name: "quotes", shards: 1, retention: { walKeep: 1 }, columns: ["bid", "ask", "bid_size", "ask_size"].map((name) => ({ name, type: "float64" })) },
      ],
      feeds: [
        { name: "vwap", query: VWAP, checkpointSeconds: 1 },
        { name: "bars", query: BARS, checkpointSeconds: 1 },
        { name: "vwap_nockpt", query: VWAP, checkpointSeconds: 0 },
      ],
    },
  ],
});
const trades = spec.tenants[0]!.tables[0]!;
const quotes = spec.tenants[0]!.tables[1]!;
const nodeOptions = (url: string) => ({ clickhouseUrl: url, snapshotIntervalMs: 0, compaction: { intervalMs: 0 }, grpcPort: 0 });

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode | undefined;
const twins: FeedRuntime[] = [];
beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
}, 120_000);
afterAll(async () => {
  for (const t of twins) t.stop();
  await node?.stop();
  await f?.close();
  await chf?.close();
});

const planOf = (n: ProxistNode, query: Record<string, unknown>): FeedPlan => {
  const c = n.catalog().get(TENANT)!;
  return planFeed(TENANT, { query }, (t) => c.get(t), () => [...c.keys()]);
};

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const lastWalLsn = async (): Promise<number> => Math.max(...(await walRows(f.nc, TENANT, "trades")).keys());
const stats = (n: ProxistNode, name: string) => n.feeds!.running.get(`${TENANT}/${name}`)!.actor.getSnapshot();
const idleAt = (s: ReturnType<typeof stats>, lsn: number): boolean => s.context.stats.foldedLsn >= lsn && s.matches({ running: { output: "idle" } });

/** Every message of the feed's subject: kind, offset, rows. */
async function messages(name: string): Promise<string[]> {
  const jsm = await jetstreamManager(f.nc);
  const info = await jsm.streams.info(feedStream(TENANT));
  const out: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(feedStream(TENANT), { seq }).catch(() => null);
    if (m === null || m.subject !== feedSubject(TENANT, name)) continue;
    const rows = tableFromIPC(m.data).toArray().map((r) => JSON.stringify(r, (_, v: unknown) => (typeof v === "bigint" ? Number(v) : v)));
    out.push(`${m.header.get(HDR_FEED_KIND)} ${m.header.get(HDR_FEED_OFFSET)} ${rows.join(";")}`);
  }
  return out;
}

describe("feed checkpoints - a restart after WAL compaction", () => {
  it("checkpoint restart - feeds restarted after their WAL was compacted load their checkpoints and go on exactly as an uninterrupted twin; without checkpoints nor the read back from ClickHouse the same restart fails by name; a feed declared on the compacted WAL reads its history from ClickHouse", async () => {
    node = await nodeOn(f.server, f.nc, nodeOptions(chf.server.httpUrl), spec);
    for (const [name, query] of [["vwap_twin", VWAP], ["bars_twin", BARS], ["asof_twin", ASOF]] as const) twins.push(await startFeed({ nc: f.nc, name, plan: planOf(node, query) }));
    const walk = new RandomWalk(symbolNames(20), 11, 1.75e15);
    const qwalk = new RandomWalk(symbolNames(20), 12, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 4 });
    const qpub = new TickPublisher(f.nc, { tenant: TENANT, spec: quotes, maxInFlight: 1 });
    /** Rounds of quotes, then trades over the same span (the last record of a part is a trade). */
    const part = async (): Promise<void> => {
      for (let i = 0; i < 8; i++) {
        await qpub.publish(qwalk.quotes(200, 200_000));
        await pub.publish(walk.trades(400, 200_000));
      }
    };
    await part();
    const first = await lastWalLsn();
    const n1 = node;
    await until("the feeds to fold and checkpoint the first part", () => stats(n1, "vwap").context.stats.checkpointLsn >= first && stats(n1, "bars").context.stats.checkpointLsn >= first && idleAt(stats(n1, "vwap"), first) && idleAt(stats(n1, "bars"), first) && idleAt(stats(n1, "vwap_nockpt"), first));
    await until("the twins to fold the first part", () => twins.every((t) => idleAt(t.actor.getSnapshot(), first)));

    // Persisted, snapshotted, compacted: the feeds hold nothing below their checkpoints, so the WAL's start goes.
    await waitPersisted(n1.httpPort, f.nc, TENANT, "trades");
    await waitPersisted(n1.httpPort, f.nc, TENANT, "quotes");
    expect((await opsRequest(f.nc, "snapshot", { shards: [TENANT] }, 30_000, 1)).flatMap((r) => r.lines).every((l) => l.ok)).toBe(true);
    const compacted = (await opsRequest(f.nc, "compact", { shards: [TENANT] }, 30_000, 1)).flatMap((r) => r.lines);
    expect(compacted.every((l) => l.ok && /records purged/.test(l.message)), JSON.stringify(compacted)).toBe(true);
    const left = (await readWal(f.nc, TENANT)).filter((r) => r.subject.includes(".wal.")).map((r) => r.lsn);
    expect(Math.min(...left), "the WAL's first record after compaction").toBeGreaterThan(10);

    // A feed removed from the spec while no node ran it left a checkpoint behind: the next node start sweeps it.
    const store = await openSnapshotBucket(f.nc, 1);
    const saved = async (name: string): Promise<number> => (await store.list()).filter((i) => !i.deleted && i.name.startsWith(feedCheckpointPrefix(TENANT, name))).length;
    await store.putBlob({ name: feedCheckpointObject(TENANT, "ghost", "fp", 1) }, Uint8Array.of(1));
    expect(await saved("ghost")).toBe(1);
    await n1.stop();
    node = undefined;
    // The control below: without checkpoints and without the read back from ClickHouse, nothing can rebuild the state.
    process.env.PX_UNSAFE_NO_WAL_GAP_READ = "1";
    node = await nodeOn(f.server, f.nc, nodeOptions(chf.server.httpUrl), spec);
    const n2 = node;
    await until("the feed without checkpoints to fail", () => n2.feeds!.running.get(`${TENANT}/vwap_nockpt`)?.actor.getSnapshot().matches("failed") === true).finally(() => delete process.env.PX_UNSAFE_NO_WAL_GAP_READ);
    await until("the removed feed's checkpoint to be swept", async () => (await saved("ghost")) === 0);
    await part();
    const second = await lastWalLsn();
    await until("the restarted feeds to fold the second part", () => n2.feeds!.running.has(`${TENANT}/bars`) && idleAt(stats(n2, "vwap"), second) && idleAt(stats(n2, "bars"), second));
    await until("the twins to fold the second part", () => twins.every((t) => idleAt(t.actor.getSnapshot(), second)));

    for (const name of ["vwap", "bars"]) {
      expect(stats(n2, name).context.stats.restoredFrom, name).toMatch(/^checkpoint at LSN \d+ \(\d+ bytes\)$/);
      const got = await messages(name);
      const want = await messages(`${name}_twin`);
      expect(got.length, `${name}: messages`).toBeGreaterThan(16);
      expect(new Set(got).size, `${name}: no message twice`).toBe(got.length);
      expect(got, `${name}: the stream equals the uninterrupted twin's`).toEqual(want);
    }
    // What an operator sees: GET /v1/feeds on the node.
    const views = (await (await fetch(`http://127.0.0.1:${n2.httpPort}/v1/feeds`)).json()) as { name: string; state: string; checkpointing: boolean; checkpointLsn: number; restoredFrom?: string; error?: string; foldedLsn: number; publishedLsn: number }[];
    const view = (name: string) => views.find((v) => v.name === name)!;
    expect(view("vwap")).toMatchObject({ state: "running.live", checkpointing: true, restoredFrom: expect.stringMatching(/^checkpoint at LSN \d+/) as unknown as string });
    expect(view("vwap").checkpointLsn).toBeGreaterThanOrEqual(first);
    expect(view("vwap").foldedLsn).toBeGreaterThanOrEqual(second);
    expect(view("vwap_nockpt")).toMatchObject({ state: "failed", checkpointing: false, error: expect.stringMatching(/WAL consumer failed/) as unknown as string });
    const metricsText = await (await fetch(`http://127.0.0.1:${n2.httpPort}/metrics`)).text();
    const gauge = (name: string, feed: string): number => Number(new RegExp(`^${name}\\{tenant="${TENANT}",feed="${feed}"\\} (\\S+)$`, "m").exec(metricsText)?.[1] ?? "NaN");
    // A checkpoint may land between the two reads: the gauge is at least what /v1/feeds said.
    expect(gauge("px_feed_checkpoint_lsn", "vwap")).toBeGreaterThanOrEqual(view("vwap").checkpointLsn);
    expect(gauge("px_feed_failed", "vwap")).toBe(0);
    expect(gauge("px_feed_failed", "vwap_nockpt")).toBe(1);
    // Negative control: the same definition without checkpoints cannot rebuild its state from the compacted WAL.
    expect(stats(n2, "vwap_nockpt").context.error).toMatch(/WAL consumer failed: .*A materialized feed rebuilds its state from its last checkpoint and the WAL after it, or reads compacted records back from ClickHouse, and neither works here \(reading compacted records back is switched off/);

    // Feeds declared now, on the compacted WAL: their state comes from ClickHouse (an as-of feed's two tables merged), then the WAL.
    const withLate = parseClusterSpec({ tenants: [{ ...JSON.parse(JSON.stringify(spec.tenants[0])), feeds: [...spec.tenants[0]!.feeds!, { name: "bars_late", query: BARS }, { name: "asof_late", query: ASOF }] }] });
    await applyAndWait(f.nc, withLate, n2);
    for (const name of ["bars", "asof"]) {
      await until(`${name}_late to start`, () => n2.feeds!.running.has(`${TENANT}/${name}_late`));
      await until(`${name}_late to fold everything`, () => idleAt(stats(n2, `${name}_late`), second));
      expect(stats(n2, `${name}_late`).context.stats.restoredFrom).toBe("no checkpoint: folding the WAL from its first record");
      const late = await messages(`${name}_late`);
      expect(late.length).toBeGreaterThan(16);
      expect(late, `${name}_late: the stream equals the twin's that ran from the start`).toEqual(await messages(`${name}_twin`));
    }

    // A feed removed from the spec takes its checkpoints with it (px_snapshots' room is shared with shard snapshots); the others keep theirs.
    expect(await saved("vwap"), "vwap's checkpoints before its removal").toBeGreaterThan(0);
    expect(await saved("bars")).toBeGreaterThan(0);
    const withoutVwap = parseClusterSpec({ tenants: [{ ...JSON.parse(JSON.stringify(withLate.tenants[0])), feeds: withLate.tenants[0]!.feeds!.filter((x) => x.name !== "vwap") }] });
    await applyAndWait(f.nc, withoutVwap, n2);
    await until("vwap to stop", () => !n2.feeds!.running.has(`${TENANT}/vwap`));
    await until("vwap's checkpoints to be removed", async () => (await saved("vwap")) === 0);
    expect(await saved("bars"), "another feed's checkpoints stay").toBeGreaterThan(0);
  }, 240_000);
});
