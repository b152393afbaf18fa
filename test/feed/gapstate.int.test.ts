// Subscriptions over a WAL that compaction trimmed, against a real
// nats-server, clickhouse-server and a node with sinks.
// 1. Shards compact to floors of their own: here shard 0 is compacted and
//    shard 1 is not, so the WAL still holds shard 1's records below shard 0's
//    floor. A raw subscription resumed from an early offset gets shard 0's
//    compacted records from ClickHouse merged in LSN order with the WAL's:
//    every row after the offset once. Negative control: with the merge off
//    (PX_UNSAFE_NO_GAP_MERGE=1, the code before it) the WAL's records of shard 1
//    below shard 0's floor are taken as already folded and never arrive.
// 2. Stateful subscriptions (last-by, bars) build their state from the whole
//    history: the compacted part read back from ClickHouse, then the WAL. The
//    last-by board and the bars equal the batch query's answer. Negative
//    control: without the ClickHouse read (PX_UNSAFE_NO_WAL_GAP_READ=1) the
//    board lacks the symbols whose rows were all compacted.
// 3. PX_FEED_HISTORY_MAX_ROWS bounds what a stateful subscription reads back:
//    past it the call ends FAILED_PRECONDITION naming the limit.
// 4. An as-of subscription (trades with quotes, shard counts 2 and 3) on a
//    compacted WAL reads both tables' history back, merged in LSN order: every
//    trade with the prevailing quote, as the batch as-of query answers.
//    Negative control: without the ClickHouse read, trades are missing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { status as Status } from "@grpc/grpc-js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { createToken } from "../../src/auth/index.js";
import { opsRequest } from "../../src/cli/opsrequest.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { FeedSubscriber } from "../../src/client/feeds.js";
import type { FeedUpdate } from "../../src/client/feeds.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, waitPersisted, walRows } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { readWal } from "../helpers/wal.js";
import { nodeShards } from "../helpers/replay.js";

const TENANT = "gaps";
const spec = parseClusterSpec({
  tenants: [
    {
      name: TENANT,
      tables: [
        { name: "trades", shards: 2, retention: { walKeep: 1 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] },
        { name: "quotes", shards: 3, retention: { walKeep: 1 }, columns: ["bid", "ask", "bid_size", "ask_size"].map((name) => ({ name, type: "float64" })) },
      ],
    },
  ],
});
const trades = spec.tenants[0]!.tables[0]!;
const quotes = spec.tenants[0]!.tables[1]!;
const BAR_COLUMNS = ["sym", "ts", "open", "high", "low", "close", "volume"];

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode;
let reader = "";
let address = "";
/** Set by the first test: an early offset and the (lsn:row) keys after it. */
let resumeFrom = "";
let wantedAfter: string[] = [];
beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
  node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, snapshotIntervalMs: 0, compaction: { intervalMs: 0 }, grpcPort: 0 }, spec);
  reader = await createToken(f.nc, { tenant: TENANT, role: "reader" });
  address = `127.0.0.1:${node.grpcPort!}`;
}, 120_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
  await chf?.close();
});

/** Updates of a subscription until `enough` or the deadline (the call is closed after). */
async function read(sub: FeedSubscriber, enough: (got: FeedUpdate[]) => boolean, ms = 60_000): Promise<{ updates: FeedUpdate[]; error: Error | undefined }> {
  const updates: FeedUpdate[] = [];
  const timer = setTimeout(() => sub.close(), ms);
  let error: Error | undefined;
  try {
    for await (const u of sub.updates()) {
      updates.push(u);
      if (enough(updates)) break;
    }
  } catch (e) {
    error = e as Error;
  }
  clearTimeout(timer);
  sub.close();
  return { updates, error };
}

const keysOf = (us: readonly FeedUpdate[]): string[] =>
  us.flatMap((u) => {
    const lsn = u.table.getChild("_lsn")!;
    const row = u.table.getChild("_row")!;
    return Array.from({ length: u.table.numRows }, (_, i) => `${Number(lsn.get(i))}:${Number(row.get(i))}`);
  });

