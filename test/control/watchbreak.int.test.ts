// Issue 19 on a real nats-server: the agent's px_assign watcher loses its
// consumer (deleted on the server, as when the server holding it dies). The
// iterator does not end (the client notices only after missed idle
// heartbeats, a minute): the watch sees the bucket move past what it
// delivered and fills the gap from the stream (fillStalls, src/control/kv.ts),
// so the agent goes on following assignments made after the loss. A watcher
// that ends is re-opened instead (test/control/agent.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { natsFixture } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { openControlStores } from "../../src/control/index.js";
import type { AssignmentTable } from "../../src/control/index.js";
import { startAgent } from "../../src/node/control/index.js";
import type { AgentHandle } from "../../src/node/control/index.js";
import { KV_ASSIGN } from "../../protocols/subjects.js";
import { FakeHost } from "./fakes.js";

let f: NatsFixture;
let agent: AgentHandle | undefined;
beforeAll(async () => {
  f = await natsFixture();
});
afterAll(async () => {
  await agent?.stop();
  await f?.close();
});

async function until(what: string, probe: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!probe()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - t0;
}

describe("control - a px_assign watcher that loses its consumer", () => {
  it("watch - the agent's watcher consumer deleted on the server: the gap is filled from the stream and later assignments are followed", async () => {
    const stores = await openControlStores(f.nc);
    const host = new FakeHost();
    const lines: string[] = [];
    agent = await startAgent(f.nc, { nodeId: "n1", address: "n1:8080", host, stores, heartbeatMs: 200, isolationMs: 30_000, log: (l) => lines.push(l) });
    let table: AssignmentTable = await stores.assignments.fence("leader", 1, Date.now());
    table = await stores.assignments.write(table, [{ key: "acme.trades.0", node: "n1" }], 1, Date.now());
    await until("the first shard started", () => host.running.has("acme.trades.0"), 10_000);

    const jsm = await jetstreamManager(f.nc);
    const consumers = await jsm.consumers.list(`KV_${KV_ASSIGN}`).next();
    expect(consumers.length).toBeGreaterThan(0);
    for (const c of consumers) await jsm.consumers.delete(`KV_${KV_ASSIGN}`, c.name);

    table = await stores.assignments.write(table, [{ key: "acme.trades.1", node: "n1" }, { key: "acme.trades.0", node: "n2" }], 1, Date.now());
    const ms = await until("the agent to follow assignments made after its consumer was deleted", () => host.running.has("acme.trades.1") && !host.running.has("acme.trades.0"), 15_000);
    console.log(`watch: followed ${ms} ms after the write; agent log: ${lines.filter((l) => l.includes("px_assign")).join(" | ")}`);
    expect(host.running.get("acme.trades.1")).toBe(table.assignments.get("acme.trades.1")?.leaseRevision);
  });
});
