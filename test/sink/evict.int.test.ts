// Eviction against real servers: as the sink's watermarks advance, each shard
// drops the rows ClickHouse holds that are outside the table's hot retention
// (time window, memory budget). The hot set is then checked row by row against
// an oracle built from the WAL: RAM holds exactly {ts >= H or LSN > P}, the
// seam cache holds each symbol's last row below H, and ClickHouse{ts < H,
// LSN <= P} plus RAM is every tick exactly once.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, applyAndWait, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, exactlyOnceReport, shardViews, waitPersisted } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { readWal } from "../helpers/wal.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { decodeTickBatch } from "../../src/codec/arrow.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { lastWatermark } from "../../src/wal/index.js";
import { jetstreamManager } from "@nats-io/jetstream";
import { parseClusterSpec, parseTableSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { parseWalSubject } from "../../protocols/subjects.js";
import type { ProxistNode } from "../../src/node/node.js";

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode | undefined;
let tenantNo = 0;

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
});
afterEach(async () => {
  await node?.stop();
  node = undefined;
  if (!chf.server.running) await chf.server.restart();
});
afterAll(async () => {
  await f?.close();
  await chf?.close();
});

interface OracleRow {
  readonly sym: string;
  readonly ts: number;
  readonly lsn: number;
  readonly row: number;
}

/** Every WAL row of the table, by bucket. */
async function walRowsByBucket(tenant: string, spec: TableSpec): Promise<Map<number, OracleRow[]>> {
  const out = new Map<number, OracleRow[]>();
  for (const r of await readWal(f.nc, tenant)) {
    const a = parseWalSubject(r.subject)!;
    if (a.table !== spec.name) continue;
    const b = decodeTickBatch(spec, r.record.payload, "test");
    const list = out.get(a.bucket) ?? [];
    for (let i = 0; i < b.rows; i++) list.push({ sym: b.symbols[b.symbolIndex[i]!]!, ts: b.ts[i]!, lsn: r.lsn, row: i });
    out.set(a.bucket, list);
  }
  return out;
}

const after = (a: OracleRow, b: { tsMicros: number; lsn: number; rowInRecord: number }): boolean =>
  a.ts > b.tsMicros || (a.ts === b.tsMicros && (a.lsn > b.lsn || (a.lsn === b.lsn && a.row > b.rowInRecord)));

/**
 * Checks every shard of `spec` against the oracle; returns, per bucket, rows
 * in RAM and rows evicted. The hot set is read in one synchronous pass.
 */
async function checkSeamInvariant(tenant: string, spec: TableSpec, clickhouseUp = true): Promise<{ ram: number; cold: number }[]> {
  const wal = await walRowsByBucket(tenant, spec);
  const jsm = await jetstreamManager(f.nc);
  const out: { ram: number; cold: number }[] = [];
  for (let bucket = 0; bucket < spec.shards; bucket++) {
    const rt = node!.shards.get({ tenant, table: spec.name, bucket })!.runtime;
    const table = rt.table;
    const all = wal.get(bucket) ?? [];
    const lastLsn = Math.max(0, ...all.map((r) => r.lsn));
    expect(table.appliedLsn).toBe(lastLsn);
    // P is what the sink announced (the watermark stream), not what the hot set says of itself.
    const wm = await lastWatermark(jsm, { tenant, table: spec.name, bucket });
    const p = wm?.persistedLsn ?? 0;
    // One synchronous snapshot of the hot set.
    expect(table.persistedLsn, `bucket ${bucket}: the hot set evicted against the last watermark`).toBe(p);
    const h = table.horizonMicros;
    const rows = table.toTickBatch();
    const seams = new Map(table.symbols().map((sym, id) => [sym, table.seam(id)]));

    const ram = new Set<string>();
    for (let i = 0; i < rows.batch.rows; i++) ram.add(`${rows.lsn[i]}:${rows.rowInRecord[i]}`);
    expect(ram.size).toBe(rows.batch.rows);
    const expected = all.filter((r) => r.ts >= h || r.lsn > p);
    const cold = all.filter((r) => !(r.ts >= h || r.lsn > p));
    expect(rows.batch.rows, `bucket ${bucket}: rows in RAM (P ${p}, H ${h})`).toBe(expected.length);
    for (const r of expected) expect(ram.has(`${r.lsn}:${r.row}`), `bucket ${bucket}: row ${r.lsn}:${r.row} (ts ${r.ts}) must be in RAM`).toBe(true);

    // Seam cache: per symbol, the greatest (ts, lsn, row) of its cold rows.
    const lastCold = new Map<string, OracleRow>();
    for (const r of cold) {
      const cur = lastCold.get(r.sym);
      if (cur === undefined || after(r, { tsMicros: cur.ts, lsn: cur.lsn, rowInRecord: cur.row })) lastCold.set(r.sym, r);
    }
    for (const [sym, r] of lastCold) expect(seams.get(sym), `seam of ${sym}`).toMatchObject({ tsMicros: r.ts, lsn: r.lsn, rowInRecord: r.row });

    // ClickHouse{ts < H, LSN <= P} and RAM together: every tick of the shard once.
    if (clickhouseUp) {
      const q = `SELECT count() FROM ${qualifiedTable(tenant, spec.name)} WHERE _shard = ${bucket} AND ${spec.timeColumn} < ${h} AND _lsn <= ${p} FORMAT TabSeparated`;
      expect(Number(await chf.ch.query(q)) + rows.batch.rows).toBe(all.length);
    }
    out.push({ ram: rows.batch.rows, cold: cold.length });
  }
  return out;
}

