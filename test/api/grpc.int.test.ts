// proxist.v1 over a real nats-server + node and the node's query engine: a
// grpc-js client ingests and queries (read-after-write through the acks' LSNs
// as minLsn); retries dedup; cancel and deadline end the engine's run.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { TimeUnit, Type } from "apache-arrow";
import { QueryRequestSchema } from "../../protocols/gen/proxist/v1/api_pb.js";
import { Status, apiFixture, ingest, lsnOf, md, query, status, tableOf, trades, tradesIpc } from "./fixture.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import type { ApiFixture, ServiceClient } from "./fixture.js";

let f: ApiFixture;
let client: ServiceClient;
let writer: string;
let reader: string;
beforeAll(async () => {
  f = await apiFixture();
  client = f.proxist();
  writer = await f.token("alpha", "writer");
  reader = await f.token("alpha", "reader");
});
afterAll(async () => {
  await f?.close();
});

describe("grpc ingest and query", () => {
  it("ingest - batches are acked in order with their LSNs", async () => {
    const t0 = 1_700_000_000_000_000;
    const { acks, error } = await ingest(client, writer, [
      { table: "trades", arrowIpc: tradesIpc(30, t0) },
      { table: "trades", arrowIpc: tradesIpc(30, t0 + 1000) },
      { table: "alpha.trades", arrowIpc: tradesIpc(30, t0 + 2000) },
    ]);
    expect(error).toBeUndefined();
    expect(acks.map((a) => a.batchIndex)).toEqual([0n, 1n, 2n]);
    expect(acks.every((a) => a.rows === 30 && a.firstLsn > 0n && a.lastLsn >= a.firstLsn)).toBe(true);
    expect(acks[1]!.firstLsn).toBeGreaterThan(acks[0]!.lastLsn);
  });

  it("query - a range scan returns exactly the ingested rows", async () => {
    const t0 = 1_740_000_000_000_000;
    const sent = trades(500, t0);
    const { acks, error } = await ingest(client, writer, [{ table: "trades", arrowIpc: tradesIpc(500, t0) }]);
    expect(error).toBeUndefined();
    // "tsType":"int64": ts as raw microseconds (the default is an Arrow timestamp, tested below).
    const res = await query(client, reader, { table: "trades", t0, t1: t0 + 500, minLsn: lsnOf(acks), tsType: "int64" });
    expect(res.error).toBeUndefined();
    expect(res.rows).toBe(500);
    expect(String(res.tables[0]!.schema.fields[1]!.type)).toBe("Int64");
    const rows = res.tables.flatMap((t) => t.toArray().map((r) => ({ sym: String(r.sym), ts: Number(r.ts), price: r.price as number, size: r.size as number })));
    rows.sort((a, b) => a.ts - b.ts);
    expect(rows[0]).toEqual({ sym: "AAPL", ts: t0, price: 100, size: 1 });
    expect(rows.map((r) => r.ts)).toEqual(Array.from(sent.ts));
    expect(rows.map((r) => r.sym)).toEqual(Array.from(sent.symbolIndex, (i) => sent.symbols[i]));
  });

  it("query - ts is an Arrow timestamp[us, UTC] by default, and the schema says the result is complete", async () => {
    const t0 = 1_743_000_000_000_000;
    const { acks } = await ingest(client, writer, [{ table: "trades", arrowIpc: tradesIpc(30, t0) }]);
    const res = await query(client, reader, { table: "trades", t0, t1: t0 + 30, minLsn: lsnOf(acks) });
    expect(res.error).toBeUndefined();
    const t = res.tables[0]!;
    const ts = t.schema.fields.find((x) => x.name === "ts")!;
    expect(ts.type.typeId).toBe(Type.Timestamp);
    expect((ts.type as unknown as { unit: number }).unit).toBe(TimeUnit.MICROSECOND);
    expect((ts.type as unknown as { timezone: string }).timezone).toBe("UTC");
    expect(Number((t.getChild("ts")!.toArray() as BigInt64Array)[0])).toBe(t0);
    // A node without ClickHouse answers from RAM only: the metadata says so on every result, complete or not.
    expect(["true", "false"]).toContain(t.schema.metadata.get("proxist.complete"));
    const bad = await query(client, reader, { table: "trades", tsType: "ms" });
    expect(bad.error?.code).toBe(Status.INVALID_ARGUMENT);
    expect(bad.error?.details).toMatch(/"tsType" must be "timestamp" .* or "int64"/);
  });

  it("query - chunks respect max_chunk_rows and each is a complete IPC stream", async () => {
    const t0 = 1_741_000_000_000_000;
    const { acks } = await ingest(client, writer, [{ table: "trades", arrowIpc: tradesIpc(250, t0) }]);
    const chunks = await new Promise<number[]>((resolve, reject) => {
      const rows: number[] = [];
      const q = { table: "trades", t0, t1: t0 + 250, minLsn: lsnOf(acks) };
      const call = client.query!(create(QueryRequestSchema, { queryJson: JSON.stringify(q), maxChunkRows: 100 }), md(reader)) as ClientReadableStream<{ rows: number }>;
      call.on("data", (c: { rows: number }) => rows.push(c.rows));
      call.on("error", reject);
      call.on("end", () => resolve(rows));
    });
    expect(chunks.reduce((a, b) => a + b, 0)).toBe(250);
    expect(Math.max(...chunks)).toBeLessThanOrEqual(100);
  });

  it("query - a wide result comes in chunks under 4 MiB: a client with gRPC's default receive limit reads all of it", async () => {
    // 70,000 trades 1 ms apart: as many (symbol, 1 ms) groups, each with 9 aggregates (~90 bytes a row:
    // 65,536 rows would be a 5.5 MB message, over the 4 MiB a default grpc-js client accepts).
    const t0 = 1_745_000_000_000_000;
    const b = trades(70_000, t0);
    const spaced = { ...b, ts: Float64Array.from(b.ts, (_, i) => t0 + i * 1_000) };
    const { acks, error } = await ingest(client, writer, [{ table: "trades", arrowIpc: tickBatchToIpc(tableOf("alpha", "trades"), spaced) }]);
    expect(error).toBeUndefined();
    const aggregates = [{ fn: "count" }, ...["sum", "avg", "min", "max", "first", "last", "vwap"].map((fn) => ({ fn, column: "price" })), { fn: "sum", column: "size" }];
    const res = await query(client, reader, { op: "groupBy", table: "trades", by: ["symbol", "bucket"], bucket: "1ms", t0, t1: t0 + 70_000_000, aggregates, minLsn: lsnOf(acks) });
    expect(res.error).toBeUndefined();
    expect(res.rows).toBe(70_000);
    expect(res.chunks.length).toBeGreaterThan(1);
    expect(Math.max(...res.chunks.map((c) => c.arrowIpc.byteLength))).toBeLessThan(4 << 20);
  });

  it("query - an empty result is one schema-only chunk", async () => {
    const res = await query(client, reader, { table: "quotes", t0: 0, t1: 10 });
    expect(res.error).toBeUndefined();
    expect(res.chunks).toHaveLength(1);
    expect(res.rows).toBe(0);
    expect(res.tables[0]!.schema.fields.map((x) => x.name)).toEqual(["sym", "ts", "bid", "ask"]);
  });

  it("query - the engine's operators answer over gRPC (lastBy, groupBy) and its plan errors are INVALID_ARGUMENT", async () => {
    const t0 = 1_765_000_000_000_000;
    const { acks } = await ingest(client, writer, [{ table: "trades", arrowIpc: tradesIpc(300, t0) }]);
    const window = { table: "trades", t0, t1: t0 + 300, minLsn: lsnOf(acks) };
    const last = await query(client, reader, { ...window, op: "lastBy" });
    expect(last.error).toBeUndefined();
    // ts read as its stored values (microseconds, whether the column is int64 or timestamp[us]).
    const lastRows = last.tables.flatMap((t) => {
      const ts = t.getChild("ts")!.toArray() as BigInt64Array;
      return t.toArray().map((r, i) => [String(r.sym), Number(ts[i])]);
    });
    expect(lastRows.sort()).toEqual([["AAPL", t0 + 297], ["IBM", t0 + 299], ["MSFT", t0 + 298]]);
    const counts = await query(client, reader, { ...window, op: "groupBy", by: ["symbol"], aggregates: [{ fn: "count" }] });
    expect(counts.error).toBeUndefined();
    expect(counts.tables.flatMap((t) => t.toArray().map((r) => [String(r.sym), Number(r.count)])).sort()).toEqual([["AAPL", 100], ["IBM", 100], ["MSFT", 100]]);
    const bad = await query(client, reader, { ...window, columns: ["nope"] });
    expect(bad.error?.code).toBe(Status.INVALID_ARGUMENT);
    expect(bad.error?.details).toMatch(/table trades has no column "nope" \(its columns: price, size\)/);
  });

  it("ingest - a retried batch (same producer id and seq) is stored once", async () => {
    const batch = { table: "trades", producerId: "retry-test", producerSeq: 7n, arrowIpc: tradesIpc(5, 1_742_000_000_000_000) };
    const first = await ingest(client, writer, [batch]);
    const again = await ingest(client, writer, [batch]);
    expect(first.error).toBeUndefined();
    expect(again.error).toBeUndefined();
    expect(again.acks[0]!.firstLsn).toBe(first.acks[0]!.firstLsn);
    expect(again.acks[0]!.appends.every((a) => a.duplicate)).toBe(true);
    const res = await query(client, reader, { table: "trades", t0: 1_742_000_000_000_000, t1: 1_742_000_000_000_005, minLsn: lsnOf(again.acks) });
    expect(res.rows).toBe(5);
  });

  it("status - lists the tenant's tables and its WAL position", async () => {
    const { reply, error } = await status(client, reader);
    expect(error).toBeUndefined();
    expect(reply!.tenant).toBe("alpha");
    expect(reply!.role).toBe("reader");
    expect(reply!.tables.map((t) => t.name)).toEqual(["quotes", "trades"]);
    expect(reply!.tables[1]!.columns.map((c) => c.name)).toEqual(["price", "size"]);
    expect(reply!.walLastLsn).toBeGreaterThan(0n);
  });
});

