// Per-tenant quotas against a real nats-server and a node with its gRPC API:
// tenant alpha gets quotas (re-applied per test with `applyAndWait`, as
// `pxctl apply` would), tenant beta none. Each quota's refusal is asserted
// (RESOURCE_EXHAUSTED naming the quota, its value and how to raise it), and beta
// keeps ingesting and querying meanwhile. Latency under load is the benchmark's
// (bench/tenants.ts), not asserted here.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTenantSpec } from "../../protocols/tablespec.js";
import type { TenantQuotas } from "../../protocols/tablespec.js";
import { tenantQuotas } from "../../src/catalog.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { IngestRejectedError, TickPublisher } from "../../src/client/publisher.js";
import { applyAndWait } from "../helpers/cluster.js";
import { SPEC, Status, apiFixture, ingest, lsnOf, query, tableOf, trades, tradesIpc } from "../api/fixture.js";
import type { ApiFixture, ServiceClient } from "../api/fixture.js";

let f: ApiFixture;
let grpc: ServiceClient;
let alphaWriter: string;
let alphaReader: string;
let betaReader: string;
/** alpha's trades hold ROWS rows of 3 symbols from T0 on. */
const ROWS = 60_000;
const T0 = 1_700_000_000_000_000;
let alphaLsn = 0;

const alphaSpec = (quotas: TenantQuotas) => parseTenantSpec({ ...SPEC.tenants.find((t) => t.name === "alpha")!, quotas });

/** Applies alpha's quotas and waits until the node's catalog serves them (and a usage report has run). */
async function setQuotas(quotas: TenantQuotas): Promise<void> {
  await applyAndWait(f.nats.nc, { tenants: [alphaSpec(quotas)] });
  const deadline = Date.now() + 10_000;
  while (JSON.stringify(tenantQuotas(f.node.catalog(), "alpha")) !== JSON.stringify(quotas)) {
    if (Date.now() > deadline) throw new Error("the node did not serve alpha's new quotas within 10 s");
    await new Promise((r) => setTimeout(r, 20));
  }
  // The gateway's hot-bytes and symbols view comes with the node's usage report (every 250 ms).
  await new Promise((r) => setTimeout(r, 600));
}

const publisher = (tenant: string, maxAttempts?: number) => new TickPublisher(f.nats.nc, { tenant, spec: tableOf(tenant, "trades"), ...(maxAttempts === undefined ? {} : { maxAttempts }) });

beforeAll(async () => {
  f = await apiFixture();
  grpc = f.proxist();
  alphaWriter = await f.token("alpha", "writer");
  alphaReader = await f.token("alpha", "reader");
  betaReader = await f.token("beta", "reader");
  const put = await ingest(grpc, alphaWriter, [{ table: "trades", arrowIpc: tradesIpc(ROWS, T0) }]);
  expect(put.error).toBeUndefined();
  alphaLsn = lsnOf(put.acks);
  expect((await query(grpc, alphaReader, { table: "trades", minLsn: alphaLsn, limit: 1 })).rows).toBe(1);
}, 60_000);
afterAll(async () => {
  await f?.close();
});

/** beta, without quotas, ingests over NATS and reads its rows back: functionally untouched by alpha. */
async function betaStillWorks(): Promise<void> {
  const pub = publisher("beta");
  const ack = await pub.publish(trades(50, T0 + 10_000_000));
  const r = await query(grpc, betaReader, { table: "trades", minLsn: ack.lastLsn, op: "lastBy" });
  expect(r.error).toBeUndefined();
  expect(r.rows).toBe(3);
}

