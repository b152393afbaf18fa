// A materialized feed whose output for one WAL record is larger than one NATS
// message, against a real nats-server (max_payload 256 KiB) and node: the
// record itself fits (the WAL took it), its feed message does not (the feed
// adds _lsn and _row to every row). The record's update goes out in parts
// (src/feed/parts.ts), each under max_payload, and the subject holds every
// row once, in order. Then a crash between two parts: a subject that ends in
// a part of the record, cut elsewhere than this node cuts, and a new node
// takes the feed over: it sends the rest of the record's rows and goes on,
// nothing twice, nothing missing. With the new writer's resume inside the
// record switched off (the runner's and the tail's, tried by hand) it sends
// the record's first 3,000 rows again; the negative controls that stay are in
// test/feed/parts.test.ts (an offset without its part's row count). Last, a
// last-by board of 12,000 symbols, larger than a message, is published as a
// snapshot in parts that hold every symbol once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { tableFromIPC, tableToIPC } from "apache-arrow";
import { HDR_FEED_KIND, HDR_FEED_OFFSET, HDR_FEED_ROWS, HDR_FEED_SHARDS, feedStream, feedSubject } from "../../protocols/subjects.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { offsetLsn } from "../../src/feed/index.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";

const TENANT = "big";
const MAX_PAYLOAD = 256 * 1024;
const spec = parseClusterSpec({
  tenants: [
    {
      name: TENANT,
      tables: [{ name: "trades", shards: 1, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }],
      feeds: [
        { name: "raw", query: { op: "range", table: "trades" } },
        { name: "board", query: { op: "lastBy", table: "trades" }, snapshotSeconds: 1 },
      ],
    },
  ],
});
const trades = spec.tenants[0]!.tables[0]!;
/** The same spec with a second feed of the same query. */
const withCopy = parseClusterSpec({ tenants: [{ ...spec.tenants[0]!, feeds: [...spec.tenants[0]!.feeds!, { name: "copy", query: { op: "range", table: "trades" } }] }] });

