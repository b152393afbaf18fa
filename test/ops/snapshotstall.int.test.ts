// Snapshots off the event loop, against a real nats-server: a shard of 1 M
// ticks is snapshotted while ingest goes on; perf_hooks.monitorEventLoopDelay
// sees no long stall (the bound is 50 ms at p99; asserted with margin
// for this shared machine), and a node started afterwards loads the snapshot
// and replays the WAL after it to exactly the oracle.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { replayDigests, waitCaughtUp } from "../helpers/replay.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ProxistNode } from "../../src/node/node.js";

let f: NatsFixture;
const nodes: ProxistNode[] = [];

beforeAll(async () => {
  f = await natsFixture();
});
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});
afterAll(async () => {
  await f?.close();
});

const SPEC = parseClusterSpec({ tenants: [{ name: "snap", tables: [{ name: "trades", shards: 1, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });
const trades = SPEC.tenants[0]!.tables[0]!;

describe("ops - snapshots off the event loop", () => {
  it("snapshot - 1 M ticks written while ingest goes on: the event loop never stalls long, and the snapshot loads to the oracle", async () => {
    const node = await nodeOn(f.server, f.nc, { snapshotIntervalMs: 0 }, SPEC);
    nodes.push(node);
    const walk = new RandomWalk(symbolNames(2_000), 21, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: "snap", spec: trades, maxInFlight: 8 });
    for (let i = 0; i < 50; i++) await pub.publish(walk.trades(20_000, 1_000));
    const shard = node.shards.get({ tenant: "snap", table: "trades", bucket: 0 })!;
    const deadline = Date.now() + 120_000;
    while (shard.runtime.stats.rows < 1_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(shard.runtime.stats.rows).toBe(1_000_000);

    // Ingest keeps going during the snapshot (small batches, as a live feed would).
    let go = true;
    let during = 0;
    const feed = (async () => {
      while (go) {
        await pub.publish(walk.trades(500, 1_000));
        during++;
      }
    })();
    // PX_TEST_DEBUG=1: the same feed without a snapshot first, for comparison (this machine's own stalls).
    if (process.env.PX_TEST_DEBUG) {
      const b = monitorEventLoopDelay({ resolution: 5 });
      b.enable();
      await new Promise((r) => setTimeout(r, 5000));
      b.disable();
      console.log(`baseline: p99 ${(b.percentile(99) / 1e6).toFixed(1)} ms, max ${(b.max / 1e6).toFixed(1)} ms`);
    }
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const lsn = await shard.runtime.snapshotNow(120_000);
    h.disable();
    go = false;
    await feed;
    const p99Ms = h.percentile(99) / 1e6;
    const maxMs = h.max / 1e6;
    console.log(`snapshot at LSN ${lsn}: event loop delay p99 ${p99Ms.toFixed(1)} ms, max ${maxMs.toFixed(1)} ms, ${during} batches ingested meanwhile`);
    expect(during).toBeGreaterThan(0);
    // The bound is 50 ms at p99; generous margins for a loaded 2-core machine running other suites.
    expect(p99Ms).toBeLessThan(150);
    expect(maxMs).toBeLessThan(1_000);

    // A fresh node loads that snapshot (it says so) and replays the rest: exactly the oracle.
    await node.stop();
    nodes.splice(0);
    const lines: string[] = [];
    const again = await nodeOn(f.server, f.nc, { snapshotIntervalMs: 0, log: (l) => lines.push(l) }, SPEC);
    nodes.push(again);
    const expected = await replayDigests(f.nc, "snap", [trades]);
    const got = await waitCaughtUp(again.httpPort, expected, 120_000);
    for (const [k, e] of expected) expect(got.get(k)?.digest, k).toBe(e.digest);
    expect(lines.some((l) => l.includes(`loaded snapshot at LSN ${lsn} (`))).toBe(true);
  }, 300_000);
});
