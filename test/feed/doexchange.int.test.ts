// Feeds over Arrow Flight DoExchange against a real nats-server and node
// (test/api/fixture.ts): pyarrow.flight consumes a raw and a last-by feed
// while ticks are published and resumes from its last offset (no gap, no
// duplicate); the batches and offsets equal gRPC Subscribe's for the same
// ticks; a stalled client ends RESOURCE_EXHAUSTED with an offset; bad input
// gets the same named refusals as Subscribe.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { credentials } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import type { ClientReadableStream } from "@grpc/grpc-js";
import type { Table } from "apache-arrow";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SubscribeRequestSchema } from "../../protocols/gen/proxist/v1/feed_pb.js";
import { walStream, watermarkStream } from "../../protocols/subjects.js";
import type { FeedMessage } from "../../protocols/gen/proxist/v1/feed_pb.js";
import { FlightDataSchema } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { FeedsClient } from "../../src/api/index.js";
import { FeedSubscriber } from "../../src/client/feeds.js";
import type { FeedUpdate } from "../../src/client/feeds.js";
import { batch, ipc } from "./ticks.js";
import { Status, apiFixture, ingest, lsnOf, md, pathDescriptor, serverStream, tableOf } from "../api/fixture.js";
import type { ApiFixture, ServiceClient } from "../api/fixture.js";
import { PYTHON, runPython } from "../api/python.js";
import { exchange } from "./exchange.js";

const CLIENT = fileURLToPath(new URL("./exchange_client.py", import.meta.url));

let f: ApiFixture;
let client: ServiceClient;
let flight: ServiceClient;
let feeds: ServiceClient;
let writer: string;
let reader: string;
beforeAll(async () => {
  f = await apiFixture();
  client = f.proxist();
  flight = f.flight();
  feeds = new FeedsClient(f.address, credentials.createInsecure());
  writer = await f.token("alpha", "writer");
  reader = await f.token("alpha", "reader");
}, 120_000);
afterAll(async () => {
  feeds?.close();
  await f?.close();
});


async function send(n: number, rows: number, t0: number, gapMs = 0): Promise<number> {
  let lsn = 0;
  for (let k = 0; k < n; k++) {
    const { acks, error } = await ingest(client, writer, [{ table: "trades", arrowIpc: ipc(batch(rows, t0 + k * rows * 500, k)) }]);
    expect(error).toBeUndefined();
    lsn = Math.max(lsn, lsnOf(acks));
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  }
  return lsn;
}

type Row = Record<string, unknown>;
/** Rows with int64 as numbers and timestamps (Arrow JS reads them as float ms) in integer µs, symbols as strings. */
const rowsOf = (t: Table): Row[] =>
  t.toArray().map((r) => Object.fromEntries(t.schema.fields.map((fl) => [fl.name, normal((r as Row)[fl.name], String(fl.type).startsWith("Timestamp"))])));
const normal = (v: unknown, ts: boolean): unknown => (typeof v === "bigint" ? Number(v) : ts && typeof v === "number" ? Math.round(v * 1000) : v);

/** The start offset of a gRPC subscription to `feed` (the call is cancelled once it has it). */
async function startOffset(feed: unknown): Promise<string> {
  const call = feeds.subscribe!(create(SubscribeRequestSchema, { feedJson: JSON.stringify(feed) }), md(reader)) as ClientReadableStream<FeedMessage>;
  const m = await new Promise<FeedMessage>((resolve, reject) => {
    call.once("data", resolve);
    call.once("error", reject);
  });
  call.cancel();
  call.on("error", () => {});
  return m.offset;
}

/** gRPC Subscribe updates from `from` until a row with ts >= stopTs. */
async function grpcUntil(feed: Record<string, unknown>, from: string, stopTs: number): Promise<FeedUpdate[]> {
  const sub = new FeedSubscriber({ address: f.address, token: reader, feed, from, reconnect: false });
  const out: FeedUpdate[] = [];
  const timer = setTimeout(() => sub.close(), 60_000);
  for await (const u of sub.updates()) {
    out.push(u);
    if (rowsOf(u.table).some((r) => (r.ts as number) >= stopTs)) break;
  }
  clearTimeout(timer);
  sub.close();
  return out;
}