async function compact(shards: string[]): Promise<void> {
  await waitPersisted(node.httpPort, f.nc, TENANT, "trades");
  expect((await opsRequest(f.nc, "snapshot", { shards }, 30_000, 1)).flatMap((r) => r.lines).every((l) => l.ok)).toBe(true);
  const lines = (await opsRequest(f.nc, "compact", { shards }, 30_000, 1)).flatMap((r) => r.lines);
  expect(lines.every((l) => l.ok && /records purged/.test(l.message)), JSON.stringify(lines)).toBe(true);
}

/** Waits until the node's shards applied every record these acks name: a batch query asked then sees all of them (an ack says the WAL holds a record, not that its shard applied it). */
async function applied(table: string, acks: readonly Awaited<ReturnType<TickPublisher["publish"]>>[]): Promise<void> {
  const want = acks.flatMap((a) => a.appends.map((x) => [`${TENANT}.${table}.${x.bucket}`, x.lsn] as const));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const shards = await nodeShards(node.httpPort);
    if (want.every(([k, lsn]) => (shards.get(k)?.appliedLsn ?? -1) >= lsn)) return;
    if (Date.now() > deadline) throw new Error(`the node's ${table} shards did not apply ${JSON.stringify(want)} in 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function batchQuery(query: Record<string, unknown>): Promise<{ columns: string[]; rows: unknown[][] }> {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}/v1/query`, { method: "POST", body: JSON.stringify(query), headers: { authorization: `Bearer ${reader}`, accept: "application/json" } });
  const body = (await r.json()) as { columns: { name: string }[] | string[]; rows: unknown[][]; error?: string };
  expect(r.status, body.error).toBe(200);
  return { columns: body.columns.map((c) => (typeof c === "string" ? c : c.name)), rows: body.rows };
}

