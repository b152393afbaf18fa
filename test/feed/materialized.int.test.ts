// Materialized feeds against a real nats-server and node: the feed actor
// (src/node/feed/runtime.ts) publishes to px.<tenant>.feed.<name>; stopped
// mid-stream and started again it continues exactly (the stream equals an
// uninterrupted feed's, no gap, no duplicate); nats-py reads it with
// subscriber-role credentials; a feed redefined under the same name is refused.
// Fence: a writer of the feed falls silent (its NATS connection behind a
// frozen proxy) after publishing, another takes over and publishes what came
// meanwhile, and the first comes back after the duplicate window: it stores
// nothing twice (negative control: unfenced, its messages are stored again).
// Two writers at once, each taking snapshots on its own timer: the subject's
// places only grow (a regression check without a control of its own: unfenced,
// Nats-Msg-Id's duplicate window hides most of it at this speed).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { tableFromIPC } from "apache-arrow";
import { waitFor } from "xstate";
import { HDR_FEED_KIND, HDR_FEED_OFFSET, HDR_FEED_SHARDS, feedStream, feedSubject } from "../../protocols/subjects.js";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { publishWatermark } from "../../src/wal/index.js";
import { mintUser } from "../../src/auth/index.js";
import { decodeOffset, feedTables, outputPlace, planFeed } from "../../src/feed/index.js";
import type { FeedPlan } from "../../src/feed/index.js";
import { startFeed } from "../../src/node/feed/runtime.js";
import type { FeedRuntime } from "../../src/node/feed/runtime.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { SPEC, apiFixture, ingest, tableOf } from "../api/fixture.js";
import { applyAndWait, serviceCreds } from "../helpers/cluster.js";
import { tcpProxy } from "../helpers/tcpproxy.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ApiFixture, ServiceClient } from "../api/fixture.js";

let f: ApiFixture;
let client: ServiceClient;
let writer: string;
beforeAll(async () => {
  f = await apiFixture();
  client = f.proxist();
  writer = await f.token("alpha", "writer");
}, 120_000);
afterAll(async () => {
  await f?.close();
});

const plan = (query: Record<string, unknown>): FeedPlan => {
  const c = f.node.catalog().get("alpha")!;
  return planFeed("alpha", { query }, (t) => c.get(t), () => [...c.keys()]);
};

async function send(k: number, t0: number): Promise<void> {
  const syms = ["AAPL", "MSFT", "IBM"];
  const rows = 60;
  const b = {
    rows,
    symbols: syms,
    symbolIndex: Uint32Array.from({ length: rows }, (_, i) => (i + k) % 3),
    ts: Float64Array.from({ length: rows }, (_, i) => t0 + k * 100_000 + Math.floor(i / 3) * 1000),
    values: [Float64Array.from({ length: rows }, (_, i) => 100 + ((i * 7 + k) % 13)), Float64Array.from({ length: rows }, (_, i) => 1 + ((i + k) % 9))],
  };
  const { error } = await ingest(client, writer, [{ table: "trades", arrowIpc: tickBatchToIpc(tableOf("alpha", "trades"), b) }]);
  expect(error).toBeUndefined();
}

/** Every message of the feed's subject: kind, offset, rows as JSON. */
type Position = { table: string; bucket: number; lsn: number; persistedLsn: number; horizonMicros: number };
async function stream(name: string, shards?: Position[][]): Promise<{ kind: string; offset: string; rows: string }[]> {
  const jsm = await jetstreamManager(f.node.nc);
  const info = await jsm.streams.info(feedStream("alpha"));
  const out: { kind: string; offset: string; rows: string }[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(feedStream("alpha"), { seq }).catch(() => null);
    if (m === null || m.subject !== feedSubject("alpha", name)) continue;
    shards?.push(JSON.parse(m.header.get(HDR_FEED_SHARDS)) as Position[]);
    out.push({ kind: m.header.get(HDR_FEED_KIND), offset: m.header.get(HDR_FEED_OFFSET), rows: JSON.stringify(tableFromIPC(m.data).toArray().map((r) => JSON.stringify(r, (_, v: unknown) => (typeof v === "bigint" ? Number(v) : v)))) });
  }
  return out;
}

/** The WAL's last LSN now. */
const walEnd = async (): Promise<number> => (await (await jetstreamManager(f.node.nc)).streams.info("PX_WAL_alpha")).state.last_seq;
/** Until `r` folded the WAL to `lsn` and published everything it had. */
const folded = (r: FeedRuntime, lsn: number) => waitFor(r.actor, (s) => s.context.stats.foldedLsn >= lsn && s.matches({ running: { output: "idle" } }), { timeout: 60_000 });

/**
 * Writer `stale` of feed `name` publishes over its own NATS connection
 * through a proxy; the proxy freezes (it hears and says nothing); 3 batches
 * are ingested and writer `fresh` (the node's connection) publishes their
 * updates and stops; past the stream's duplicate window (200 ms here) the
 * proxy thaws and `stale` folds the same records. Returns the offsets of the
 * subject's messages and those of an uninterrupted feed.
 */
