// A table's snapshot policy against a real nats-server and node: with
// `snapshot.onShutdown` a graceful stop writes each live shard's snapshot at
// the last record it applied (the restart replays nothing before it); without
// it, a stop writes none.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec } from "../../protocols/tablespec.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { SnapshotStore } from "../../src/snapshot/store.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";

let f: NatsFixture;
beforeAll(async () => {
  f = await natsFixture();
}, 60_000);
afterAll(async () => {
  await f?.close();
});

const specOf = (tenant: string, onShutdown: boolean): ClusterSpec =>
  parseClusterSpec({ tenants: [{ name: tenant, tables: [{ name: "trades", shards: 2, snapshot: { onShutdown, intervalSeconds: 0 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });

/** Ingests, waits until both shards applied everything, stops the node; returns each shard's last LSN and newest snapshot LSN. */
async function ingestAndStop(tenant: string, onShutdown: boolean): Promise<{ applied: number[]; snapshots: number[] }> {
  const spec = specOf(tenant, onShutdown);
  const node = await nodeOn(f.server, f.nc, { snapshotIntervalMs: 0 }, spec);
  const pub = new TickPublisher(f.nc, { tenant, spec: spec.tenants[0]!.tables[0]!, maxInFlight: 4 });
  const walk = new RandomWalk(symbolNames(30), 3, 1.75e15);
  let last = 0;
  for (let i = 0; i < 20; i++) last = (await pub.publish(walk.trades(200, 100_000))).lastLsn;
  const shards = [0, 1].map((bucket) => node.shards.get({ tenant, table: "trades", bucket })!);
  // Each shard applied its records up to `last` (waitForLsn stops at the shard's own last record).
  for (const h of shards) await h.runtime.waitForLsn(last, 30_000);
  const applied = shards.map((h) => h.runtime.stats.appliedLsn);
  await node.stop();
  const store = await SnapshotStore.open(f.nc);
  const snapshots = await Promise.all([0, 1].map((bucket) => store.newestVerifiedLsn({ tenant, table: "trades", bucket })));
  return { applied, snapshots };
}

describe("snapshot policy", () => {
  it("policy - onShutdown: a graceful stop writes each shard's snapshot at its last applied record; without it, none", async () => {
    const on = await ingestAndStop("snapon", true);
    expect(on.applied.every((l) => l > 0)).toBe(true);
    expect(on.snapshots).toEqual(on.applied);
    const off = await ingestAndStop("snapoff", false);
    expect(off.snapshots).toEqual([0, 0]);
  }, 120_000);
});