async function publish(tenant: string, spec: TableSpec, walk: RandomWalk, batches: number, lateMicros = 0, rows = 300): Promise<void> {
  const p = new TickPublisher(f.nc, { tenant, spec, maxInFlight: 4 });
  for (let i = 0; i < batches; i++) {
    const b = walk.trades(rows, 500_000);
    // Late ticks: every 5th row lands well before the newest tick.
    if (lateMicros > 0) for (let r = 0; r < b.rows; r += 5) b.ts[r] = b.ts[r]! - lateMicros;
    await p.publish(b);
  }
}

describe("sink - eviction and the seam invariant", () => {
  it("evict - by time: RAM holds exactly the rows within hotSeconds of the newest tick, plus every unpersisted row", async () => {
    const tenant = `ev${++tenantNo}`;
    const spec = parseClusterSpec({
      tenants: [{ name: tenant, tables: [{ name: "trades", shards: 2, retention: { hotSeconds: 2 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
    });
    const trades = spec.tenants[0]!.tables[0]!;
    await applyAndWait(f.nc, spec);
    node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl }, spec);
    const walk = new RandomWalk(symbolNames(30), 3, 1.75e15);
    // 12 s of tick time, some ticks 4 s late.
    await publish(tenant, trades, walk, 24, 4_000_000);
    await waitPersisted(node.httpPort, f.nc, tenant, "trades");
    const first = await checkSeamInvariant(tenant, trades);
    for (const b of first) expect(b.cold).toBeGreaterThan(0);
    const views = await shardViews(node.httpPort, tenant);
    for (const v of views) {
      expect(v.horizonMicros).toBeGreaterThan(1.75e15);
      expect(v.persistedLsn).toBeGreaterThan(0);
    }

    // ClickHouse down: new ticks, some far below H, are not persisted and must stay in RAM.
    await chf.server.stop();
    await publish(tenant, trades, walk, 8, 9_000_000);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await shardViews(node.httpPort, tenant)).some((v) => v.lagRecords === 0)) await new Promise((r) => setTimeout(r, 50));
    const during = await checkSeamInvariant(tenant, trades, false);
    for (let b = 0; b < during.length; b++) expect(during[b]!.ram).toBeGreaterThan(first[b]!.ram);

    // Back up: persisted, the late rows below H go too.
    await chf.server.restart();
    await waitPersisted(node.httpPort, f.nc, tenant, "trades");
    await new Promise((r) => setTimeout(r, 200));
    await checkSeamInvariant(tenant, trades);
    expect(await exactlyOnceReport(chf.ch, f.nc, tenant, trades)).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
  });

  it("evict - by memory budget: older persisted rows go until the hot set fits, and the invariant holds", async () => {
    const tenant = `ev${++tenantNo}`;
    const trades = parseTableSpec({ name: "trades", shards: 1, retention: { hotSeconds: 3_600, maxHotBytes: 2_000_000 }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });
    const spec = { tenants: [{ name: tenant, tables: [trades] }] };
    await applyAndWait(f.nc, spec);
    node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl }, spec);
    // Memory is freed a chunk (4096 rows) at a time: long series, a budget of many chunks.
    const walk = new RandomWalk(symbolNames(2), 5, 1.75e15);
    await publish(tenant, trades, walk, 60, 0, 2_000);
    await waitPersisted(node.httpPort, f.nc, tenant, "trades");
    const [b] = await checkSeamInvariant(tenant, trades);
    expect(b!.cold).toBeGreaterThan(0);
    const table = node.shards.get({ tenant, table: "trades", bucket: 0 })!.runtime.table;
    expect(table.bytes - table.idleBytes).toBeLessThanOrEqual(2_000_000);
    // Older rows went, not all of them: about half of 120 000 rows fit.
    expect(table.rowCount).toBeGreaterThan(20_000);
    expect(table.rowCount).toBeLessThan(120_000);
  });
});
