// The fence of a materialized feed's output against a real nats-server: two
// runtimes of one feed race as the old and the new owner after a move. The
// old owner is held with its batches in hand while the new one recovers from
// the subject's head and publishes; the old one resumes past the duplicate
// window (the feed stream is made here with a 1 s window, so no 2-minute
// wait) and tries to publish. Fenced: JetStream refuses it, nothing stale or
// twice is stored (the subject equals an uninterrupted run's), the old owner
// ends fenced naming the new one. Negative control (PX_FEED_FENCE_OFF=1):
// the same race stores the old owner's stale updates after the new owner's.
// Through two feed hosts (as on two nodes): the feed moves from host A to
// host B while A has not learnt it yet and both fold the same records; the
// one that publishes second is fenced, and the hosts settle with the feed on
// B alone (A stops it once its shard left; a fenced B runs again from the
// subject's head), the subject equal to an uninterrupted run's.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiscardPolicy, RetentionPolicy, StorageType, jetstreamManager } from "@nats-io/jetstream";
import { waitFor } from "xstate";
import { HDR_FEED_OFFSET, HDR_FEED_PUBLISHER, feedStream, feedSubject, feedSubjectsOfTenant, walStream } from "../../protocols/subjects.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { planFeed } from "../../src/feed/index.js";
import type { FeedPlan } from "../../src/feed/index.js";
import { FENCED_RESTART_MS, feedHost } from "../../src/node/feed/host.js";
import { startFeed } from "../../src/node/feed/runtime.js";
import type { FeedRuntime } from "../../src/node/feed/runtime.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { feedMessages } from "../helpers/feedstream.js";

const TENANT = "ff";
const QUERY = { op: "rolling", table: "trades", window: "50ms", aggregates: [{ fn: "vwap", column: "price", weight: "size" }] };
const SPEC = parseClusterSpec({ tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });
const trades = SPEC.tenants[0]!.tables[0]!;
const DUPLICATE_WINDOW_MS = 1_000;

let f: NatsFixture;
let node: ProxistNode;
let plan: FeedPlan;
beforeAll(async () => {
  f = await natsFixture();
  node = await nodeOn(f.server, f.nc, {}, SPEC);
  // The tenant's feed stream made before any feed (which then leaves it as it is), with a short duplicate window.
  const jsm = await jetstreamManager(f.nc);
  await jsm.streams.add({ name: feedStream(TENANT), subjects: [feedSubjectsOfTenant(TENANT)], storage: StorageType.File, retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old, num_replicas: 1, duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000 });
  plan = planFeed(TENANT, { query: QUERY }, (t) => (t === "trades" ? trades : undefined), () => ["trades"]);
}, 120_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

const walk = new RandomWalk(symbolNames(6), 5, 1.75e15);
async function ingest(batches: number): Promise<number> {
  const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 1 });
  for (let i = 0; i < batches; i++) await pub.publish(walk.trades(40, 20_000));
  return (await (await jetstreamManager(f.nc)).streams.info(walStream(TENANT))).state.last_seq;
}
const folded = (r: FeedRuntime, lsn: number) => waitFor(r.actor, (s) => (s.context.stats.foldedLsn >= lsn && s.matches({ running: { output: "idle" } })) || s.matches("failed") || s.matches("fenced"), { timeout: 30_000 });

/** Who published each message of the feed's subject, in stream order. */
async function publishers(name: string): Promise<string[]> {
  const jsm = await jetstreamManager(f.nc);
  const info = await jsm.streams.info(feedStream(TENANT));
  const out: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(feedStream(TENANT), { seq }).catch(() => null);
    if (m !== null && m.subject === feedSubject(TENANT, name) && m.header.get(HDR_FEED_OFFSET)) out.push(m.header.get(HDR_FEED_PUBLISHER));
  }
  return out;
}

/** Old owner A held with batches in hand, new owner B takes over and publishes, A resumes past the window. */
async function race(name: string, fenceOff: boolean) {
  if (fenceOff) process.env.PX_FEED_FENCE_OFF = "1";
  let held = false;
  let release = (): void => {};
  const gate = new Promise<void>((r) => (release = r));
  let a: FeedRuntime | undefined;
  let b: FeedRuntime | undefined;
  try {
    a = await startFeed({ nc: f.nc, name, plan, beforePublish: () => (held ? gate : Promise.resolve()) });
    await folded(a, await ingest(5));
    const byA = (await feedMessages(f.nc, TENANT, name)).length;
    // A is paused from here: it folds the next records, its publish waits.
    held = true;
    const heldUpTo = await ingest(5);
    await waitFor(a.actor, (s) => s.context.stats.foldedLsn >= heldUpTo && s.matches({ running: { output: "publishing" } }), { timeout: 30_000 });
    // The feed moved: B recovers from the subject's head (A's last message) and publishes what A holds, and more.
    b = await startFeed({ nc: f.nc, name, plan });
    const end = await ingest(3);
    const bEnd = await folded(b, end);
    await new Promise((r) => setTimeout(r, DUPLICATE_WINDOW_MS + 300));
    release();
    const aEnd = await waitFor(a.actor, (s) => s.matches("fenced") || s.matches("failed") || (s.context.outbox.length === 0 && s.matches({ running: { output: "idle" } })), { timeout: 30_000 });
    // Whatever A still does after resuming has had time to land.
    await new Promise((r) => setTimeout(r, 300));
    const got = await feedMessages(f.nc, TENANT, name);
    const by = await publishers(name);
    return { a, b, byA, aEnd, bEnd, got, by, end };
  } finally {
    delete process.env.PX_FEED_FENCE_OFF;
    a?.stop();
    b?.stop();
  }
}

