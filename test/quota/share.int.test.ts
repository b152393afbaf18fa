// A tenant's ingest rate quota holds for the cluster, not per gateway: two
// nodes on one nats-server (both gateways of the ingest queue group), a
// tenant with ingestTicksPerSecond flooded through both at many times its
// quota. After the start, the ticks admitted in all stay near the quota; with
// the exchange of admitted rates off (negative control) each node grants the
// whole quota and the total is about twice it.
import { afterEach, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { TickPublisher } from "../../src/client/publisher.js";
import type { ProxistNode } from "../../src/node/node.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { trades } from "../api/fixture.js";

const QUOTA = 4_000;
const SPEC = parseClusterSpec({
  tenants: [{ name: "share", quotas: { ingestTicksPerSecond: QUOTA }, tables: [{ name: "trades", shards: 1, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
});

let f: NatsFixture | undefined;
const nodes: ProxistNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  await f?.close();
  f = undefined;
});

/** Floods for `warmMs + measureMs` with 8 publishers that never retry; returns the ticks/s admitted during the measured part. */
async function flood(warmMs: number, measureMs: number): Promise<number> {
  const pub = new TickPublisher(f!.nc, { tenant: "share", spec: SPEC.tenants[0]!.tables[0]!, maxAttempts: 1 });
  const start = Date.now();
  const measureFrom = start + warmMs;
  const end = measureFrom + measureMs;
  let admitted = 0;
  let refused = 0;
  let t = 1_700_000_000_000_000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (Date.now() < end) {
        const at = Date.now();
        const ok = await pub.publish(trades(200, (t += 1_000))).then(
          () => true,
          () => false,
        );
        if (!ok) refused++;
        else if (at >= measureFrom) admitted += 200;
      }
    }),
  );
  expect(refused, "the flood went past the quota").toBeGreaterThan(0);
  return admitted / (measureMs / 1000);
}

async function twoGateways(local: boolean): Promise<void> {
  f = await natsFixture();
  for (const id of ["qa", "qb"]) nodes.push(await nodeOn(f.server, f.nc, { nodeId: id, ...(local ? { unsafeLocalQuotas: true } : {}) }, SPEC));
}

describe("quotas - rate quotas across gateways", () => {
  it("quotas - two gateways flooded through the ingest queue group admit about the tenant's ticks/s quota in all", async () => {
    await twoGateways(false);
    const rate = await flood(2_000, 3_000);
    console.log(`shared: ${Math.round(rate)} ticks/s admitted across 2 gateways (quota ${QUOTA})`);
    expect(rate).toBeLessThan(QUOTA * 1.35);
    expect(rate).toBeGreaterThan(QUOTA * 0.6);
  }, 60_000);

  it("quotas - negative control: with each gateway on its own (unsafeLocalQuotas) the two admit about twice the quota", async () => {
    await twoGateways(true);
    const rate = await flood(2_000, 3_000);
    console.log(`local: ${Math.round(rate)} ticks/s admitted across 2 gateways (quota ${QUOTA})`);
    expect(rate).toBeGreaterThan(QUOTA * 1.6);
  }, 60_000);
});
