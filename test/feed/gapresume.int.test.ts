// A raw subscription resumed from an offset below the WAL's start, against a
// real nats-server, clickhouse-server and a node with sinks: the records
// between the offset and the compaction floor are no longer in the WAL (the
// test checks that), so they can only come from ClickHouse; the resumed feed
// delivers every row after the offset exactly once, then goes on live.
// Negative control: with the ClickHouse read switched off
// (PX_UNSAFE_NO_WAL_GAP_READ=1) the same resume misses the compacted rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { createToken } from "../../src/auth/index.js";
import { opsRequest } from "../../src/cli/opsrequest.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { FeedSubscriber } from "../../src/client/feeds.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, waitPersisted, walRows } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { readWal } from "../helpers/wal.js";

const TENANT = "gapr";
const spec = parseClusterSpec({ tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 2, retention: { walKeep: 1 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });
const trades = spec.tenants[0]!.tables[0]!;

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode;
/** Set by the first test: the offset it resumed from and the rows after it. */
let resumeFrom = "";
let wantedAfter: string[] = [];
beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
  node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, snapshotIntervalMs: 0, compaction: { intervalMs: 0 }, grpcPort: 0 }, spec);
}, 120_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
  await chf?.close();
});

/** (lsn, row) keys of every row a subscription delivers, until `enough` or the deadline; the last offset. */
async function read(sub: FeedSubscriber, enough: (keys: string[]) => boolean, ms = 60_000): Promise<{ keys: string[]; offset: string }> {
  const keys: string[] = [];
  let offset = "";
  const timer = setTimeout(() => sub.close(), ms);
  for await (const u of sub.updates()) {
    const lsn = u.table.getChild("_lsn")!;
    const row = u.table.getChild("_row")!;
    for (let i = 0; i < u.table.numRows; i++) keys.push(`${Number(lsn.get(i))}:${Number(row.get(i))}`);
    offset = u.offset;
    if (enough(keys)) break;
  }
  clearTimeout(timer);
  sub.close();
  return { keys, offset };
}

describe("feeds - resuming below the WAL's start", () => {
  it("gap resume - a raw feed resumed from an offset whose next records were compacted gets them from ClickHouse: every row after the offset once, then live rows", async () => {
    const reader = await createToken(f.nc, { tenant: TENANT, role: "reader" });
    const address = `127.0.0.1:${node.grpcPort!}`;
    const walk = new RandomWalk(symbolNames(30), 7, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 4 });
    for (let i = 0; i < 6; i++) await pub.publish(walk.trades(300, 50_000));

    // A consumer reads part of the history and keeps its offset.
    const first = await read(new FeedSubscriber({ address, token: reader, feed: { op: "range", table: "trades" }, from: "snapshot", reconnect: false }), (k) => k.length >= 900);
    expect(first.keys.length).toBeGreaterThanOrEqual(900);
    const offset = JSON.parse(Buffer.from(first.offset, "base64url").toString("utf8")) as { l: Record<string, number> };

    // Meanwhile more is ingested, persisted, snapshotted and compacted.
    for (let i = 0; i < 20; i++) await pub.publish(walk.trades(300, 50_000));
    await waitPersisted(node.httpPort, f.nc, TENANT, "trades");
    const every = await walRows(f.nc, TENANT, "trades");
    // One node: each request ends at its reply (the timeout only bounds a node that never answers).
    expect((await opsRequest(f.nc, "snapshot", { shards: [TENANT] }, 30_000, 1)).flatMap((r) => r.lines).every((l) => l.ok)).toBe(true);
    const compacted = (await opsRequest(f.nc, "compact", { shards: [TENANT] }, 30_000, 1)).flatMap((r) => r.lines);
    expect(compacted.every((l) => l.ok && /records purged/.test(l.message)), JSON.stringify(compacted)).toBe(true);

    // The records right after the offset are gone from the WAL: only ClickHouse has them.
    const left = new Set((await readWal(f.nc, TENANT)).map((r) => r.lsn));
    const wanted: string[] = [];
    let purged = 0;
    for (const [lsn, r] of every) {
      if (lsn <= (offset.l[`trades/${r.bucket}`] ?? 0)) continue;
      for (let k = 0; k < r.rows; k++) wanted.push(`${lsn}:${k}`);
      if (!left.has(lsn)) purged++;
    }
    expect(purged, "records after the offset that compaction purged").toBeGreaterThan(5);

    resumeFrom = first.offset;
    wantedAfter = wanted;
    // Resume: every row after the offset, once, in per-shard LSN order; then a live batch arrives too.
    const resumed = new FeedSubscriber({ address, token: reader, feed: { op: "range", table: "trades" }, from: first.offset, reconnect: false });
    const liveBatch = walk.trades(300, 50_000);
    const want = new Set(wanted);
    let sentLive = false;
    const got = await read(resumed, (k) => {
      if (!sentLive && k.length >= wanted.length) {
        sentLive = true;
        void pub.publish(liveBatch);
      }
      return k.length >= wanted.length + 300;
    });
    const history = got.keys.slice(0, wanted.length);
    expect(new Set(got.keys).size, "no row twice").toBe(got.keys.length);
    expect(history.filter((k) => !want.has(k)), "rows the offset covered").toEqual([]);
    expect([...want].filter((k) => !history.includes(k)).length, "rows missing").toBe(0);
    expect(got.keys.length, "then the live batch").toBe(wanted.length + 300);
    // Per shard, LSNs never go back.
    const lastOf = new Map<number, number>();
    for (const k of got.keys) {
      const lsn = Number(k.split(":")[0]);
      const bucket = every.get(lsn)?.bucket ?? -1;
      expect(lsn, `shard ${bucket}`).toBeGreaterThanOrEqual(lastOf.get(bucket) ?? 0);
      lastOf.set(bucket, lsn);
    }
  }, 180_000);

  it("gap resume - negative control: without the ClickHouse read (PX_UNSAFE_NO_WAL_GAP_READ=1) the same resume misses the compacted rows", async () => {
    expect(resumeFrom, "the first test ran").not.toBe("");
    const reader = await createToken(f.nc, { tenant: TENANT, role: "reader" });
    process.env.PX_UNSAFE_NO_WAL_GAP_READ = "1";
    try {
      const sub = new FeedSubscriber({ address: `127.0.0.1:${node.grpcPort!}`, token: reader, feed: { op: "range", table: "trades" }, from: resumeFrom, reconnect: false });
      // Everything the WAL still has arrives within a few seconds; the compacted rows never do.
      const got = await read(sub, (k) => k.length >= wantedAfter.length, 5_000);
      const seen = new Set(got.keys);
      expect(wantedAfter.filter((k) => !seen.has(k)).length).toBeGreaterThan(0);
    } finally {
      delete process.env.PX_UNSAFE_NO_WAL_GAP_READ;
    }
  }, 60_000);
});