/** The same feed run without interruption under another name, folded to `lsn`. */
async function uninterrupted(name: string, lsn: number) {
  const steady = await startFeed({ nc: f.nc, name, plan });
  try {
    await folded(steady, lsn);
    return await feedMessages(f.nc, TENANT, name);
  } finally {
    steady.stop();
  }
}

describe("materialized feed - fenced output", () => {
  it("feed fence - an old owner resuming after the new one published is refused by JetStream: 0 stale or duplicate updates stored, the old owner ends fenced", async () => {
    const r = await race("vwap", false);
    const want = await uninterrupted("vwap_steady", r.end);
    console.log(`fenced: ${r.got.length} messages (${r.byA} by the old owner before it was held), old owner ${JSON.stringify(r.aEnd.value)}: ${r.aEnd.context.fenced?.reason}`);
    expect(r.byA).toBeGreaterThan(0);
    expect(r.aEnd.matches("fenced")).toBe(true);
    expect(r.aEnd.context.fenced?.publisher).toBe(r.b.publisher);
    expect(r.aEnd.context.error).toBeUndefined();
    expect(r.bEnd.matches({ running: { phase: "live" } })).toBe(true);
    expect(new Set(r.got.map((m) => m.offset)).size).toBe(r.got.length);
    expect(r.got.map((m) => m.rows)).toEqual(want.map((m) => m.rows));
    // A's messages end where it was held; everything after is B's.
    expect(r.by.slice(0, r.byA).every((p) => p === r.a.publisher)).toBe(true);
    expect(r.by.slice(r.byA).every((p) => p === r.b.publisher)).toBe(true);
  }, 120_000);

  it("negative control - the same race with the fence off (PX_FEED_FENCE_OFF=1) stores the old owner's stale updates after the new owner's", async () => {
    const r = await race("vwap_nofence", true);
    const dups = r.got.length - new Set(r.got.map((m) => m.offset)).size;
    console.log(`unfenced: ${r.got.length} messages, ${dups} with an offset stored before, old owner ${JSON.stringify(r.aEnd.value)}`);
    expect(r.aEnd.matches("fenced")).toBe(false);
    expect(dups).toBeGreaterThan(0);
    expect(r.by.at(-1)).toBe(r.a.publisher);
  }, 120_000);

  it("feed fence - two feed hosts racing over a move settle with the feed on the new owner alone: the loser is fenced, the subject equals an uninterrupted run's", async () => {
    const withFeed = parseClusterSpec({ tenants: [{ ...SPEC.tenants[0]!, feeds: [{ name: "hosted", query: QUERY }] }] }).tenants[0]!;
    let owner = "A";
    const logs: string[] = [];
    const host = (id: string) =>
      feedHost({
        nc: f.nc,
        tenants: async () => new Map([[TENANT, { spec: withFeed }]]),
        catalog: () => node.catalog(),
        replicas: 1,
        log: (line) => logs.push(`${id}: ${line}`),
        runsHere: () => owner === id,
        elsewhere: () => "shard 0 left this node",
      });
    const a = host("A");
    const b = host("B");
    try {
      await a.reconcile();
      await folded(a.running.get(`${TENANT}/hosted`)!, await ingest(3));
      // The feed moves to B; A has not heard yet: both fold the next records and both publish.
      owner = "B";
      await b.reconcile();
      await waitFor(b.running.get(`${TENANT}/hosted`)!.actor, (s) => s.matches("running"), { timeout: 30_000 });
      const end = await ingest(4);
      const fenced = await waitForValue("one host's feed to be fenced", () => [a, b].flatMap((h) => h.status()).find((x) => x.state === "fenced"));
      const loser = fenced.publisher === a.running.get(`${TENANT}/hosted`)?.publisher ? "A" : "B";
      console.log(`fenced on ${loser}: ${fenced.fenced}`);
      // A hears that shard 0 left; a fenced B runs again from the subject's head after FENCED_RESTART_MS.
      await a.reconcile();
      expect(a.running.size).toBe(0);
      await new Promise((r) => setTimeout(r, FENCED_RESTART_MS + 500));
      const live = (lsn: number) =>
        waitForValue("the feed on B to be live and caught up", () => {
          const r = b.running.get(`${TENANT}/hosted`);
          const s = r?.actor.getSnapshot();
          return s !== undefined && s.matches({ running: { phase: "live", output: "idle" } }) && s.context.stats.foldedLsn >= lsn ? r : undefined;
        });
      await live(end);
      // More records after the dust settled: B (restarted or not) publishes them, A nothing.
      const last = await ingest(2);
      const settled = await live(last);
      expect(b.status().map((x) => x.state)).toEqual(["running"]);
      const got = await feedMessages(f.nc, TENANT, "hosted");
      const want = await uninterrupted("hosted_steady", last);
      expect(new Set(got.map((m) => m.offset)).size).toBe(got.length);
      expect(got.map((m) => m.rows)).toEqual(want.map((m) => m.rows));
      expect((await publishers("hosted")).at(-1)).toBe(settled.publisher);
      expect(logs.some((l) => /^[AB]: feed ff\/hosted: fenced, publishes nothing more: /.test(l))).toBe(true);
      expect(logs).toContain("A: feed ff/hosted: stopped (shard 0 left this node)");
      // The new owner, if it lost the race, took the subject back by running again from its head.
      if (loser === "B") expect(logs.some((l) => /^B: feed ff\/hosted: fenced [\d.]+ s ago and still placed here: running again from its subject's head$/.test(l))).toBe(true);
    } finally {
      a.stop();
      b.stop();
    }
  }, 120_000);
});

async function waitForValue<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
