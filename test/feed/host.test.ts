// The feed host during a node's shutdown: a reconcile pass under way when the
// host stops (its reads failing as the NATS connection drains) neither logs a
// failure nor tries again, and starts nothing. At its start it sweeps the
// checkpoints of feeds removed from the spec.
import { describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { TenantSpec } from "../../protocols/tablespec.js";
import { feedHost } from "../../src/node/feed/host.js";

describe("feed host", () => {
  it("feed host - a pass cut short by stop() is not logged as a failure nor tried again", async () => {
    const logs: string[] = [];
    let reads = 0;
    let fail!: (e: Error) => void;
    const host = feedHost({
      nc: {} as NatsConnection,
      tenants: () => {
        reads++;
        return new Promise<ReadonlyMap<string, { readonly spec: TenantSpec }>>((_, reject) => (fail = reject));
      },
      catalog: () => new Map(),
      replicas: 1,
      log: (l) => logs.push(l),
    });
    const pass = host.reconcile();
    await new Promise((r) => setTimeout(r, 10));
    host.stop();
    fail(new Error("connection draining"));
    await pass;
    // A retry would come 1 s after a logged failure.
    await new Promise((r) => setTimeout(r, 1_200));
    expect(logs).toEqual([]);
    expect(reads).toBe(1);
  });

  it("feed host - sweeps the checkpoints of removed feeds once per start, with every feed of the spec, never on an empty spec", async () => {
    const swept: string[][] = [];
    let tenants = new Map<string, { readonly spec: TenantSpec }>();
    const host = feedHost({
      nc: {} as NatsConnection,
      tenants: () => Promise.resolve(tenants),
      catalog: () => new Map(),
      replicas: 1,
      log: () => {},
      sweep: (feeds) => {
        swept.push(feeds.map((f) => `${f.tenant}/${f.name}`));
        return Promise.resolve([]);
      },
    });
    await host.reconcile();
    expect(swept).toEqual([]);
    // Feeds whose tables are not in the catalog do not start here, but they are in the spec: theirs are kept.
    const feed = (name: string) => ({ name, query: { op: "lastBy", table: "trades" } });
    tenants = new Map([
      ["t", { spec: { name: "t", tables: [], feeds: [feed("a"), feed("b")] } as unknown as TenantSpec }],
      ["u", { spec: { name: "u", tables: [] } as unknown as TenantSpec }],
    ]);
    await host.reconcile();
    await host.reconcile();
    host.stop();
    expect(swept).toEqual([["t/a", "t/b"]]);
  });
});