async function staleWriter(name: string, t0: number, fenceOff: boolean): Promise<{ offsets: string[]; steady: string[] }> {
  const jsm = await jetstreamManager(f.node.nc);
  const window = (await jsm.streams.info(feedStream("alpha"))).config.duplicate_window;
  await jsm.streams.update(feedStream("alpha"), { duplicate_window: 200 * 1_000_000 });
  const proxy = await tcpProxy(f.nats.server.port);
  const nc = await connect({ servers: `127.0.0.1:${proxy.port}`, ...(await serviceCreds()) });
  const p = plan({ op: "lastBy", table: "trades" });
  const stale = await startFeed({ nc, name, plan: p, fenceOff });
  try {
    for (let k = 0; k < 3; k++) await send(k, t0);
    await folded(stale, await walEnd());
    proxy.freeze();
    for (let k = 3; k < 6; k++) await send(k, t0);
    const fresh = await startFeed({ nc: f.node.nc, name, plan: p });
    await folded(fresh, await walEnd());
    fresh.stop();
    await new Promise((r) => setTimeout(r, 500));
    proxy.thaw();
    await folded(stale, await walEnd());
    const steady = await startFeed({ nc: f.node.nc, name: `${name}_steady`, plan: p });
    await folded(steady, await walEnd());
    steady.stop();
    return { offsets: (await stream(name)).map((m) => m.offset), steady: (await stream(`${name}_steady`)).map((m) => m.offset) };
  } finally {
    stale.stop();
    await nc.close();
    await proxy.close();
    await jsm.streams.update(feedStream("alpha"), { duplicate_window: window });
  }
}

const live = (r: FeedRuntime, records: number) => waitFor(r.actor, (s) => (s.matches({ running: { phase: "live", output: "idle" } }) && s.context.stats.records >= records) || s.matches("failed"), { timeout: 60_000 });

