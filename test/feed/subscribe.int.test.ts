// Feeds over gRPC against a real nats-server and node (test/api/fixture.ts):
// Subscribe's output equals the batch query; resuming from an offset equals
// the uninterrupted run; a slow consumer's call ends RESOURCE_EXHAUSTED with
// an offset and FeedSubscriber resumes from it exactly; durable feeds wait
// for the shard's P; bad input gets named refusals.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import type { Table } from "apache-arrow";
import { SubscribeRequestSchema } from "../../protocols/gen/proxist/v1/feed_pb.js";
import type { FeedMessage } from "../../protocols/gen/proxist/v1/feed_pb.js";
import { FeedsClient } from "../../src/api/index.js";
import { FeedSubscriber } from "../../src/client/feeds.js";
import type { FeedUpdate } from "../../src/client/feeds.js";
import { batch, ipc } from "./ticks.js";
import { publishWatermark } from "../../src/wal/index.js";
import { credentials } from "@grpc/grpc-js";
import { Status, apiFixture, ingest, lsnOf, md, serverStream, tableOf } from "../api/fixture.js";
import type { ApiFixture, ServiceClient } from "../api/fixture.js";

let f: ApiFixture;
let client: ServiceClient;
let feeds: ServiceClient;
let writer: string;
let reader: string;
beforeAll(async () => {
  f = await apiFixture();
  client = f.proxist();
  feeds = new FeedsClient(f.address, credentials.createInsecure());
  writer = await f.token("alpha", "writer");
  reader = await f.token("alpha", "reader");
}, 120_000);
afterAll(async () => {
  feeds?.close();
  await f?.close();
});


async function send(n: number, rows: number, t0: number): Promise<number> {
  const { acks, error } = await ingest(client, writer, Array.from({ length: n }, (_, k) => ({ table: "trades", arrowIpc: ipc(batch(rows, t0 + k * rows * 500, k)) })));
  expect(error).toBeUndefined();
  return lsnOf(acks);
}

type Row = Record<string, unknown>;
/** Rows with int64 as numbers and timestamps (Arrow JS reads them as float ms) back in integer µs. */
const rowsOf = (t: Table): Row[] =>
  t.toArray().map((r) => Object.fromEntries(t.schema.fields.map((fl) => [fl.name, normal((r as Row)[fl.name], String(fl.type).startsWith("Timestamp"))])));
const normal = (v: unknown, ts: boolean): unknown => (typeof v === "bigint" ? Number(v) : ts && typeof v === "number" ? Math.round(v * 1000) : v);

/** Reads updates until `done` says so (or the deadline). */
async function collect(sub: FeedSubscriber, done: (rows: Row[], us: FeedUpdate[]) => boolean, ms = 60_000, delayMs = 0): Promise<{ rows: Row[]; updates: FeedUpdate[] }> {
  const rows: Row[] = [];
  const updates: FeedUpdate[] = [];
  const timer = setTimeout(() => sub.close(), ms);
  for await (const u of sub.updates()) {
    // A slow consumer: it takes its time over each update.
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    updates.push(u);
    rows.push(...rowsOf(u.table));
    if (done(rows, updates)) break;
  }
  clearTimeout(timer);
  return { rows, updates };
}

const inWindow = (t0: number, t1: number) => (r: Row) => (r.ts as number) >= t0 && (r.ts as number) < t1;