describe("grpc cancellation", () => {
  // 20 000 rows sent one row per chunk: far more than the call's buffers hold, so the engine's run is still open when the call ends.
  const T0 = 1_764_000_000_000_000;
  const big = { table: "trades", t0: T0, t1: T0 + 20_000 * 1000, minLsn: 0 };
  beforeAll(async () => {
    const { acks, error } = await ingest(client, writer, Array.from({ length: 20 }, (_, i) => ({ table: "trades", arrowIpc: tradesIpc(1000, T0 + i * 1_000_000) })));
    expect(error).toBeUndefined();
    big.minLsn = lsnOf(acks);
  });

  it("query - cancelling the call aborts the engine's run and releases it", async () => {
    const before = f.engine.stats();
    const call = client.query!(create(QueryRequestSchema, { queryJson: JSON.stringify(big), maxChunkRows: 1 }), md(reader)) as ClientReadableStream<unknown>;
    let received = 0;
    const ended = new Promise<number>((resolve) => call.on("error", (e: { code: number }) => resolve(e.code)));
    await new Promise<void>((resolve) =>
      call.on("data", () => {
        if (++received === 3) resolve();
      }),
    );
    call.cancel();
    expect(await ended).toBe(Status.CANCELLED);
    await expect.poll(() => f.engine.stats().running, { timeout: 3_000 }).toBe(0);
    expect(f.engine.stats().aborted - before.aborted).toBe(1);
  });

  it("query - the deadline aborts the engine's run and the client sees DEADLINE_EXCEEDED", async () => {
    const before = f.engine.stats();
    const res = await query(client, reader, big, { deadline: 300, maxChunkRows: 1 });
    expect(res.error?.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(res.rows).toBeGreaterThan(0);
    expect(res.rows).toBeLessThan(20_000);
    await expect.poll(() => f.engine.stats().running, { timeout: 3_000 }).toBe(0);
    expect(f.engine.stats().aborted - before.aborted).toBe(1);
  });

  it("query - a whole-table query cancelled after its first chunk leaves no run open", async () => {
    const call = client.query!(create(QueryRequestSchema, { queryJson: JSON.stringify({ table: "trades", minLsn: big.minLsn }), maxChunkRows: 1 }), md(reader)) as ClientReadableStream<unknown>;
    await new Promise<void>((resolve) => call.once("data", () => resolve()));
    call.on("error", () => {});
    call.cancel();
    await expect.poll(() => f.engine.stats().running, { timeout: 3_000 }).toBe(0);
  });
});