interface PyBatch {
  kind: string;
  offset: string;
  rows: Row[];
  shards: { table: string; bucket: number; lsn: number; persistedLsn: number; horizonMicros: number }[];
}
interface PyOut {
  batches: PyBatch[];
  calls: number;
  start: { kind: string; offset: string };
  error?: string;
  message?: string;
}

const pyRead = (feed: unknown, from: string, stopTs: number, extra: Record<string, number> = {}) =>
  runPython(CLIENT, "read", { port: f.api.port, token: reader, feed: JSON.stringify(feed), from, "stop-ts": stopTs, ...extra }, 90_000) as unknown as Promise<PyOut>;

describe("feeds over Flight DoExchange", () => {
  it("pyarrow - raw and last-by feeds read while ticks are published, resumed from the last offset: every tick once, batches and offsets equal gRPC Subscribe's", async () => {
    const t0 = 1_770_000_000_000_000;
    const stopTs = t0 + 1_000_000_000;
    const rawFeed = { op: "range", table: "trades" };
    const lastFeed = { op: "lastBy", table: "trades", columns: ["price", "size"] };
    const [rawFrom, lastFrom] = await Promise.all([startOffset(rawFeed), startOffset(lastFeed)]);
    // Python cancels each call after 3 batches and subscribes again from the last offset it got.
    const pyRaw = pyRead(rawFeed, rawFrom, stopTs, { "cut-after": 3 });
    const pyLast = pyRead(lastFeed, lastFrom, stopTs, { "cut-after": 3 });
    const grpcRaw = grpcUntil(rawFeed, rawFrom, stopTs);
    const grpcLast = grpcUntil(lastFeed, lastFrom, stopTs);
    await new Promise((r) => setTimeout(r, 1500)); // the Python clients connected: they read while the ticks arrive
    const n = 8 * 200;
    await send(8, 200, t0, 150);
    const { error } = await ingest(client, writer, [{ table: "trades", arrowIpc: ipc({ ...batch(1, stopTs, 0) }) }]);
    expect(error).toBeUndefined();
    const [raw, last, gRaw, gLast] = await Promise.all([pyRaw, pyLast, grpcRaw, grpcLast]);
    expect(raw.error, raw.message).toBeUndefined();
    expect(last.error, last.message).toBeUndefined();
    expect([raw.calls, last.calls]).toEqual([2, 2]);
    // No gap, no duplicate: the published ticks, each once.
    const mine = raw.batches.flatMap((b) => b.rows).filter((r) => (r.ts as number) >= t0 && (r.ts as number) < stopTs);
    expect(mine.length).toBe(n);
    expect(new Set(mine.map((r) => `${String(r._lsn)}:${String(r._row)}`)).size).toBe(n);
    // The same batches with the same offsets as gRPC Subscribe from the same offset.
    const same = (py: PyOut, g: FeedUpdate[]) => {
      expect(py.batches.map((b) => b.offset)).toEqual(g.map((u) => u.offset));
      expect(py.batches.map((b) => b.kind)).toEqual(g.map((u) => u.kind));
      expect(py.batches.map((b) => b.rows)).toEqual(g.map((u) => rowsOf(u.table)));
      expect(py.batches.map((b) => b.shards)).toEqual(g.map((u) => u.shards));
    };
    same(raw, gRaw);
    same(last, gLast);
    // Each batch says every shard's LSN, P and H.
    expect(raw.batches[0]!.shards.map((s) => s.bucket).sort()).toEqual(Array.from({ length: tableOf("alpha", "trades").shards }, (_, b) => b));
    expect(raw.start.kind).toBe("start");
    expect(raw.start.offset).toBe(rawFrom);

    // Last-by from "snapshot": the board first (one row per symbol, equal to the batch lastBy query), then deltas.
    const snap = await pyRead(lastFeed, "snapshot", 0, { "max-batches": 1 });
    expect(snap.error, snap.message).toBeUndefined();
    expect(snap.batches[0]!.kind).toBe("snapshot");
    const want = await f.engine.execute("alpha", { op: "lastBy", table: "trades", columns: ["price", "size"] });
    const board = (rows: Row[]) => Object.fromEntries(rows.map((r) => [r.sym as string, [r.ts, r.price, r.size]]));
    const wantRows = Array.from({ length: want.table.rows }, (_, i) => Object.fromEntries(want.table.columns.map((c) => [c.field.name, c.field.kind === "sym" ? want.table.symbols[c.data[i]!] : c.data[i]])));
    expect(board(snap.batches[0]!.rows)).toEqual(board(wantRows as Row[]));
  }, 180_000);

  it("stalled client - the call ends RESOURCE_EXHAUSTED naming the offset of the last batch delivered, as Subscribe does; ended and cancelled calls leave no consumer", async () => {
    const t0 = 1_771_000_000_000_000;
    const jsm = await jetstreamManager(f.node.nc);
    const consumers = async () => (await jsm.streams.info(walStream("alpha"))).state.consumer_count + (await jsm.streams.info(watermarkStream("alpha"))).state.consumer_count;
    const before = await consumers();
    const ex = exchange(flight, reader, { feed: { op: "range", table: "trades" }, maxBuffer: 2 });
    // Stops reading after the start message: the server's writes back up, then its buffer of 2 overflows.
    await ex.started;
    ex.call.pause();
    await send(40, 2000, t0);
    await new Promise((r) => setTimeout(r, 2000));
    // Reading again drains what the server wrote before it gave up; the status comes after it.
    ex.call.resume();
    const e = await ex.ended;
    expect(e?.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(e?.details).toMatch(/read too slowly .* buffer of 2 messages is full; nothing is lost: subscribe again with from = "[A-Za-z0-9_-]+"/);
    expect(ex.batches.length).toBeGreaterThan(0);
    expect(e?.details).toContain(`"${ex.batches.at(-1)!.at.offset}"`);
    // Resuming there continues exactly: the next batch is the record right after the last one delivered.
    const lastLsn = Math.max(...Array.from(ex.batches.at(-1)!.table.getChild("_lsn")!.toArray() as ArrayLike<bigint | number>, Number));
    const again = exchange(flight, reader, { feed: { op: "range", table: "trades" }, from: ex.batches.at(-1)!.at.offset });
    const next = await new Promise<Table>((resolve) => (again.onBatch = (b) => resolve(b.table)));
    again.call.cancel();
    expect(Math.min(...Array.from(next.getChild("_lsn")!.toArray() as ArrayLike<bigint | number>, Number))).toBe(lastLsn + 1);
    // The server stopped the WAL and watermark consumers of both calls.
    const deadline = Date.now() + 10_000;
    while ((await consumers()) > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await consumers()).toBe(before);
  }, 120_000);

  it("bad input - DoExchange refuses by name with Subscribe's statuses and messages; a bad command or client data is named too", async () => {
    const bars = await startOffset({ op: "bars", table: "trades", bucket: "1s" });
    const cases: { feed: unknown; from?: string; token?: string | undefined; code: number }[] = [
      { feed: { op: "range", table: "nope" }, code: Status.NOT_FOUND },
      { feed: { op: "range", table: "trades", columns: ["px"] }, code: Status.INVALID_ARGUMENT },
      { feed: { op: "range", table: "beta.fx" }, code: Status.PERMISSION_DENIED },
      { feed: { op: "range", table: "quotes" }, token: await f.token("alpha", "reader", undefined, ["trades"]), code: Status.PERMISSION_DENIED },
      { feed: { op: "rolling", table: "trades", window: 0, aggregates: [{ fn: "count" }] }, code: Status.INVALID_ARGUMENT },
      { feed: { op: "range", table: "trades" }, from: bars, code: Status.INVALID_ARGUMENT },
      { feed: { op: "range", table: "trades" }, from: "not-an-offset", code: Status.INVALID_ARGUMENT },
      { feed: { op: "range", table: "trades" }, token: undefined, code: Status.UNAUTHENTICATED },
    ];
    for (const c of cases) {
      const token = "token" in c ? c.token : reader;
      const viaFlight = await exchange(flight, token, { feed: c.feed, ...(c.from === undefined ? {} : { from: c.from }) }).ended;
      const viaGrpc = (await serverStream<FeedMessage>(feeds, "subscribe", create(SubscribeRequestSchema, { feedJson: JSON.stringify(c.feed), from: c.from ?? "" }), token)).error;
      expect(viaFlight, JSON.stringify(c)).toEqual(viaGrpc);
      expect(viaFlight?.code, JSON.stringify(c)).toBe(c.code);
    }
    const refused = async (command: unknown) => {
      const e = await exchange(flight, reader, command).ended;
      expect(e?.code).toBe(Status.INVALID_ARGUMENT);
      return e!.details;
    };
    expect(await refused("{nope")).toMatch(/DoExchange: the command is not JSON text .*send a FlightDescriptor command with the subscription as JSON, e.g. \{"feed"/);
    expect(await refused({ feed: { op: "range", table: "trades" }, form: "now" })).toMatch(/DoExchange: .*"form".*send a FlightDescriptor command/);
    expect(await refused({ from: "now" })).toMatch(/the command has no "feed"/);
    expect(await refused({ feed: "x" })).toMatch(/"feed" must be the feed's query as a JSON object/);
    // A path descriptor names no feed.
    expect(await refused(pathDescriptor("trades"))).toMatch(/DoExchange: the descriptor is not a command \(a path names no feed\)/);
    // Data after the descriptor: the feed takes none.
    const data = exchange(flight, reader, { feed: { op: "range", table: "trades" } }, { halfClose: false });
    await data.started;
    data.call.write(create(FlightDataSchema, { dataHeader: new Uint8Array([1, 2, 3]) }));
    const e = await data.ended;
    expect([e?.code, e?.details]).toEqual([Status.INVALID_ARGUMENT, expect.stringMatching(/reads no data from the client after its descriptor/)]);
  }, 120_000);

  it("readme - the DoExchange Python example runs as printed: the board first, then updates, each with its offset and shards", async () => {
    const text = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
    const section = text.slice(text.indexOf("### Ad-hoc subscriptions (Arrow Flight `DoExchange`)"));
    const code = /```python\n([\s\S]*?)\n```/.exec(section)?.[1];
    expect(code).toBeDefined();
    await send(1, 8, 1_772_000_000_000_000); // a board to show
    const run = new Promise<string>((resolve, reject) =>
      execFile(PYTHON, ["-c", code!], { env: { ...process.env, PX_GRPC: f.address, TOKEN: reader }, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
    );
    // Ticks keep arriving until the example has read its updates.
    let done = false;
    void run.finally(() => (done = true)).catch(() => {});
    for (let k = 0; !done && k < 100; k++) {
      await send(1, 8, 1_772_000_100_000_000 + k * 10_000);
      await new Promise((r) => setTimeout(r, 100));
    }
    const lines = (await run).trim().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^snapshot \d+ rows; \(bucket, LSN, P\): \[\(0, \d+, \d+\)/);
    for (const l of lines.slice(1)) expect(l).toMatch(/^update \d+ rows;/);
  }, 120_000);

  it("from a time - DoExchange and Subscribe start at the first record holding a tick at or after the time, with the same batches", async () => {
    const time = 1_780_000_000_000_000;
    await send(2, 100, time - 1_000_000_000); // before the time (every other test's ticks are earlier too)
    const after = 3 * 100;
    await send(3, 100, time);
    const feed = { op: "range", table: "trades", columns: ["price"] };
    const ex = exchange(flight, reader, { feed, from: { time } });
    const sub = new FeedSubscriber({ address: f.address, token: reader, feed, from: { time }, reconnect: false });
    const updates: FeedUpdate[] = [];
    for await (const u of sub.updates()) {
      updates.push(u);
      if (updates.reduce((n, x) => n + x.table.numRows, 0) >= after) break;
    }
    sub.close();
    const deadline = Date.now() + 20_000;
    while (ex.batches.reduce((n, b) => n + b.table.numRows, 0) < after && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // nothing more comes
    ex.call.cancel();
    const rows = updates.flatMap((u) => rowsOf(u.table));
    expect(rows).toHaveLength(after);
    expect(rows.every((r) => (r.ts as number) >= time)).toBe(true);
    expect(ex.batches.map((b) => [b.at.offset, rowsOf(b.table)])).toEqual(updates.map((u) => [u.offset, rowsOf(u.table)]));
    // The field is refused by name, over both transports alike.
    const bad = await exchange(flight, reader, { feed, from: { time: -5 } }).ended;
    expect([bad?.code, bad?.details]).toEqual([Status.INVALID_ARGUMENT, expect.stringMatching(/from.time: -5 is not a time/)]);
  }, 120_000);
});
