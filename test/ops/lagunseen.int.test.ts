// The node's persistence lag counts records its sink has not received. A sink
// sees only what its consumer delivered; when it is back in recovery (here:
// ClickHouse down when the node starts, so it cannot read what landed) it holds
// nothing and its own lag reads 0 while acked ticks pile up in the WAL and RAM.
// The shard knows them: /v1/shards lagMs, px_sink_lag_seconds and pxctl's
// SINK_LAG age them from the WAL's append time. Once ClickHouse is back they
// land and the lag returns to 0.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, shardViews, waitPersisted } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ProxistNode } from "../../src/node/node.js";

let f: NatsFixture;
let chf: ClickhouseFixture;
const nodes: ProxistNode[] = [];

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
});
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  if (!chf.server.running) await chf.server.restart();
});
afterAll(async () => {
  await f?.close();
  await chf?.close();
});

// No lag remediation: its steps would only add noise to what the sink reports.
const spec = parseClusterSpec({
  tenants: [{ name: "unseen", tables: [{ name: "trades", shards: 1, lagSlo: { seconds: 60, records: 1_000_000, enabled: false }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
});

describe("ops - persistence lag of records the sink has not received", () => {
  it("lag - a sink in recovery holds nothing, yet the node's lag ages the acked ticks waiting in the WAL; they land once ClickHouse is back", async () => {
    await chf.server.stop();
    const node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, snapshotIntervalMs: 0, compaction: { intervalMs: 0 } }, spec);
    nodes.push(node);
    const pub = new TickPublisher(f.nc, { tenant: "unseen", spec: spec.tenants[0]!.tables[0]!, maxInFlight: 4 });
    const walk = new RandomWalk(symbolNames(20), 3, 1.75e15);
    // The WAL stores the first record between these two moments.
    const before = Date.now();
    await pub.publish(walk.trades(200, 10_000));
    const firstAcked = Date.now();
    for (let i = 1; i < 5; i++) await pub.publish(walk.trades(200, 10_000));

    let v = (await shardViews(node.httpPort, "unseen"))[0];
    for (let i = 0; i < 100 && (v?.lagRecords ?? 0) < 5; i++) {
      await sleep(50);
      v = (await shardViews(node.httpPort, "unseen"))[0];
    }
    expect(v?.lagRecords).toBe(5);
    await sleep(2_000 - (Date.now() - firstAcked));
    const asked = Date.now();
    v = (await shardViews(node.httpPort, "unseen"))[0]!;
    const answered = Date.now();
    // The sink itself: recovering (degraded once it kept failing), nothing received, its own lag 0 ...
    expect(v.sink?.state).toMatch(/^(recovering|degraded)$/);
    expect([v.sink?.pendingRows, v.sink?.lagMs]).toEqual([0, 0]);
    // ... while the node's lag is the age of the oldest acked record (50 ms for the clocks' rounding).
    expect(v.lagMs).toBeGreaterThanOrEqual(asked - firstAcked - 50);
    expect(v.lagMs).toBeLessThanOrEqual(answered - before + 50);
    const metrics = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    const gauge = Number(/^px_sink_lag_seconds\{tenant="unseen",table="trades",bucket="0"\} (\S+)$/m.exec(metrics)?.[1]);
    expect(gauge).toBeGreaterThanOrEqual((asked - firstAcked - 50) / 1000);

    await chf.server.restart();
    await waitPersisted(node.httpPort, f.nc, "unseen", "trades", 60_000);
    v = (await shardViews(node.httpPort, "unseen"))[0]!;
    expect([v.lagRecords, v.lagMs]).toEqual([0, 0]);
    expect(Number((await chf.ch.query(`SELECT count() FROM ${qualifiedTable("unseen", "trades")}`)).trim())).toBe(1_000);
  }, 90_000);
});
