// The shard write fence (src/clickhouse/fence.ts) against a real
// clickhouse-server (18.16 here): an INSERT that reaches the server after a
// newer writer raised the fence and asked what landed writes nothing, however
// late it comes; without the fence the same late INSERT duplicates rows (the
// negative control). Also with the server SIGSTOPped while the INSERT is
// queued in its socket, as the chaos suite's clickhouse-pause does.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TableSpec } from "../../protocols/tablespec.js";
import { ClickhouseHttp, ClickhouseQueryError, encodeRowBinary, insertRowBinary, insertRowBinaryFenced, isFenceRefusal, landedLsns, readFence } from "../../src/clickhouse/index.js";
import { startClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import type { ClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import { SinkClickhouse, SinkFencedError, sinkQueryPrefix } from "../../src/sink/index.js";
import { DAY0, allTypesSpec, plainBatch } from "./batches.js";

const TENANT = "ftest";
let server: ClickhouseServer;
let ch: ClickhouseHttp;
let sinkCh: SinkClickhouse;
let tableNo = 0;

beforeAll(async () => {
  server = await startClickhouseServer();
  ch = new ClickhouseHttp({ url: server.httpUrl });
  sinkCh = new SinkClickhouse({ url: server.httpUrl });
});

afterAll(async () => {
  ch?.close();
  sinkCh?.close();
  if (server !== undefined && !server.running) await server.restart();
  await server?.dispose();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freshShard(): Promise<{ spec: TableSpec; shard: { tenant: string; table: string; bucket: number } }> {
  const spec = allTypesSpec(`f${++tableNo}`);
  await sinkCh.ensureTable(TENANT, spec);
  return { spec, shard: { tenant: TENANT, table: spec.name, bucket: 3 } };
}

const body = (spec: TableSpec, lsn: number, rows = 50): Buffer => encodeRowBinary(spec, plainBatch(rows, DAY0), { lsn, shard: 3 });

describe("shard write fence", () => {
  it("fence - an old owner's INSERT arriving after the new owner raised the fence and asked what landed is refused and writes nothing", async () => {
    const { spec, shard } = await freshShard();
    const a = await sinkCh.raiseFence(shard, 1);
    await insertRowBinaryFenced(ch, TENANT, spec, body(spec, 1), { bucket: 3, token: a }, { rows: 50 });
    // The new owner (lease revision 2) raises the fence, finds LSN 2 missing and sends it.
    const b = await sinkCh.raiseFence(shard, 2);
    expect(b).toBeGreaterThan(a);
    expect([...(await landedLsns(ch, TENANT, spec.name, 3, 1, 2))]).toEqual([[1, 50]]);
    await insertRowBinaryFenced(ch, TENANT, spec, body(spec, 2), { bucket: 3, token: b }, { rows: 50 });
    // Only now does the old owner's INSERT of LSN 2 reach the server.
    const late = await insertRowBinaryFenced(ch, TENANT, spec, body(spec, 2), { bucket: 3, token: a }, { rows: 50 }).catch((e: unknown) => e);
    expect(isFenceRefusal(late)).toBe(true);
    expect([...(await landedLsns(ch, TENANT, spec.name, 3, 1, 2))]).toEqual([
      [1, 50],
      [2, 50],
    ]);
    // The old owner cannot take the fence back: a newer revision holds it.
    await expect(sinkCh.raiseFence(shard, 1)).rejects.toBeInstanceOf(SinkFencedError);
    expect(await readFence(ch, TENANT, spec.name, 3)).toBe(b);
    // The same owner raising again (a retry) gets a newer token and fences its own earlier INSERTs.
    const b2 = await sinkCh.raiseFence(shard, 2);
    expect(b2).toBe(b + 1);
    expect(isFenceRefusal(await insertRowBinaryFenced(ch, TENANT, spec, body(spec, 3), { bucket: 3, token: b }, { rows: 50 }).catch((e: unknown) => e))).toBe(true);
    // Another shard of the table has its own fence.
    expect(await readFence(ch, TENANT, spec.name, 4)).toBe(0);
  });

  it("fence - negative control: the same late INSERT without the fence lands a second copy", async () => {
    const { spec, shard } = await freshShard();
    await sinkCh.raiseFence(shard, 1);
    await insertRowBinary(ch, TENANT, spec, body(spec, 1), { rows: 50 });
    await sinkCh.raiseFence(shard, 2);
    await insertRowBinary(ch, TENANT, spec, body(spec, 2), { rows: 50 });
    await insertRowBinary(ch, TENANT, spec, body(spec, 2), { rows: 50 });
    expect([...(await landedLsns(ch, TENANT, spec.name, 3, 1, 2))]).toEqual([
      [1, 50],
      [2, 100],
    ]);
  });

  it("fence - a fenced INSERT over the default block sizes is still one part, all its rows landed", async () => {
    const { spec, shard } = await freshShard();
    const t = await sinkCh.raiseFence(shard, 7);
    const rows = 1_100_000; // above the default block sizes: the fenced insert raises them
    await insertRowBinaryFenced(ch, TENANT, spec, encodeRowBinary(spec, plainBatch(rows, DAY0), { lsn: 9, shard: 3 }), { bucket: 3, token: t }, { rows });
    const parts = await ch.query(`SELECT rows FROM system.parts WHERE database = 'px_${TENANT}' AND table = '${spec.name}' AND active FORMAT TabSeparated`);
    expect(parts.trim().split("\n").map(Number)).toEqual([rows]);
    expect([...(await landedLsns(ch, TENANT, spec.name, 3, 9, 9))]).toEqual([[9, rows]]);
  });

  it("fence - clickhouse-server SIGSTOPped with the INSERT queued in its socket; the writer gives up, raises the fence and asks: the rows land exactly once whichever runs first", async () => {
    const { spec, shard } = await freshShard();
    const t = await sinkCh.raiseFence(shard, 1);
    const impatient = new ClickhouseHttp({ url: server.httpUrl, requestTimeoutMs: 500 });
    try {
      await server.kill("SIGSTOP");
      const queryId = `${sinkQueryPrefix(shard)}r1-test-1-1-0`;
      const outcome = await insertRowBinaryFenced(impatient, TENANT, spec, body(spec, 5), { bucket: 3, token: t }, { rows: 50, queryId }).catch((e: unknown) => e);
      expect(outcome).toBeInstanceOf(Error);
      expect(outcome).not.toBeInstanceOf(ClickhouseQueryError);
      await sleep(300);
      await server.kill("SIGCONT");
      // The retry: raise, wait for the shard's INSERTs to leave the server, ask, send what is missing.
      const t2 = await sinkCh.raiseFence(shard, 1);
      await sinkCh.waitWritersGone(shard, 30_000);
      const landed = await landedLsns(ch, TENANT, spec.name, 3, 5, 5);
      if (!landed.has(5)) await insertRowBinaryFenced(ch, TENANT, spec, body(spec, 5), { bucket: 3, token: t2 }, { rows: 50 });
      // However late the queued INSERT runs now, it cannot add a second copy.
      await sleep(1_000);
      expect([...(await landedLsns(ch, TENANT, spec.name, 3, 5, 5))]).toEqual([[5, 50]]);
    } finally {
      impatient.close();
      await server.kill("SIGCONT").catch(() => {});
    }
  });
});