let f: NatsFixture;
let node: ProxistNode;
beforeAll(async () => {
  f = await natsFixture({ maxPayloadBytes: MAX_PAYLOAD });
  node = await nodeOn(f.server, f.nc, { snapshotIntervalMs: 0, grpcPort: 0 }, spec);
}, 120_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Stored {
  readonly seq: number;
  readonly kind: string;
  readonly symbols: string[];
  readonly bytes: number;
  readonly rows: string | undefined;
  readonly part: boolean;
  /** Each row's "<_lsn>/<_row>". */
  readonly keys: string[];
}

/** The feed subject's messages. */
async function published(feed = "raw"): Promise<Stored[]> {
  const jsm = await jetstreamManager(f.nc);
  const info = await jsm.streams.info(feedStream(TENANT));
  const out: Stored[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(feedStream(TENANT), { seq }).catch(() => null);
    if (m === null || m.subject !== feedSubject(TENANT, feed)) continue;
    const token = JSON.parse(Buffer.from(m.header.get(HDR_FEED_OFFSET), "base64url").toString("utf8")) as { p?: unknown };
    const t = tableFromIPC(m.data);
    // A last-by snapshot has no _lsn/_row: its rows are symbols.
    const lsn = (t.getChild("_lsn")?.toArray() ?? []) as BigInt64Array;
    const row = (t.getChild("_row")?.toArray() ?? []) as Int32Array;
    out.push({ seq, kind: m.header.get(HDR_FEED_KIND), symbols: Array.from({ length: t.numRows }, (_, i) => String(t.getChild(trades.symbolColumn)?.get(i))), bytes: m.data.length, rows: m.header.get(HDR_FEED_ROWS) || undefined, part: token.p !== undefined, keys: Array.from({ length: lsn.length }, (_, i) => `${lsn[i]}/${row[i]}`) });
  }
  return out;
}

/** Every row of records [from, to] as "<lsn>/<row>", records of `rows` rows each. */
const keysOf = (batches: readonly { firstLsn: number; lastLsn: number; rows: number }[]): string[] =>
  batches.flatMap((b) => {
    expect(b.lastLsn, "one WAL record per batch").toBe(b.firstLsn);
    return Array.from({ length: b.rows }, (_, i) => `${b.firstLsn}/${i}`);
  });

describe("feeds - a record whose feed message is too large for one NATS message", () => {
  it("parts - the record's update goes out in parts under max_payload; the subject holds every row once, in order; after a crash between parts a new node sends the rest", async () => {
    await until("the feed to start", () => node.feeds!.running.has(`${TENANT}/raw`));
    const walk = new RandomWalk(symbolNames(50), 5, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 4 });
    const sent: { firstLsn: number; lastLsn: number; rows: number }[] = [];
    sent.push({ ...(await pub.publish(walk.trades(20, 1_000))), rows: 20 });
    // Fits the WAL (about 28 bytes a row), not a feed message (about 40 a row, over 256 KiB).
    sent.push({ ...(await pub.publish(walk.trades(7_500, 1_000))), rows: 7_500 });
    sent.push({ ...(await pub.publish(walk.trades(20, 1_000))), rows: 20 });
    const end = sent.at(-1)!.lastLsn;
    const reached = (n: ProxistNode, feed = "raw") => (): boolean => {
      const st = n.feeds?.running.get(`${TENANT}/${feed}`)?.actor.getSnapshot();
      return st !== undefined && st.context.stats.publishedOffset !== undefined && offsetLsn(st.context.stats.publishedOffset) >= end && st.context.outbox.length === 0;
    };
    await until("the feed to publish the last record", reached(node));
    expect(node.feeds!.running.get(`${TENANT}/raw`)!.actor.getSnapshot().matches("running")).toBe(true);

    const msgs = await published();
    expect(msgs.flatMap((m) => m.keys)).toEqual(keysOf(sent));
    const big = msgs.filter((m) => m.keys[0]?.startsWith(`${sent[1]!.firstLsn}/`));
    expect(big.length).toBeGreaterThanOrEqual(2);
    for (const m of msgs) expect(m.bytes).toBeLessThan(MAX_PAYLOAD);
    // The big record's parts name their rows, contiguous; only its last carries the record's own offset.
    expect(big.map((m) => m.rows).join(",")).toBe(big.map((m) => `${m.keys[0]!.split("/")[1]}-${Number(m.keys.at(-1)!.split("/")[1]) + 1}/7500`).join(","));
    expect(big.map((m) => m.part)).toEqual([...big.slice(1).map(() => true), false]);
    expect(msgs.filter((m) => !big.includes(m)).every((m) => m.rows === undefined && !m.part)).toBe(true);

    // A crash between parts: a feed of the same query under another name whose subject ends in a part of the big
    // record, as if its writer had died there (copied from the first feed's subject: deleting the messages after it
    // instead leaves nats-server 2.9 reporting the subject empty). The part is cut at 3,000 rows, not where this
    // node cuts (a writer on a server of another max_payload): the new writer must send exactly rows 3,000 on.
    await node.stop();
    const js = jetstream(f.nc);
    const jsm = await jetstreamManager(f.nc);
    const CUT = 3_000;
    for (const m of msgs.filter((x) => x.seq <= big[0]!.seq)) {
      const stored = (await jsm.streams.getMessage(feedStream(TENANT), { seq: m.seq }))!;
      const h = headers();
      for (const k of [HDR_FEED_OFFSET, HDR_FEED_KIND, HDR_FEED_SHARDS]) h.set(k, stored.header.get(k));
      let data = stored.data;
      if (m === big[0]) {
        const token = JSON.parse(Buffer.from(stored.header.get(HDR_FEED_OFFSET), "base64url").toString("utf8")) as { p: [number, number] };
        h.set(HDR_FEED_OFFSET, Buffer.from(JSON.stringify({ ...token, p: [token.p[0], CUT] })).toString("base64url"));
        h.set(HDR_FEED_ROWS, `0-${CUT}`);
        data = tableToIPC(tableFromIPC(stored.data).slice(0, CUT), "stream");
      }
      await js.publish(feedSubject(TENANT, "copy"), data, { headers: h });
    }
    expect((await published("copy")).flatMap((m) => m.keys)).toEqual(keysOf(sent).slice(0, 20 + CUT));
    node = await nodeOn(f.server, f.nc, { snapshotIntervalMs: 0, grpcPort: 0 }, withCopy);
    await until("the new node's feeds to publish the last record", () => reached(node, "raw")() && reached(node, "copy")());
    expect((await published("copy")).flatMap((m) => m.keys)).toEqual(keysOf(sent));
    expect((await published()).flatMap((m) => m.keys)).toEqual(keysOf(sent));
  }, 120_000);

  it("parts - a last-by board of 12,000 symbols, too large for one message, is published as a snapshot in parts that hold every symbol once", async () => {
    await until("the board feed to run", () => node.feeds!.running.has(`${TENANT}/board`));
    const walk = new RandomWalk(symbolNames(12_000), 9, 1.76e15);
    const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 4 });
    await pub.publish(walk.trades(12_000, 1_000, true));
    // A snapshot of the whole board (every symbol of this test, and the first test's 50 when it ran): its parts from row 0 to its total.
    const names = symbolNames(12_000);
    let snap: Stored[] = [];
    const deadline = Date.now() + 60_000;
    while (snap.length === 0) {
      if (Date.now() > deadline) throw new Error("timed out waiting for a snapshot of the whole board");
      const parts = (await published("board")).filter((m) => m.kind === "snapshot" && m.rows !== undefined);
      const first = parts.findIndex((m) => m.rows!.startsWith("0-") && Number(m.rows!.split("/")[1]) >= 12_000);
      const total = first < 0 ? "" : parts[first]!.rows!.split("/")[1]!;
      const end = parts.findIndex((m, i) => i >= first && m.rows!.endsWith(`-${total}/${total}`));
      if (first >= 0 && end >= first) snap = parts.slice(first, end + 1);
      else await new Promise((r) => setTimeout(r, 200));
    }
    const total = Number(snap[0]!.rows!.split("/")[1]);
    expect(snap.length).toBeGreaterThanOrEqual(2);
    for (const m of snap) expect(m.bytes).toBeLessThan(MAX_PAYLOAD);
    // Contiguous rows, every symbol once.
    const ranges = snap.map((m) => m.rows!.split("/")[0]!.split("-").map(Number));
    expect(ranges.every(([a], i) => (i === 0 ? a === 0 : a === ranges[i - 1]![1]))).toBe(true);
    const symbols = snap.flatMap((m) => m.symbols);
    expect(symbols.length).toBe(total);
    expect(new Set(symbols).size).toBe(total);
    expect(names.every((n) => symbols.includes(n))).toBe(true);
  }, 120_000);
});