describe("feeds - subscriptions over a compacted WAL", () => {
  it("gap merge - a raw resume whose shards compacted to different floors gets the compacted rows from ClickHouse merged with the WAL's: every row after the offset once", async () => {
    const walk = new RandomWalk(symbolNames(40), 3, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 4 });
    for (let i = 0; i < 4; i++) await pub.publish(walk.trades(200, 50_000));
    const first = await read(new FeedSubscriber({ address, token: reader, feed: { op: "range", table: "trades" }, from: "snapshot", reconnect: false }), (u) => keysOf(u).length >= 300);
    expect(first.error).toBeUndefined();
    const offset = first.updates.at(-1)!.offset;
    const at = JSON.parse(Buffer.from(offset, "base64url").toString("utf8")) as { l: Record<string, number> };
    for (let i = 0; i < 16; i++) await pub.publish(walk.trades(200, 50_000));
    await waitPersisted(node.httpPort, f.nc, TENANT, "trades");
    const every = await walRows(f.nc, TENANT, "trades");
    // Shard 0 only: its floor lies far above shard 1's, whose records stay in the WAL.
    await compact([`${TENANT}.trades.0`]);
    const left = new Set((await readWal(f.nc, TENANT)).map((r) => r.lsn));
    const wanted: string[] = [];
    let purged0 = 0;
    let below0 = 0;
    const floor0 = Math.max(...[...every].filter(([lsn, r]) => r.bucket === 0 && !left.has(lsn)).map(([lsn]) => lsn)) + 1;
    for (const [lsn, r] of every) {
      if (lsn <= (at.l[`trades/${r.bucket}`] ?? 0)) continue;
      for (let k = 0; k < r.rows; k++) wanted.push(`${lsn}:${k}`);
      if (r.bucket === 0 && !left.has(lsn)) purged0++;
      if (r.bucket === 1 && left.has(lsn) && lsn < floor0) below0++;
    }
    expect(purged0, "shard 0 records after the offset only ClickHouse holds").toBeGreaterThan(5);
    expect(below0, "shard 1 records in the WAL below shard 0's floor").toBeGreaterThan(5);
    resumeFrom = offset;
    wantedAfter = wanted;
    const got = keysOf((await read(new FeedSubscriber({ address, token: reader, feed: { op: "range", table: "trades" }, from: offset, reconnect: false }), (u) => keysOf(u).length >= wanted.length, 30_000)).updates);
    expect(new Set(got).size, "no row twice").toBe(got.length);
    const want = new Set(wanted);
    expect(got.filter((k) => !want.has(k)), "rows the offset covered").toEqual([]);
    const have = new Set(got);
    expect(wanted.filter((k) => !have.has(k)).length, "rows missing").toBe(0);
  }, 180_000);

  it("gap merge - negative control: with the merge off (PX_UNSAFE_NO_GAP_MERGE=1) the WAL's shard 1 records below shard 0's floor never arrive", async () => {
    expect(resumeFrom, "the first test ran").not.toBe("");
    process.env.PX_UNSAFE_NO_GAP_MERGE = "1";
    try {
      const got = new Set(keysOf((await read(new FeedSubscriber({ address, token: reader, feed: { op: "range", table: "trades" }, from: resumeFrom, reconnect: false }), (u) => keysOf(u).length >= wantedAfter.length, 8_000)).updates));
      expect(wantedAfter.filter((k) => !got.has(k)).length).toBeGreaterThan(0);
    } finally {
      delete process.env.PX_UNSAFE_NO_GAP_MERGE;
    }
  }, 60_000);

  /** The last-by board and the bars of a subscription from "snapshot" (the first message), with its notes. */
  async function boards(): Promise<{ last: string[]; bars: string[]; notes: string }> {
    const lastSub = await read(new FeedSubscriber({ address, token: reader, feed: { op: "lastBy", table: "trades", columns: ["price", "size"] }, from: "snapshot", reconnect: false }), (u) => u.some((x) => x.kind === "snapshot"));
    const barSub = await read(new FeedSubscriber({ address, token: reader, feed: { op: "bars", table: "trades", bucket: "10s" }, from: "snapshot", reconnect: false }), (u) => u.some((x) => x.kind === "snapshot"));
    expect(lastSub.error).toBeUndefined();
    expect(barSub.error).toBeUndefined();
    // Arrow's timestamp[us] reads as milliseconds in JavaScript; the JSON query answers microseconds.
    const rowsOf = (u: FeedUpdate, cols: string[]): string[] => u.table.toArray().map((r) => JSON.stringify(cols.map((c) => (c === "ts" ? Number(r[c]) * 1000 : typeof r[c] === "bigint" ? Number(r[c]) : r[c]))));
    const lastSnap = lastSub.updates.find((x) => x.kind === "snapshot")!;
    const barSnap = barSub.updates.find((x) => x.kind === "snapshot")!;
    return { last: rowsOf(lastSnap, ["sym", "price", "size"]).sort(), bars: rowsOf(barSnap, BAR_COLUMNS).sort(), notes: lastSnap.table.schema.metadata.get("proxist.notes") ?? "" };
  }

  it("stateful - last-by and bar subscriptions on a compacted WAL build their state from ClickHouse, then the WAL: the board and the bars equal the batch queries'", async () => {
    // Symbols that stop trading early: their last rows are compacted away, in ClickHouse only.
    const walk = new RandomWalk(symbolNames(30), 9, 1.76e15);
    // Ticks of 8 of them later, but at times 20 s into the first ones (inside the lateness): their last rows stay the
    // compacted ones, and bars hold compacted and WAL ticks together.
    const late = new RandomWalk(symbolNames(8), 10, 1.76e15 + 20e6);
    const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 4 });
    for (let i = 0; i < 6; i++) await pub.publish(walk.trades(150, 40_000));
    await compact([`${TENANT}.trades`]);
    const lateAcks = [];
    for (let i = 0; i < 2; i++) lateAcks.push(await pub.publish(late.trades(40, 40_000)));
    await applied("trades", lateAcks);
    const b = await boards();
    expect(b.notes).toBe("");
    const want = await batchQuery({ op: "lastBy", table: "trades", columns: ["price", "size"] });
    const col = (n: string) => want.columns.indexOf(n);
    expect(b.last.length).toBeGreaterThanOrEqual(30);
    expect(b.last).toEqual(want.rows.map((r) => JSON.stringify([r[col("sym")], r[col("price")], r[col("size")]])).sort());
    // The bar feed holds the bars a tick within its lateness can still change: each equals the batch query's bar.
    const bars = await batchQuery({ op: "bars", table: "trades", bucket: "10s" });
    const bc = (n: string) => bars.columns.indexOf(n);
    const all = new Set(bars.rows.map((r) => JSON.stringify(BAR_COLUMNS.map((c) => r[bc(c)]))));
    expect(b.bars.length).toBeGreaterThan(30);
    expect(b.bars.filter((x) => !all.has(x))).toEqual([]);
  }, 180_000);

  it("stateful - negative control: without the ClickHouse read (PX_UNSAFE_NO_WAL_GAP_READ=1) the board lacks the symbols whose rows were all compacted", async () => {
    process.env.PX_UNSAFE_NO_WAL_GAP_READ = "1";
    try {
      const b = await boards();
      const want = await batchQuery({ op: "lastBy", table: "trades", columns: ["price", "size"] });
      expect(b.last.length).toBeLessThan(want.rows.length);
    } finally {
      delete process.env.PX_UNSAFE_NO_WAL_GAP_READ;
    }
  }, 120_000);

  it("stateful - past PX_FEED_HISTORY_MAX_ROWS the call ends FAILED_PRECONDITION naming the limit", async () => {
    process.env.PX_FEED_HISTORY_MAX_ROWS = "100";
    try {
      const r = await read(new FeedSubscriber({ address, token: reader, feed: { op: "lastBy", table: "trades" }, from: "snapshot", reconnect: false }), () => false, 20_000);
      expect(r.error?.message).toMatch(/needs more than 100 rows of compacted WAL history read back from ClickHouse \(PX_FEED_HISTORY_MAX_ROWS\); declare it as a materialized feed/);
      expect((r.error as { code?: number } | undefined)?.code).toBe(Status.FAILED_PRECONDITION);
    } finally {
      delete process.env.PX_FEED_HISTORY_MAX_ROWS;
    }
  }, 60_000);

  /** Every trade of an as-of subscription from "snapshot" until it sent `n` rows (or the deadline), as [sym, ts, price, bid]. */
  async function asofRows(n: number, ms = 30_000): Promise<string[]> {
    const r = await read(new FeedSubscriber({ address, token: reader, feed: { op: "asof", table: "trades", columns: ["price"], right: { table: "quotes", columns: ["bid"] } }, from: "snapshot", reconnect: false }), (u) => u.reduce((k, x) => k + x.table.numRows, 0) >= n, ms);
    expect(r.error).toBeUndefined();
    return r.updates.flatMap((u) => u.table.toArray().map((x) => JSON.stringify([x.sym, Number(x.ts) * 1000, x.price, x.bid ?? null]))).sort();
  }

  it("as-of - a subscription of trades with quotes on a compacted WAL reads both tables' history back: every trade with the prevailing quote, as the batch query answers", async () => {
    const start = 1.77e15;
    const q = new RandomWalk(symbolNames(12), 21, start);
    const t = new RandomWalk(symbolNames(12), 22, start);
    const qpub = new TickPublisher(f.nc, { tenant: TENANT, spec: quotes, maxInFlight: 1 });
    const tpub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 1 });
    // Each round's quotes before its trades, over the same time span: a trade's prevailing quote was acknowledged before it.
    for (let i = 0; i < 6; i++) {
      await qpub.publish(q.quotes(120, 5_000_000));
      await tpub.publish(t.trades(80, 5_000_000));
    }
    await waitPersisted(node.httpPort, f.nc, TENANT, "quotes");
    await compact([TENANT]);
    await applied("quotes", [await qpub.publish(q.quotes(60, 5_000_000))]);
    await applied("trades", [await tpub.publish(t.trades(40, 5_000_000))]);
    const want = await batchQuery({ op: "asof", table: "trades", columns: ["price"], right: { table: "quotes", columns: ["bid"] } });
    const c = (n: string) => want.columns.indexOf(n);
    const wantRows = want.rows.map((r) => JSON.stringify([r[c("sym")], r[c("ts")], r[c("price")], r[c("bid")] ?? null])).sort();
    expect(wantRows.filter((r) => !r.endsWith(",null]")).length, "trades with a quote").toBeGreaterThan(400);
    expect(await asofRows(wantRows.length)).toEqual(wantRows);
  }, 180_000);

  it("as-of - negative control: without the ClickHouse read (PX_UNSAFE_NO_WAL_GAP_READ=1) the compacted trades are missing", async () => {
    process.env.PX_UNSAFE_NO_WAL_GAP_READ = "1";
    try {
      const want = await batchQuery({ op: "asof", table: "trades", columns: ["price"], right: { table: "quotes", columns: ["bid"] } });
      expect((await asofRows(want.rows.length, 5_000)).length).toBeLessThan(want.rows.length);
    } finally {
      delete process.env.PX_UNSAFE_NO_WAL_GAP_READ;
    }
  }, 60_000);
});
