// A batch larger than the server's max_payload (8 MB on the launcher's and the
// test helpers' nats-server): the TypeScript publisher splits it into requests
// under the limit, in order, and one ack covers every row (issue 21.8).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import type { ProxistNode } from "../../src/node/node.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { encodeTickIpcByBucket } from "../../src/codec/ipcwrite.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";

const SPEC = parseClusterSpec({ tenants: [{ name: "big", tables: [{ name: "trades", shards: 4, maxBatchRows: 1_000_000, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });
const trades = SPEC.tenants[0]!.tables[0]!;

let f: NatsFixture;
let node: ProxistNode;
beforeAll(async () => {
  f = await natsFixture();
  node = await nodeOn(f.server, f.nc, {}, SPEC);
}, 60_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

describe("ingest - batches over max_payload", () => {
  it("publisher - a 20 MB batch is split under max_payload and every row is stored once", async () => {
    const rows = 750_000;
    const batch = new RandomWalk(symbolNames(200), 3, Date.now() * 1000 - 3_600_000_000).trades(rows, 1_000);
    const bytes = encodeTickIpcByBucket(trades, batch, trades.shards).length;
    const maxPayload = f.nc.info!.max_payload;
    expect(bytes).toBeGreaterThan(20 * 1024 * 1024);
    expect(maxPayload).toBe(8 * 1024 * 1024);
    const p = new TickPublisher(f.nc, { tenant: "big", spec: trades, timeoutMs: 60_000, maxAttempts: 3 });
    const ack = await p.publish(batch);
    expect(ack.rows).toBe(rows);
    // At least three requests (20 MB / 8 MB), each with its own WAL records.
    const requests = new Set(ack.appends.map((a) => a.lsn)).size / trades.shards;
    expect(requests).toBeGreaterThanOrEqual(3);
    expect(ack.appends.reduce((n, a) => n + a.rows, 0)).toBe(rows);
    expect(ack.appends.every((a) => !a.duplicate)).toBe(true);
    const deadline = Date.now() + 60_000;
    let stored = 0;
    while (Date.now() < deadline) {
      stored = node.shards.status().reduce((n, s) => n + s.rows, 0);
      if (stored >= rows) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(stored).toBe(rows);
  }, 180_000);
});
