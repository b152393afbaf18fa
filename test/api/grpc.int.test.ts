// proxist.v1 over a real nats-server + node: a grpc-js client ingests and
// queries; acks carry LSNs; retries dedup; cancel and deadline stop the engine.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import type { RecordBatch } from "apache-arrow";
import { QueryRequestSchema } from "../../protocols/gen/proxist/v1/api_pb.js";
import { walArrowSchema } from "../../protocols/arrow.js";
import { tickBatchToRecordBatch } from "../../src/codec/arrow.js";
import type { QueryEngine } from "../../src/api/index.js";
import { Status, apiFixture, ingest, md, query, status, tableOf, trades, tradesIpc } from "./fixture.js";
import type { ApiFixture, ServiceClient } from "./fixture.js";

/** An engine that produces batches forever, slowly, and records whether it was stopped. */
const endless = { started: 0, stopped: 0, aborted: 0, produced: 0 };
function withEndless(inner: QueryEngine): QueryEngine {
  const spec = tableOf("alpha", "trades");
  return {
    schema: (tenant, q) => ((q as { endless?: boolean }).endless ? Promise.resolve(walArrowSchema(spec)) : inner.schema(tenant, q)),
    tableQuery: (t) => inner.tableQuery(t),
    run: (tenant, q, signal) => {
      if (!(q as { endless?: boolean }).endless) return inner.run(tenant, q, signal);
      return (async function* (): AsyncGenerator<RecordBatch> {
        endless.started++;
        try {
          while (!signal.aborted) {
            endless.produced++;
            yield tickBatchToRecordBatch(spec, trades(10));
            await new Promise((r) => setTimeout(r, 20));
          }
          endless.aborted++;
        } finally {
          endless.stopped++;
        }
      })();
    },
  };
}

let f: ApiFixture;
let client: ServiceClient;
let writer: string;
let reader: string;
beforeAll(async () => {
  f = await apiFixture({ engine: withEndless });
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
    const t0 = 1_800_000_000_000_000;
    const sent = trades(500, t0);
    const { error } = await ingest(client, writer, [{ table: "trades", arrowIpc: tradesIpc(500, t0) }]);
    expect(error).toBeUndefined();
    const res = await query(client, reader, { table: "trades", t0, t1: t0 + 500 });
    expect(res.error).toBeUndefined();
    expect(res.rows).toBe(500);
    const rows = res.tables.flatMap((t) => t.toArray().map((r) => ({ sym: String(r.sym), ts: Number(r.ts), price: r.price as number, size: r.size as number })));
    rows.sort((a, b) => a.ts - b.ts);
    expect(rows[0]).toEqual({ sym: "AAPL", ts: t0, price: 100, size: 1 });
    expect(rows.map((r) => r.ts)).toEqual(Array.from(sent.ts));
    expect(rows.map((r) => r.sym)).toEqual(Array.from(sent.symbolIndex, (i) => sent.symbols[i]));
  });

  it("query - chunks respect max_chunk_rows and each is a complete IPC stream", async () => {
    const t0 = 1_810_000_000_000_000;
    await ingest(client, writer, [{ table: "trades", arrowIpc: tradesIpc(250, t0) }]);
    const chunks = await new Promise<number[]>((resolve, reject) => {
      const rows: number[] = [];
      const call = client.query!(create(QueryRequestSchema, { queryJson: JSON.stringify({ table: "trades", t0, t1: t0 + 250 }), maxChunkRows: 100 }), md(reader)) as ClientReadableStream<{ rows: number }>;
      call.on("data", (c: { rows: number }) => rows.push(c.rows));
      call.on("error", reject);
      call.on("end", () => resolve(rows));
    });
    expect(chunks.reduce((a, b) => a + b, 0)).toBe(250);
    expect(Math.max(...chunks)).toBeLessThanOrEqual(100);
  });

  it("query - an empty result is one schema-only chunk", async () => {
    const res = await query(client, reader, { table: "quotes", t0: 0, t1: 10 });
    expect(res.error).toBeUndefined();
    expect(res.chunks).toHaveLength(1);
    expect(res.rows).toBe(0);
    expect(res.tables[0]!.schema.fields.map((x) => x.name)).toEqual(["sym", "ts", "bid", "ask"]);
  });

  it("ingest - a retried batch (same producer id and seq) is stored once", async () => {
    const batch = { table: "trades", producerId: "retry-test", producerSeq: 7n, arrowIpc: tradesIpc(5, 1_820_000_000_000_000) };
    const first = await ingest(client, writer, [batch]);
    const again = await ingest(client, writer, [batch]);
    expect(first.error).toBeUndefined();
    expect(again.error).toBeUndefined();
    expect(again.acks[0]!.firstLsn).toBe(first.acks[0]!.firstLsn);
    expect(again.acks[0]!.appends.every((a) => a.duplicate)).toBe(true);
    const res = await query(client, reader, { table: "trades", t0: 1_820_000_000_000_000, t1: 1_820_000_000_000_005 });
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
  it("query - cancelling the call aborts the engine and stops its work", async () => {
    const before = { ...endless };
    const call = client.query!(create(QueryRequestSchema, { queryJson: JSON.stringify({ endless: true }) }), md(reader)) as ClientReadableStream<unknown>;
    let received = 0;
    const ended = new Promise<number>((resolve) => call.on("error", (e: { code: number }) => resolve(e.code)));
    await new Promise<void>((resolve) =>
      call.on("data", () => {
        if (++received === 3) resolve();
      }),
    );
    call.cancel();
    expect(await ended).toBe(Status.CANCELLED);
    await expect.poll(() => endless.stopped - before.stopped, { timeout: 2_000 }).toBe(1);
    const produced = endless.produced;
    await new Promise((r) => setTimeout(r, 200));
    expect(endless.produced).toBe(produced);
  });

  it("query - the deadline aborts the engine and the client sees DEADLINE_EXCEEDED", async () => {
    const before = { ...endless };
    const res = await query(client, reader, { endless: true }, { deadline: 300 });
    expect(res.error?.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(res.rows).toBeGreaterThan(0);
    await expect.poll(() => endless.stopped - before.stopped, { timeout: 2_000 }).toBe(1);
    expect(endless.aborted - before.aborted).toBe(1);
  });

  it("query - a cancelled WAL scan closes its consumer", async () => {
    await ingest(client, writer, Array.from({ length: 20 }, (_, i) => ({ table: "trades", arrowIpc: tradesIpc(100, 1_830_000_000_000_000 + i * 1000) })));
    const call = client.query!(create(QueryRequestSchema, { queryJson: JSON.stringify({ table: "trades" }), maxChunkRows: 1 }), md(reader)) as ClientReadableStream<unknown>;
    await new Promise<void>((resolve) => call.once("data", () => resolve()));
    call.on("error", () => {});
    call.cancel();
    await expect.poll(() => f.engine.stats.open, { timeout: 3_000 }).toBe(0);
  });
});
