// gRPC Ingest with an empty producer_id and Flight DoPut with a path descriptor
// (issue 19): the node mints a producer pair for each batch, so when the first
// append's PubAcks are lost (test seam: JetStream stored the records) the
// gateway appends again inside the same call and the WAL keeps one copy. The
// negative control (no minted pair: a second copy) is test/ingest/minted.int.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiFixture, bidi, flightDataOf, ingest, pathDescriptor, tableOf, tradesIpc } from "./fixture.js";
import { bucketOf } from "../../protocols/routing.js";
import type { ApiFixture } from "./fixture.js";
import { walMessageCount } from "../helpers/wal.js";
import type { PutResult } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";

const lose = { on: false };
let f: ApiFixture;
let writer: string;
beforeAll(async () => {
  f = await apiFixture({ node: { seams: { loseWalAck: (_subject, attempt) => lose.on && attempt === 1 } } });
  writer = await f.token("alpha", "writer");
}, 60_000);
afterAll(async () => {
  await f?.close();
});

async function stored<T>(call: () => Promise<T>): Promise<{ result: T; walGrowth: number }> {
  const before = await walMessageCount(f.nats.nc, "alpha");
  lose.on = true;
  try {
    const result = await call();
    return { result, walGrowth: (await walMessageCount(f.nats.nc, "alpha")) - before };
  } finally {
    lose.on = false;
  }
}

describe("api - minted producer pairs", () => {
  it("grpc ingest - a batch without producer_id whose acks were lost is appended again in the call and stored once", async () => {
    const { result, walGrowth } = await stored(() => ingest(f.proxist(), writer, [{ table: "trades", arrowIpc: tradesIpc(30) }]));
    expect(result.error).toBeUndefined();
    const ack = result.acks[0]!;
    expect(ack.appends.length).toBeGreaterThan(1);
    expect(ack.appends.every((a) => a.duplicate)).toBe(true);
    expect(walGrowth).toBe(ack.appends.length);
  });

  it("flight doput - a path descriptor's batch whose acks were lost is stored once", async () => {
    const { result, walGrowth } = await stored(() => bidi<PutResult>(f.flight(), "doPut", flightDataOf(tradesIpc(30, 1_700_000_100_000_000), pathDescriptor("trades")), writer));
    expect(result.error).toBeUndefined();
    const ack = JSON.parse(new TextDecoder().decode(result.items[0]!.appMetadata)) as { duplicate: boolean; firstLsn: number; lastLsn: number };
    expect(ack.duplicate).toBe(true);
    // One record per bucket the batch's symbols (trades(): AAPL, MSFT, IBM) route to, and no more.
    const shards = tableOf("alpha", "trades").shards;
    expect(walGrowth).toBe(new Set(["AAPL", "MSFT", "IBM"].map((s) => bucketOf(s, shards))).size);
  });
});
