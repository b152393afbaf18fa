// The memory quota bounds cold reads too: against a real clickhouse-server, a
// range query of a tenant with queryMemoryBytes reads at most one row past what
// fits from each shard's cold slice (LIMIT), then stops with RESOURCE_EXHAUSTED
// naming the quota. Negative control: a cold source that drops the cap reads
// every cold row first (what the LIMIT saves), and is refused only afterwards.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueryError } from "../../protocols/errors.js";
import { bucketOf } from "../../protocols/routing.js";
import { ClickhouseHttp, detectServer, encodeRowBinarySegments, ensureSchema, insertRowBinary } from "../../src/clickhouse/index.js";
import { HotTable } from "../../src/hotset/index.js";
import { ClickhouseColdSource, ProxistQueryEngine, staticSource } from "../../src/query/index.js";
import type { ColdSource, HotShard } from "../../src/query/index.js";
import { startClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import type { ClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import { SPAN, T_BASE, workload } from "../query/fixture.js";

let server: ClickhouseServer;
let ch: ClickhouseHttp;

beforeAll(async () => {
  server = await startClickhouseServer();
  ch = new ClickhouseHttp({ url: server.httpUrl });
}, 60_000);
afterAll(async () => {
  ch?.close();
  await server?.dispose();
});

/** Hot tables of the workload's trades, everything written to ClickHouse and evicted below 90% of the span. */
async function persistedTrades(tenant: string): Promise<{ shards: HotShard[]; source: ReturnType<typeof staticSource>; coldRows: number }> {
  const w = workload(3, { records: 80, rowsPerRecord: 40 });
  const spec = w.specs.find((s) => s.name === "trades")!;
  const info = await detectServer(ch);
  await ensureSchema(ch, tenant, spec);
  const shards: HotShard[] = Array.from({ length: spec.shards }, (_, bucket) => ({ bucket, table: new HotTable(spec, { chunkRows: 64, firstChunkRows: 4, nextChunkRows: 16 }) }));
  const recs = w.records.filter((r) => r.table === "trades");
  for (const r of recs) shards[r.bucket]!.table.apply(r.lsn, r.batch);
  const H = T_BASE + Math.floor(SPAN * 0.9);
  let coldRows = 0;
  for (const sh of shards) {
    const mine = recs.filter((r) => r.bucket === sh.bucket);
    const body = encodeRowBinarySegments(spec, mine.map((r) => ({ batch: r.batch, meta: { lsn: r.lsn, shard: sh.bucket } })));
    await insertRowBinary(ch, tenant, spec, body, { rows: mine.reduce((n, r) => n + r.batch.rows, 0), capabilities: info.capabilities });
    sh.table.evict(mine.at(-1)!.lsn, H);
    for (const r of mine) for (let i = 0; i < r.batch.rows; i++) if (r.batch.ts[i]! < H) coldRows++;
  }
  return { shards, source: staticSource(new Map([[tenant, new Map([["trades", { spec, shards }]])]])), coldRows };
}

describe("quotas - cold reads", () => {
  it("quotas - a range over queryMemoryBytes reads at most cap + 1 cold rows (one read for every shard), then is refused; without the cap every cold row is read first (negative control)", async () => {
    const tenant = "qcold";
    const { source, coldRows, shards } = await persistedTrades(tenant);
    const inner = new ClickhouseColdSource(ch);
    const read: number[] = [];
    const counting = (dropCap: boolean): ColdSource => ({
      range: async (s, a, b, sig, maxRows) => {
        const r = await (dropCap ? inner.range(s, a, b, sig) : inner.range(s, a, b, sig, maxRows));
        read.push(r.batch.rows);
        return r;
      },
      edge: (...a) => inner.edge(...a),
    });
    const capBytes = 400; // 10 rows of (ts, lsn, row, price, size)
    const engine = (dropCap: boolean) => new ProxistQueryEngine({ source, cold: counting(dropCap), quotas: () => ({ queryMemoryBytes: capBytes }) });
    const q = { op: "range", table: "trades", t0: T_BASE, t1: T_BASE + SPAN };

    const refused = await engine(false).execute(tenant, q).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(QueryError);
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    expect((refused as Error).message).toMatch(/tenant qcold: quota queryMemoryBytes = 400 would be passed/);
    expect(read).toHaveLength(1);
    expect(read[0]).toBeLessThanOrEqual(11);

    read.length = 0;
    const control = await engine(true).execute(tenant, q).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(control).toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    // Without the LIMIT the whole cold side came over first: far more than the cap allows.
    expect(read.reduce((a, b) => a + b, 0)).toBe(coldRows);
    expect(coldRows).toBeGreaterThan(10 * shards.length);

    // Without a quota the same query is answered whole (nothing lost to the cap).
    const all = await new ProxistQueryEngine({ source, cold: inner }).execute(tenant, q);
    expect(all.table.rows).toBeGreaterThan(coldRows);
  }, 60_000);

  it("cold reads - one statement for every shard takes a symbol list past ClickHouse's default max_query_size (256 KiB)", async () => {
    const tenant = "qlong";
    const { shards, source } = await persistedTrades(tenant);
    const spec = source.spec(tenant, "trades")!;
    const held = shards[0]!.table.symbols();
    // 3,000 symbols of 100 bytes that no shard holds, plus those held: ~300 KB of SQL, each symbol in its own shard's slice.
    const symbols = [...held, ...Array.from({ length: 3_000 }, (_, i) => `${"L".repeat(96)}${String(i).padStart(4, "0")}`)];
    const slices = shards.map((sh) => ({ tenant, spec, shard: sh.bucket, persistedLsn: sh.table.persistedLsn, horizonMicros: sh.table.horizonMicros, symbols: symbols.filter((x) => bucketOf(x, spec.shards) === sh.bucket) }));
    const cold = new ClickhouseColdSource(ch);
    const rows = await cold.range(slices, T_BASE, T_BASE + SPAN);
    // The same rows as the short statement of the held symbols alone.
    const short = await cold.range(slices.map((x) => ({ ...x, symbols: x.symbols.filter((y) => held.includes(y)) })), T_BASE, T_BASE + SPAN);
    expect(rows.batch.rows).toBeGreaterThan(0);
    expect(rows.batch.rows).toBe(short.batch.rows);
  }, 60_000);
});