describe("quotas - queries", () => {
  it("quotas - a query over queryMemoryBytes fails cleanly (fast and general paths); small ones and limit 1e12 on small data pass; the node stays healthy", async () => {
    await setQuotas({ queryMemoryBytes: 1 << 20 });
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 10; i++) {
      for (const q of [{ table: "trades" }, { table: "trades", order: "desc" }]) {
        const r = await query(grpc, alphaReader, q);
        expect(r.error?.code).toBe(Status.RESOURCE_EXHAUSTED);
        expect(r.error?.details).toMatch(/tenant alpha: quota queryMemoryBytes = 1048576 would be passed.*raise quotas.queryMemoryBytes in tenant alpha's spec and apply it \(pxctl apply/);
        expect(r.rows).toBe(0);
      }
    }
    // RSS bounded: twenty refused queries over 60k rows did not pile up memory (the limit is generous: GC timing varies).
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 << 20);
    expect((await fetch(`http://127.0.0.1:${f.node.httpPort}/healthz`)).status).toBe(200);
    const small = await query(grpc, alphaReader, { table: "trades", t0: T0, t1: T0 + 100, limit: 1e12 });
    expect(small.error).toBeUndefined();
    expect(small.rows).toBe(100);
    expect((await query(grpc, alphaReader, { table: "trades", op: "lastBy" })).rows).toBe(3);
    await betaStillWorks();
  }, 60_000);

  it("quotas - a result over resultRows is refused; as many rows pass", async () => {
    await setQuotas({ resultRows: 1_000 });
    const r = await query(grpc, alphaReader, { table: "trades" });
    expect(r.error?.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(r.error?.details).toMatch(/tenant alpha: quota resultRows = 1000 would be passed: the result has 60000 rows.*raise quotas.resultRows/);
    expect((await query(grpc, alphaReader, { table: "trades", limit: 1_000 })).rows).toBe(1_000);
  }, 30_000);

  it("quotas - past concurrentQueries the next query of alpha is refused at once while beta's run", async () => {
    await setQuotas({ concurrentQueries: 2 });
    // Two runs of the node's engine, each read to its first batch and then left open, hold alpha's two slots.
    const open = [0, 1].map(() => f.engine.run("alpha", { table: "trades", op: "lastBy" }, new AbortController().signal)[Symbol.asyncIterator]());
    for (const it of open) expect((await it.next()).done).toBe(false);
    expect(f.engine.quotas.runningOf("alpha")).toBe(2);
    const third = await query(grpc, alphaReader, { table: "trades", op: "lastBy" });
    expect(third.error?.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(third.error?.details).toMatch(/tenant alpha: quota concurrentQueries = 2 is reached across the cluster \(2 queries of the tenant run now: 2 on this node, 0 on other nodes as they last reported\); this query needs one more.*raise quotas.concurrentQueries/);
    await betaStillWorks();
    for (const it of open) await it.return?.();
    expect(f.engine.quotas.runningOf("alpha")).toBe(0);
    // The slots are free again.
    expect((await query(grpc, alphaReader, { table: "trades", op: "lastBy" })).rows).toBe(3);
  }, 30_000);
});

describe("quotas - ingest", () => {
  it("quotas - alpha over its ticks/s is refused retryably (NATS and gRPC) naming the quota; beta's batches are all stored", async () => {
    await setQuotas({ ingestTicksPerSecond: 1_000 });
    const pub = publisher("alpha", 1);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => pub.publish(trades(500, T0 + 20_000_000 + i * 1_000))));
    const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as IngestRejectedError);
    expect(results.filter((r) => r.status === "fulfilled").length).toBeGreaterThanOrEqual(1);
    expect(refused.length).toBeGreaterThanOrEqual(5);
    for (const e of refused) {
      expect(e).toBeInstanceOf(IngestRejectedError);
      expect(e.code).toBe("RESOURCE_EXHAUSTED");
      expect(e.message).toMatch(/tenant alpha: quota ingestTicksPerSecond = 1000 is used up \(this batch has 500 ticks\); this batch was not stored; retry it unchanged after \d+ ms.*raise quotas.ingestTicksPerSecond/);
    }
    const overGrpc = await ingest(grpc, alphaWriter, Array.from({ length: 5 }, (_, i) => ({ table: "trades", arrowIpc: tradesIpc(900, T0 + 30_000_000 + i * 1_000) })));
    expect(overGrpc.error?.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(overGrpc.error?.details).toMatch(/quota ingestTicksPerSecond = 1000/);
    await betaStillWorks();
  }, 30_000);

  it("quotas - a publisher refused for the rate backs off and every batch is stored in the end", async () => {
    await setQuotas({ ingestTicksPerSecond: 1_000 });
    const before = f.node.stats().quotaRefusedBatches ?? 0;
    const pub = publisher("alpha");
    const acks = await Promise.all(Array.from({ length: 4 }, (_, i) => pub.publish(trades(600, T0 + 40_000_000 + i * 1_000))));
    expect(acks.reduce((n, a) => n + a.rows, 0)).toBe(2_400);
    // It was refused on the way (2400 ticks at 1000/s with a burst of 1000) and retried.
    expect((f.node.stats().quotaRefusedBatches ?? 0) - before).toBeGreaterThan(0);
  }, 60_000);

  it("quotas - alpha over its bytes/s is refused naming ingestBytesPerSecond", async () => {
    await setQuotas({ ingestBytesPerSecond: 10_000 });
    const pub = publisher("alpha", 1);
    const results = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => pub.publish(trades(2_000, T0 + 50_000_000 + i * 10_000))));
    const refused = results.filter((r) => r.status === "rejected").map((r) => ((r as PromiseRejectedResult).reason as Error).message);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const m of refused) expect(m).toMatch(/tenant alpha: quota ingestBytesPerSecond = 10000 is used up/);
  }, 30_000);

  it("quotas - alpha at its hotBytes is refused retryably, nothing acknowledged is lost; beta ingests on", async () => {
    await setQuotas({ hotBytes: 1_000 });
    const pub = publisher("alpha", 1);
    const e = await pub.publish(trades(10, T0 + 60_000_000)).then(
      () => undefined,
      (x: unknown) => x as IngestRejectedError,
    );
    expect(e?.code).toBe("RESOURCE_EXHAUSTED");
    expect(e?.message).toMatch(/tenant alpha: quota hotBytes = 1000 is reached across the cluster \(its hot sets hold \d+ bytes: \d+ on this node's shards, 0 on other nodes' as they last reported\); this batch was not stored and nothing already acknowledged was dropped.*raise quotas.hotBytes/);
    // Every acknowledged row is still there.
    const all = await query(grpc, betaReader, { table: "trades", op: "lastBy" });
    expect(all.error).toBeUndefined();
    const mine = await query(grpc, alphaReader, { table: "trades", t0: T0, t1: T0 + ROWS });
    expect(mine.rows).toBe(ROWS);
    await betaStillWorks();
  }, 30_000);

  it("quotas - a batch bringing alpha past its symbols quota is refused (not retried); known symbols go on", async () => {
    await setQuotas({ symbols: 4 });
    const pub = publisher("alpha", 3);
    await pub.publish(trades(4, T0 + 70_000_000, ["NEW1"]));
    const e = await pub.publish(trades(4, T0 + 70_000_100, ["NEW2", "AAPL"])).then(
      () => undefined,
      (x: unknown) => x as IngestRejectedError,
    );
    expect(e?.code).toBe("RESOURCE_EXHAUSTED");
    expect(e?.message).toMatch(/tenant alpha: quota symbols = 4 would be passed: the tenant has 4 symbols across the cluster \(\d+ in its shards, \d+ admitted and not yet reported by their shard\) and this batch brings 1 new one\(s\) to table trades \(e.g. "NEW2"\).*raise quotas.symbols/);
    const ok = await pub.publish(trades(6, T0 + 70_000_200, ["AAPL", "NEW1", "IBM"]));
    expect(ok.rows).toBe(6);
    // gRPC ingest says the same (general decode path).
    const g = await ingest(grpc, alphaWriter, [{ table: "trades", arrowIpc: tickBatchToIpc(tableOf("alpha", "trades"), trades(2, T0 + 70_000_300, ["NEW3"])) }]);
    expect(g.error?.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(g.error?.details).toMatch(/quota symbols = 4/);
  }, 30_000);
});
