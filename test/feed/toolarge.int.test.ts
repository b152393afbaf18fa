// A materialized feed whose output for one WAL record is larger than one NATS
// message, against a real nats-server (max_payload 256 KiB) and node: the
// record itself fits (the WAL took it), its feed message does not (the feed
// adds _lsn and _row to every row). The feed stops with an error naming the
// sizes and what to do, before sending anything of that publish round, so the
// stream never holds a later update past the missing one (src/feed/fence.ts;
// without the check, test/feed/fence.test.ts's negative control shows the hole).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { HDR_FEED_OFFSET, feedStream, feedSubject } from "../../protocols/subjects.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { offsetLsn } from "../../src/feed/index.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";

const TENANT = "big";
const spec = parseClusterSpec({
  tenants: [
    {
      name: TENANT,
      tables: [{ name: "trades", shards: 1, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }],
      feeds: [{ name: "raw", query: { op: "range", table: "trades" } }],
    },
  ],
});
const trades = spec.tenants[0]!.tables[0]!;

let f: NatsFixture;
let node: ProxistNode;
beforeAll(async () => {
  f = await natsFixture({ maxPayloadBytes: 256 * 1024 });
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

/** LSNs of the feed subject's messages. */
async function published(): Promise<number[]> {
  const jsm = await jetstreamManager(f.nc);
  const info = await jsm.streams.info(feedStream(TENANT));
  const out: number[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(feedStream(TENANT), { seq }).catch(() => null);
    if (m === null || m.subject !== feedSubject(TENANT, "raw")) continue;
    const token = JSON.parse(Buffer.from(m.header.get(HDR_FEED_OFFSET), "base64url").toString("utf8")) as { l: Record<string, number> };
    out.push(offsetLsn({ feed: "", lsn: token.l }));
  }
  return out;
}

describe("feeds - a record whose feed message is too large", () => {
  it("too large - the feed stops naming the sizes, and stores nothing past the record it cannot send", async () => {
    await until("the feed to start", () => node.feeds!.running.has(`${TENANT}/raw`));
    const feed = node.feeds!.running.get(`${TENANT}/raw`)!.actor;
    const walk = new RandomWalk(symbolNames(50), 5, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 4 });
    const small = await pub.publish(walk.trades(20, 1_000));
    await until("the first update", () => feed.getSnapshot().context.stats.published >= 1);
    // Fits the WAL (about 28 bytes a row), not a feed message (about 40 a row, over 256 KiB).
    const big = await pub.publish(walk.trades(7_500, 1_000));
    const after = await pub.publish(walk.trades(20, 1_000));
    await until("the feed to stop", () => feed.getSnapshot().matches("failed"));
    expect(feed.getSnapshot().context.error).toMatch(/feed big\/raw: the update at LSN \d+ is \d+ bytes \(7500 rows\), more than one NATS message carries here \(max_payload 262144 bytes.*select fewer columns or symbols/);
    const lsns = await published();
    expect(lsns).toContain(small.lastLsn);
    expect(lsns.filter((l) => l >= big.firstLsn), `nothing at or past the big record (LSN ${big.firstLsn}; the next ${after.firstLsn})`).toEqual([]);
  }, 60_000);
});