describe("feeds over gRPC Subscribe", () => {
  it("raw and rolling feeds - the ticks and per-tick VWAP/EMA equal the batch range and rolling queries", async () => {
    const t0 = 1_760_000_000_000_000;
    const t1 = t0 + 3_600_000_000;
    const raw = new FeedSubscriber({ address: f.address, token: reader, feed: { op: "range", table: "trades", columns: ["price"] } });
    const rollingFeed = { op: "rolling", table: "trades", window: "5s", aggregates: [{ fn: "vwap", column: "price", weight: "size" }, { fn: "ema", column: "price", alpha: 0.25 }, { fn: "count" }] };
    const roll = new FeedSubscriber({ address: f.address, token: reader, feed: rollingFeed });
    const n = 6 * 400;
    const rawP = collect(raw, (rows) => rows.filter(inWindow(t0, t1)).length >= n);
    const rollP = collect(roll, (rows) => rows.filter(inWindow(t0, t1)).length >= n);
    await new Promise((r) => setTimeout(r, 500)); // both calls started ("now" = after their start message)
    const lsn = await send(6, 400, t0);
    const [gotRaw, gotRoll] = await Promise.all([rawP, rollP]);
    raw.close();
    roll.close();
    const wantRaw = await f.engine.execute("alpha", { op: "range", table: "trades", t0, t1, columns: ["price"], minLsn: lsn });
    expect(gotRaw.rows.length).toBe(wantRaw.table.rows);
    const key = (r: Row) => `${String(r._lsn)}:${String(r._row)}`;
    expect(new Set(gotRaw.rows.map(key)).size).toBe(n);
    const sortKey = (a: Row, b: Row) => (a.ts as number) - (b.ts as number) || (a._lsn as number) - (b._lsn as number) || (a._row as number) - (b._row as number);
    const byTime = [...gotRaw.rows].sort(sortKey);
    const priceCol = wantRaw.table.columns[2]!.data;
    byTime.forEach((r, k) => expect(r.price).toBe(priceCol[k]));
    // Rolling: ticks arrive in time order per symbol here, so each tick's feed value is its batch value.
    const want = await f.engine.execute("alpha", { op: "rolling", table: "trades", t0, t1, window: "5s", aggregates: rollingFeed.aggregates, sort: "time", minLsn: lsn });
    const got = [...gotRoll.rows].sort(sortKey);
    expect(got.length).toBe(want.table.rows);
    const col = (name: string) => want.table.columns.find((c) => c.field.name === name)!.data;
    got.forEach((r, k) => {
      expect(r.ts).toBe(col("ts")[k]);
      expect(Math.abs((r.vwap_price as number) - col("vwap_price")[k]!)).toBeLessThanOrEqual(1e-9 * Math.abs(col("vwap_price")[k]!));
      expect(r.ema_price).toBe(col("ema_price")[k]);
      expect(r.count).toBe(col("count")[k]);
    });
    // Every message says which shards it covers, with P and H.
    expect(gotRoll.updates[0]!.shards.map((s) => `${s.table}/${s.bucket}`).sort()).toEqual(Array.from({ length: tableOf("alpha", "trades").shards }, (_, b) => `trades/${b}`).sort());
  }, 120_000);

  it("resume - a subscriber stopped mid-stream and resumed from its offset gets exactly the uninterrupted output", async () => {
    const t0 = 1_761_000_000_000_000;
    const feed = { op: "bars", table: "trades", bucket: "1s" };
    const start = await send(1, 10, t0 - 10_000_000); // something before the feed starts
    const whole = new FeedSubscriber({ address: f.address, token: reader, feed, from: "snapshot" });
    const first = new FeedSubscriber({ address: f.address, token: reader, feed, from: "snapshot" });
    const wholeP = collect(whole, (_, us) => us.some((u) => u.shards.every((s) => s.lsn >= last)));
    const firstP = collect(first, (_, us) => us.length >= 3);
    let last = Infinity;
    last = await send(8, 300, t0);
    expect(last).toBeGreaterThan(start);
    const a = await firstP;
    first.close();
    const rest = new FeedSubscriber({ address: f.address, token: reader, feed, from: a.updates.at(-1)!.offset });
    const b = await collect(rest, (_, us) => us.some((u) => u.shards.every((s) => s.lsn >= last)));
    rest.close();
    const w = await wholeP;
    whole.close();
    const text = (us: FeedUpdate[]) => us.map((u) => JSON.stringify(rowsOf(u.table)) + u.offset);
    expect([...text(a.updates), ...text(b.updates)]).toEqual(text(w.updates));
  }, 120_000);

  it("large record - a record's update over FEED_MESSAGE_BYTES arrives in parts a default gRPC client takes; resumed from a part's offset, the rest of its rows follow exactly", async () => {
    const t0 = 1_761_500_000_000_000;
    const feed = { op: "range", table: "trades" };
    const rows = 100_000;
    const sub = new FeedSubscriber({ address: f.address, token: reader, feed, reconnect: false });
    const subP = collect(sub, (got) => got.filter(inWindow(t0, t0 + 3_600_000_000)).length >= rows);
    await new Promise((r) => setTimeout(r, 500)); // the call started ("now" = after its start message)
    await send(1, rows, t0);
    const all = await subP;
    sub.close();
    expect(all.rows.length).toBe(rows);
    const partOf = (u: FeedUpdate) => (JSON.parse(Buffer.from(u.offset, "base64url").toString("utf8")) as { p?: [number, number] }).p;
    const parts = all.updates.filter((u) => partOf(u) !== undefined);
    expect(parts.length).toBeGreaterThanOrEqual(2);
    // Every row once, in the record's order (_row counts up within each record).
    expect(new Set(all.rows.map((r) => `${String(r._lsn)}/${String(r._row)}`)).size).toBe(rows);
    // The second part of a record: its offset is inside the record.
    const k = all.updates.findIndex((u, i) => i > 0 && partOf(u) !== undefined && partOf(all.updates[i - 1]!) !== undefined);
    expect(k).toBeGreaterThan(0);
    const rest = new FeedSubscriber({ address: f.address, token: reader, feed, from: all.updates[k]!.offset, reconnect: false });
    const after = all.rows.slice(all.updates.slice(0, k + 1).reduce((n, u) => n + u.table.numRows, 0));
    const b = await collect(rest, (got) => got.length >= after.length, 30_000);
    rest.close();
    expect(partOf(all.updates[k]!)).toBeDefined();
    expect(b.rows).toEqual(after);
  }, 120_000);

  it("slow consumer - the call ends RESOURCE_EXHAUSTED with the offset to resume from; FeedSubscriber resumes with no gap and no duplicate", async () => {
    const t0 = 1_762_000_000_000_000;
    // A raw call nobody reads: the server's buffer of 2 messages overflows.
    const call = feeds.subscribe!(create(SubscribeRequestSchema, { feedJson: JSON.stringify({ op: "range", table: "trades" }), maxBuffer: 2 }), md(reader));
    const received: FeedMessage[] = [];
    const ended = new Promise<{ code: number; details: string }>((resolve) => call.on("error", (e: { code: number; details: string }) => resolve(e)));
    // grpc-js emits the status as soon as it has pushed the last message into the stream, while messages may still wait in
    // the paused stream's buffer: the stream's end comes after the last of them was read.
    const drained = new Promise((resolve) => call.on("end", resolve));
    const startedP = new Promise((r) => call.once("data", r));
    call.on("data", (m: FeedMessage) => {
      received.push(m);
      // Stops reading after the start message: the server's writes back up, then its buffer of 2 overflows.
      if (received.length === 1) call.pause();
    });
    await startedP;
    const slow = new FeedSubscriber({ address: f.address, token: reader, feed: { op: "range", table: "trades", columns: ["size"] }, maxBuffer: 2, backoffMs: 20, flowControlWindow: 65_535 });
    // Both end here whatever fails: a subscription left open would hold the WAL in the next test.
    try {
      const n = 40 * 2000;
      let seen = 0;
      const slowP = collect(
        slow,
        (rows) => {
          seen = rows.filter(inWindow(t0, t0 + 3_600_000_000)).length;
          return seen >= n;
        },
        100_000,
        25,
      );
      await new Promise((r) => setTimeout(r, 300));
      await send(40, 2000, t0);
      await new Promise((r) => setTimeout(r, 2000));
      // Reading again drains what the server wrote before it gave up.
      call.resume();
      const e = await ended;
      await Promise.race([drained, new Promise((r) => setTimeout(r, 10_000))]);
      expect(e.code).toBe(Status.RESOURCE_EXHAUSTED);
      expect(e.details).toMatch(/read too slowly .* buffer of 2 messages is full; nothing is lost: subscribe again with from = "[A-Za-z0-9_-]+"/);
      // The offset named is the last message the call delivered: resuming there loses nothing and repeats nothing.
      expect(e.details).toContain(`"${received.at(-1)!.offset}"`);
      const got = await slowP;
      const mine = got.rows.filter(inWindow(t0, t0 + 3_600_000_000));
      expect(mine.length).toBe(n);
      expect(new Set(mine.map((r) => `${String(r._lsn)}:${String(r._row)}`)).size).toBe(n);
      expect(slow.reconnects).toBeGreaterThan(0);
    } finally {
      slow.close();
      call.cancel();
    }
  }, 150_000);

  it("compaction hold - an open subscription holds its table's WAL from the first record it has not received; the hold ends with the call", async () => {
    const before = await send(2, 20, 1_762_000_000_000_000);
    expect(f.node.subscriptions.holds("alpha", "trades")).toEqual([]);
    // From the start of the WAL: it needs everything it has not read yet.
    const sub = new FeedSubscriber({ address: f.address, token: reader, feed: { op: "range", table: "trades" }, from: "snapshot" });
    const seen = await collect(sub, (_, us) => us.some((u) => Math.max(...u.shards.map((s) => s.lsn)) >= before));
    const held = f.node.subscriptions.holds("alpha", "trades");
    expect(held).toHaveLength(1);
    expect(held[0]).toBeGreaterThan(before);
    expect(f.node.subscriptions.holds("alpha", "quotes")).toEqual([]);
    expect(seen.rows.length).toBeGreaterThan(0);
    sub.close();
    const deadline = Date.now() + 10_000;
    while (f.node.subscriptions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(f.node.subscriptions.holds("alpha", "trades")).toEqual([]);
  });

  it("slow stateful consumer - a VWAP subscription that overflows resumes from the state its call left: the same rows as an uninterrupted one, without folding the WAL again", async () => {
    const t0 = 1_763_000_000_000_000;
    const feed = { op: "rolling", table: "trades", window: "5s", aggregates: [{ fn: "vwap", column: "price", weight: "size" }, { fn: "ema", column: "price", alpha: 0.25 }] };
    const steady = new FeedSubscriber({ address: f.address, token: reader, feed });
    // A 64 KiB HTTP/2 window (grpc-js's default; FeedSubscriber opens 8 MiB): the server's writes soon wait for this reader.
    const slow = new FeedSubscriber({ address: f.address, token: reader, feed, maxBuffer: 2, backoffMs: 20, flowControlWindow: 65_535 });
    const notes: string[] = [];
    try {
      const n = 30 * 1000;
      const done = (rows: Row[]) => rows.filter(inWindow(t0, t0 + 3_600_000_000)).length >= n;
      const steadyP = collect(steady, done, 100_000);
      const slowP = collect(
        slow,
        (rows, us) => {
          const note = us.at(-1)!.table.schema.metadata.get("proxist.notes");
          if (note !== undefined && !notes.includes(note)) notes.push(note);
          return done(rows);
        },
        100_000,
        25,
      );
      await new Promise((r) => setTimeout(r, 500));
      await send(30, 1000, t0);
      const [a, b] = await Promise.all([steadyP, slowP]);
      const mine = (rows: Row[]) => rows.filter(inWindow(t0, t0 + 3_600_000_000));
      expect(mine(b.rows).length).toBe(n);
      expect(mine(b.rows)).toEqual(mine(a.rows));
      expect(slow.reconnects).toBeGreaterThan(0);
      // At least one resume went on from the parked state (the others, if any, folded the WAL again: the same rows).
      expect(notes.some((x) => /resumed from the state the call that ended at this offset left/.test(x))).toBe(true);
    } finally {
      steady.close();
      slow.close();
    }
    // A parked state no resume took holds the WAL until it expires (30 s): none may be left for the tests after this one.
    for (let i = 0; i < 350 && f.node.subscriptions.holds("alpha", "trades").length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  }, 150_000);

  it("durable - a durable feed delivers a record only once its shard's P covers it", async () => {
    const t0 = 1_763_000_000_000_000;
    const sub = new FeedSubscriber({ address: f.address, token: reader, feed: { op: "range", table: "trades", symbols: ["AAPL"] }, durable: true });
    const got: FeedUpdate[] = [];
    const reading = (async () => {
      for await (const u of sub.updates()) got.push(u);
    })();
    await new Promise((r) => setTimeout(r, 500));
    const { acks } = await ingest(client, writer, [{ table: "trades", arrowIpc: ipc({ ...batch(40, t0, 1), symbolIndex: new Uint32Array(40) }) }]);
    const lsn = lsnOf(acks);
    await new Promise((r) => setTimeout(r, 1500));
    expect(got).toEqual([]); // no sink here: nothing is persisted, nothing is durable
    // Play the sink: the AAPL shard's P passes the record.
    const bucket = acks[0]!.appends[0]!.bucket;
    await publishWatermark(jetstream(f.node.nc), { tenant: "alpha", table: "trades", bucket }, { persistedLsn: lsn, tPersistedMicros: t0, leaseRevision: 0 }, Date.now());
    const deadline = Date.now() + 20_000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    sub.close();
    await reading;
    expect(got.reduce((n, u) => n + u.table.numRows, 0)).toBe(40);
    expect(got[0]!.shards.find((s) => s.bucket === bucket)!.persistedLsn).toBeGreaterThanOrEqual(lsn);
  }, 60_000);

  it("bad input - unknown table or column, another tenant, window 0, an offset of another feed: named refusals", async () => {
    const refuse = async (req: Record<string, unknown>, token = reader) => {
      const { error } = await serverStream<FeedMessage>(feeds, "subscribe", create(SubscribeRequestSchema, { feedJson: JSON.stringify(req.feed), from: (req.from as string) ?? "" }), token);
      expect(error).toBeDefined();
      return error!;
    };
    let e = await refuse({ feed: { op: "range", table: "nope" } });
    expect([e.code, e.details]).toEqual([Status.NOT_FOUND, expect.stringMatching(/tenant alpha has no table nope/)]);
    e = await refuse({ feed: { op: "range", table: "trades", columns: ["px"] } });
    expect([e.code, e.details]).toEqual([Status.INVALID_ARGUMENT, expect.stringMatching(/table trades has no column "px"/)]);
    e = await refuse({ feed: { op: "range", table: "beta.fx" } });
    expect(e.code).toBe(Status.PERMISSION_DENIED);
    e = await refuse({ feed: { op: "rolling", table: "trades", window: 0, aggregates: [{ fn: "count" }] } });
    expect([e.code, e.details]).toEqual([Status.INVALID_ARGUMENT, expect.stringMatching(/window/)]);
    // An offset of a bars feed handed to a raw feed.
    const bars = new FeedSubscriber({ address: f.address, token: reader, feed: { op: "bars", table: "trades", bucket: "1s" } });
    const it0 = bars.updates();
    const p = it0.next();
    await new Promise((r) => setTimeout(r, 300));
    await send(1, 4, 1_764_000_000_000_000);
    const u = await p;
    bars.close();
    e = await refuse({ feed: { op: "range", table: "trades" }, from: (u.value as FeedUpdate).offset });
    expect([e.code, e.details]).toEqual([Status.INVALID_ARGUMENT, expect.stringMatching(/the offset belongs to feed .*, not to this feed/)]);
  }, 60_000);
});
