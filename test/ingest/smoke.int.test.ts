import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import type { ProxistNode } from "../../src/node/node.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";

let f: NatsFixture;
let node: ProxistNode;
beforeAll(async () => {
  f = await natsFixture();
  node = await nodeOn(f.server, f.nc);
});
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

describe("ingest smoke", () => {
  it("ingest - a batch is acked with LSNs", async () => {
    const spec = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!;
    const p = new TickPublisher(f.nc, { tenant: "default", spec });
    const ack = await p.publish({ rows: 2, symbols: ["A", "B"], symbolIndex: Uint32Array.of(0, 1), ts: Float64Array.of(1.75e15 + 1, 1.75e15 + 2), values: [Float64Array.of(1, 2), Float64Array.of(3, 4)] });
    expect(ack.rows).toBe(2);
    expect(ack.firstLsn).toBeGreaterThan(0);
  });
});
