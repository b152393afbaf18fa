// Gateway machine with tenant quotas, fake IO: a tenant over its ingest rate is
// refused (RESOURCE_EXHAUSTED, retryable, naming the quota) before the WAL while
// another tenant's batches go on; hot bytes and symbols from the node's usage
// reports refuse too. Time is the batch's arrival stamp (atMs): no clock runs.
import { describe, expect, it } from "vitest";
import { createActor, fromCallback } from "xstate";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { gatewayMachine } from "../../actors/gateway.js";
import type { GatewayEvent, IngestRequest, SourceCommand, WalCommand } from "../../actors/gateway.js";
import { catalogOfCluster } from "../../src/catalog.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { TenantQuotas } from "../../protocols/tablespec.js";
import { symbolKey } from "../../src/quota/index.js";

const table = { name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] };

function harness(quotasA: TenantQuotas) {
  const replies: SourceCommand[] = [];
  const appends: WalCommand[] = [];
  let send: (e: GatewayEvent) => void = () => {};
  const actor = createActor(
    gatewayMachine.provide({
      actors: {
        source: fromCallback<SourceCommand>(({ receive, sendBack }) => {
          send = sendBack;
          receive((c) => replies.push(c));
        }),
        wal: fromCallback<WalCommand>(({ receive }) => receive((c) => appends.push(c))),
      },
    }),
    { input: { maxInFlight: 1_000 } },
  );
  actor.start();
  const spec = parseClusterSpec({ tenants: [{ name: "a", tables: [table], quotas: quotasA }, { name: "b", tables: [table] }] });
  send({ type: "catalog", catalog: catalogOfCluster(spec) });
  return { actor, replies, appends, send: (e: GatewayEvent) => send(e) };
}

let nextId = 1;
const payload = (syms: string[]) =>
  tableToIPC(
    tableFromArrays({
      sym: syms,
      ts: BigInt64Array.from(syms, (_, i) => 1_700_000_000_000_000n + BigInt(i)),
      price: Float64Array.from(syms, () => 1),
      size: Float64Array.from(syms, () => 2),
    }),
    "stream",
  );
const request = (tenant: string, atMs: number, syms = ["AAPL", "MSFT", "IBM", "AAPL"]): IngestRequest => ({
  id: nextId++,
  tenant,
  table: "trades",
  payload: payload(syms),
  producer: undefined,
  wantsReply: true,
  atMs,
});

describe("gateway machine - tenant quotas", () => {
  it("ingest rate - tenant a at 10x its ticks/s is refused retryably before the WAL; tenant b is unaffected", () => {
    const h = harness({ ingestTicksPerSecond: 40 });
    // 100 batches of 4 ticks in one simulated second from a (10x its 40/s), 10 from b.
    for (let i = 0; i < 100; i++) {
      h.send({ type: "ingest", request: request("a", i * 10) });
      if (i % 10 === 0) h.send({ type: "ingest", request: request("b", i * 10) });
    }
    const refusals = h.replies.filter((r) => !r.reply.ok);
    expect(refusals.every((r) => r.tenant === "a")).toBe(true);
    const first = refusals[0]!.reply;
    expect(first).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED", retryable: true } });
    if (!first.ok) {
      expect(first.error.message).toMatch(/tenant a: quota ingestTicksPerSecond = 40 is used up.*raise quotas.ingestTicksPerSecond in tenant a's spec/);
      expect(first.error.retryAfterMs).toBeGreaterThan(0);
    }
    const appendedA = h.appends.filter((c) => c.batch.tenant === "a").length;
    // The burst (40 ticks) plus ~40 ticks/s over the second: about 20 batches of 4, never the 100 sent.
    expect(appendedA).toBeGreaterThanOrEqual(15);
    expect(appendedA).toBeLessThanOrEqual(22);
    expect(h.appends.filter((c) => c.batch.tenant === "b")).toHaveLength(10);
    expect(h.actor.getSnapshot().context.stats.quotaRefusedBatches).toBe(100 - appendedA);
  });

  it("hot bytes - over the tenant's hotBytes (from the node's usage report) ingest is refused until the report drops", () => {
    const h = harness({ hotBytes: 1_000 });
    h.send({ type: "usage", usage: new Map([["a", { shards: new Map([["trades/0", { bytes: 5_000, symbols: 1 }]]) }]]) });
    h.send({ type: "ingest", request: request("a", 0) });
    expect(h.replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED", retryable: true } });
    expect(JSON.stringify(h.replies.at(-1)!.reply)).toMatch(/quota hotBytes = 1000 is reached/);
    h.send({ type: "usage", usage: new Map([["a", { shards: new Map([["trades/0", { bytes: 10, symbols: 1 }]]) }]]) });
    h.send({ type: "ingest", request: request("a", 1) });
    expect(h.appends).toHaveLength(1);
  });

  it("symbols - a batch bringing symbols past the quota is refused (not retryable); known symbols go on", () => {
    const h = harness({ symbols: 3 });
    h.send({ type: "usage", usage: new Map([["a", { shards: new Map([["trades/0", { bytes: 0, symbols: 1 }]]), symbols: new Set([symbolKey("trades", "AAPL")]) }]]) });
    h.send({ type: "ingest", request: request("a", 0, ["AAPL", "MSFT", "IBM"]) });
    expect(h.appends).toHaveLength(1);
    h.send({ type: "ingest", request: request("a", 1, ["AAPL", "NEW"]) });
    expect(h.replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED", retryable: false } });
    expect(JSON.stringify(h.replies.at(-1)!.reply)).toMatch(/quota symbols = 3 would be passed/);
    h.send({ type: "ingest", request: request("a", 2, ["IBM", "MSFT"]) });
    expect(h.appends).toHaveLength(2);
  });
});
