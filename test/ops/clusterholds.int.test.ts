// Compaction holds across nodes (src/node/clusterholds.ts), against a real
// nats-server and clickhouse-server: a node hosting a shard compacts its WAL;
// another node ("remote", its holds published as a node publishes them) has a
// subscription needing the table's WAL from an LSN. The compacting node keeps
// every record from that LSN on. Negative control: once the remote hold ends
// (its key deleted), the same compaction purges past it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { parseWalSubject } from "../../protocols/subjects.js";
import { opsRequest } from "../../src/cli/opsrequest.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { startClusterHolds } from "../../src/node/clusterholds.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, waitPersisted } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { readWal } from "../helpers/wal.js";

const TENANT = "holdx";
const spec = parseClusterSpec({ tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 1, retention: { walKeep: 1 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });
const trades = spec.tenants[0]!.tables[0]!;

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode;
beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
  node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, snapshotIntervalMs: 0, compaction: { intervalMs: 0 } }, spec);
}, 120_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
  await chf?.close();
});

const firstLsn = async (): Promise<number> => Math.min(...(await readWal(f.nc, TENANT)).filter((r) => parseWalSubject(r.subject)?.table === "trades").map((r) => r.lsn));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function compact(): Promise<void> {
  // Every node answers for its shards: one node here, so each request ends at its reply (the timeout only bounds a silent node).
  expect((await opsRequest(f.nc, "snapshot", { shards: [TENANT] }, 30_000, 1)).flatMap((r) => r.lines).every((l) => l.ok)).toBe(true);
  const lines = (await opsRequest(f.nc, "compact", { shards: [TENANT] }, 30_000, 1)).flatMap((r) => r.lines);
  expect(lines.every((l) => l.ok), JSON.stringify(lines)).toBe(true);
}

describe("ops - compaction holds across nodes", () => {
  it("cluster holds - a shard's compaction keeps what another node's subscription needs; once that hold ends (negative control) it purges past it", async () => {
    const walk = new RandomWalk(symbolNames(10), 3, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: TENANT, spec: trades, maxInFlight: 4 });
    const lsns: number[] = [];
    for (let i = 0; i < 12; i++) lsns.push((await pub.publish(walk.trades(200, 50_000))).lastLsn);
    await waitPersisted(node.httpPort, f.nc, TENANT, "trades");
    const holdAt = lsns[4]!;

    // Another node's subscription needs the table from holdAt: it publishes that hold as every node does.
    const remote = await startClusterHolds({ nc: f.nc, nodeId: "remote-node", replicas: 1, catalog: () => node.catalog(), local: (t, table) => (t === TENANT && table === "trades" ? [holdAt] : []), everyMs: 200 });
    try {
      await sleep(1_500); // a put, and the compacting node's watch delivers it
      await compact();
      const kept = await firstLsn();
      expect(kept, `the WAL starts at ${kept}; the remote hold needs ${holdAt}`).toBeLessThanOrEqual(holdAt);
    } finally {
      await remote.stop();
    }

    // The hold ended (its key deleted): the next compaction goes past it.
    await sleep(1_000);
    for (let i = 0; i < 2; i++) await pub.publish(walk.trades(200, 50_000));
    await waitPersisted(node.httpPort, f.nc, TENANT, "trades");
    await compact();
    expect(await firstLsn()).toBeGreaterThan(holdAt);
  }, 120_000);
});