describe("materialized feeds over NATS", () => {
  it("feed actor - stopped mid-stream and restarted, its stream equals an uninterrupted feed's (0 gaps, 0 duplicates); nats-py reads it", async () => {
    const t0 = 1_765_000_000_000_000;
    const q = { op: "rolling", table: "trades", window: "50ms", aggregates: [{ fn: "vwap", column: "price", weight: "size" }, { fn: "ema", column: "price", alpha: 0.2 }] };
    const p = plan(q);
    const steady = await startFeed({ nc: f.node.nc, name: "vwap_steady", plan: p });
    let crashy = await startFeed({ nc: f.node.nc, name: "vwap", plan: p });
    for (let k = 0; k < 5; k++) await send(k, t0);
    await live(crashy, 1);
    crashy.stop(); // the node running it goes away
    // The sink persisted shard trades/0 up to LSN 1: messages published from now on say so.
    await publishWatermark(jetstream(f.node.nc), { tenant: "alpha", table: "trades", bucket: 0 }, { persistedLsn: 1, tPersistedMicros: t0, leaseRevision: 0 }, Date.now());
    for (let k = 5; k < 10; k++) await send(k, t0);
    crashy = await startFeed({ nc: f.node.nc, name: "vwap", plan: p });
    for (let k = 10; k < 14; k++) await send(k, t0);
    const wal = (await (await jetstreamManager(f.node.nc)).streams.info("PX_WAL_alpha")).state.last_seq;
    const done = (r: FeedRuntime) => waitFor(r.actor, (s) => s.context.stats.foldedLsn >= wal && s.matches({ running: { output: "idle" } }), { timeout: 60_000 });
    await Promise.all([done(steady), done(crashy)]);
    const positions: Position[][] = [];
    const a = await stream("vwap", positions);
    // Each message: per shard of trades the LSN it covers (its offset), P and H (-1: not hosted by this process's feed).
    expect(positions.every((ps) => ps.map((x) => `${x.table}/${x.bucket}`).join() === Array.from({ length: tableOf("alpha", "trades").shards }, (_, b) => `trades/${b}`).join())).toBe(true);
    expect(positions.at(-1)!.find((x) => x.bucket === 0)!.persistedLsn).toBe(1);
    expect(positions.every((ps) => ps.every((x) => x.horizonMicros === -1 && x.lsn > 0))).toBe(true);
    const b = await stream("vwap_steady");
    expect(a.length).toBeGreaterThan(10);
    expect(a).toEqual(b);
    expect(new Set(a.map((m) => m.offset)).size).toBe(a.length);

    // nats-py with subscriber-role credentials of tenant alpha.
    const m = await mintUser(f.nats.server.auth!.identity, { role: "subscriber", tenant: "alpha" });
    const creds = join(f.nats.server.dir, `subscriber-alpha-${m.credId}.creds`);
    writeFileSync(creds, m.creds, { mode: 0o600 });
    const root = join(import.meta.dirname, "../..");
    const { stdout } = await promisify(execFile)(`${root}/.venv/bin/python`, [`${root}/test/feed/nats_consumer.py`, f.nats.server.url, creds, "alpha", "vwap", String(a.length)], { timeout: 60_000 });
    const lines = stdout.trim().split("\n").map((l) => JSON.parse(l) as { kind: string; offset: string; rows: number; first: Record<string, unknown> });
    expect(lines.map((l) => l.offset)).toEqual(a.map((x) => x.offset));
    expect(lines.every((l) => l.kind === "update" && l.rows > 0 && typeof l.first.vwap_price === "number")).toBe(true);
    steady.stop();
    crashy.stop();
  }, 150_000);

  it("feed actor - a feed redefined under a used name fails by name instead of mixing two feeds on one subject", async () => {
    const first = await startFeed({ nc: f.node.nc, name: "last", plan: plan({ op: "lastBy", table: "trades" }) });
    await send(20, 1_766_000_000_000_000);
    await live(first, 1);
    first.stop();
    const other = await startFeed({ nc: f.node.nc, name: "last", plan: plan({ op: "lastBy", table: "trades", columns: ["price"] }) });
    const s = await waitFor(other.actor, (x) => x.matches("failed"), { timeout: 30_000 });
    expect(s.context.error).toMatch(/the offset belongs to feed .*, not to this feed/);
    other.stop();
  }, 90_000);

  it("feed fence - a writer silent while another published comes back past the duplicate window: nothing is stored twice, the subject equals an uninterrupted feed's", async () => {
    const { offsets, steady } = await staleWriter("fenced", 1_768_000_000_000_000, false);
    expect(offsets.length).toBeGreaterThan(3);
    expect(new Set(offsets).size).toBe(offsets.length);
    expect(offsets).toEqual(steady);
  }, 120_000);

  it("feed fence, negative control - unfenced, the writer that comes back stores the other's messages again", async () => {
    const { offsets } = await staleWriter("unfenced", 1_769_000_000_000_000, true);
    console.log(`unfenced: ${offsets.length} messages, ${new Set(offsets).size} offsets`);
    expect(new Set(offsets).size).toBeLessThan(offsets.length);
  }, 120_000);

  it("feed fence - two writers of one feed at once, each with its own snapshots: the subject's places only grow, its updates are an uninterrupted feed's", async () => {
    const p = plan({ op: "lastBy", table: "trades" });
    const t0 = 1_770_000_000_000_000;
    const writers = [await startFeed({ nc: f.node.nc, name: "twice", plan: p, snapshotIntervalMs: 30 }), await startFeed({ nc: f.node.nc, name: "twice", plan: p, snapshotIntervalMs: 45 })];
    const steady = await startFeed({ nc: f.node.nc, name: "twice_steady", plan: p });
    try {
      for (let k = 0; k < 8; k++) {
        await send(k, t0);
        await new Promise((r) => setTimeout(r, 20));
      }
      const end = await walEnd();
      await Promise.all([...writers, steady].map((w) => folded(w, end)));
    } finally {
      for (const w of [...writers, steady]) w.stop();
    }
    const msgs = await stream("twice");
    const place = (m: { kind: string; offset: string }): number => outputPlace(m.kind === "snapshot" ? "snapshot" : "update", decodeOffset(m.offset, p.fingerprint, feedTables(p)))[0];
    const places = msgs.map(place);
    expect(places.every((x, i) => i === 0 || x > places[i - 1]!)).toBe(true);
    expect(msgs.some((m) => m.kind === "snapshot")).toBe(true);
    expect(msgs.filter((m) => m.kind === "update")).toEqual(await stream("twice_steady"));
  }, 120_000);

  it("FeedSpec - a feed applied in px_config runs on the standalone node and publishes to px.<tenant>.feed.<name>", async () => {
    const raw = JSON.parse(JSON.stringify(SPEC)) as { tenants: { name: string; feeds?: unknown[] }[] };
    raw.tenants.find((t) => t.name === "alpha")!.feeds = [{ name: "bars_1s", query: { op: "bars", table: "trades", bucket: "1s" } }];
    await applyAndWait(f.node.nc, parseClusterSpec(raw), f.node);
    const deadline = Date.now() + 30_000;
    while (!f.node.feeds?.running.has("alpha/bars_1s") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const rt = f.node.feeds!.running.get("alpha/bars_1s")!;
    await send(30, 1_767_000_000_000_000);
    const wal = (await (await jetstreamManager(f.node.nc)).streams.info("PX_WAL_alpha")).state.last_seq;
    await waitFor(rt.actor, (s) => s.context.stats.foldedLsn >= wal && s.matches({ running: { output: "idle" } }), { timeout: 60_000 });
    const msgs = await stream("bars_1s");
    expect(msgs.length).toBeGreaterThan(0);
    expect(msgs.every((m) => m.kind === "update")).toBe(true);
  }, 90_000);
});
