// A batch sent without a producer pair (NATS publish without Px-Producer-*
// headers; gRPC Ingest with an empty producer_id and Flight DoPut with a path
// descriptor, which reach the gateway through node.ingest) gets a pair minted by
// the node, so when the gateway appends it again after a lost PubAck, the WAL
// keeps one copy (issue 19). The fault: JetStream stores every record of the
// batch but the first attempt's acks are lost (test seam), as on a reconnect.
// Negative control: without minted pairs the gateway cannot retry safely, the
// batch is nacked as retryable, and the client's retry stores a second copy.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { ipcOf } from "../helpers/arrow.js";
import { readWal, walMessageCount } from "../helpers/wal.js";
import type { ProxistNode } from "../../src/node/node.js";
import type { IngestReply } from "../../protocols/ingest.js";
import { bucketOf } from "../../protocols/routing.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";

const SHARDS = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!.shards;
const dec = new TextDecoder();
const T0 = BigInt(Date.now() - 60_000) * 1000n;
const candidates = Array.from({ length: 200 }, (_, i) => `M${i}`);
const a = candidates[0]!;
const b = candidates.find((s) => bucketOf(s, SHARDS) !== bucketOf(a, SHARDS))!;
/** Two rows in two buckets: two WAL records. */
const twoBuckets = (price: number) => ipcOf({ sym: [a, b], ts: BigInt64Array.of(T0, T0 + 1n), price: Float64Array.of(price, price), size: Float64Array.of(1, 1) });

interface Side {
  f: NatsFixture;
  node: ProxistNode;
  /** While true, the first attempt of every WAL append loses its PubAck (the record is stored). */
  lose: { on: boolean };
}

async function side(unsafeNoMintedProducer: boolean): Promise<Side> {
  const f = await natsFixture();
  const lose = { on: false };
  const node = await nodeOn(f.server, f.nc, { ...(unsafeNoMintedProducer ? { unsafeNoMintedProducer } : {}), seams: { loseWalAck: (_subject, attempt) => lose.on && attempt === 1 } });
  return { f, node, lose };
}

async function publish(s: Side, payload: Uint8Array): Promise<IngestReply> {
  const m = await s.f.nc.request("px.default.ingest.trades", payload, { timeout: 30_000 });
  return JSON.parse(dec.decode(m.data)) as IngestReply;
}

let safe: Side;
let unsafe: Side;
beforeAll(async () => {
  [safe, unsafe] = await Promise.all([side(false), side(true)]);
}, 90_000);
afterAll(async () => {
  for (const s of [safe, unsafe]) {
    await s?.node.stop();
    await s?.f.close();
  }
});

describe("ingest - minted producer pairs", () => {
  it("minted pair - a NATS batch without headers whose acks were lost is appended again and stored once", async () => {
    const before = await walMessageCount(safe.f.nc, "default");
    safe.lose.on = true;
    const reply = await publish(safe, twoBuckets(11));
    safe.lose.on = false;
    expect(reply.ok).toBe(true);
    if (!reply.ok) return;
    // The second attempt found both records stored: duplicates, same LSNs.
    expect(reply.appends.map((x) => x.duplicate)).toEqual([true, true]);
    expect((await walMessageCount(safe.f.nc, "default")) - before).toBe(2);
    const stored = (await readWal(safe.f.nc, "default")).slice(-2);
    expect(stored.every((r) => /^px-[0-9a-f]{16}$/.test(r.record.producerId) && r.msgId !== undefined)).toBe(true);
    expect(stored.map((r) => r.lsn).sort()).toEqual(reply.appends.map((x) => x.lsn).sort());
  });

  it("minted pair - the in-process path of gRPC Ingest and Flight DoPut (no producer) is stored once too", async () => {
    const before = await walMessageCount(safe.f.nc, "default");
    safe.lose.on = true;
    const reply = await safe.node.ingest({ tenant: "default", table: "trades", payload: twoBuckets(12), producer: undefined });
    safe.lose.on = false;
    expect(reply.ok && reply.appends.every((x) => x.duplicate)).toBe(true);
    expect((await walMessageCount(safe.f.nc, "default")) - before).toBe(2);
  });

  it("minted pair - negative control: without minted pairs the batch is nacked retryable and the client's retry stores a second copy", async () => {
    const before = await walMessageCount(unsafe.f.nc, "default");
    unsafe.lose.on = true;
    const first = await publish(unsafe, twoBuckets(13));
    unsafe.lose.on = false;
    expect(first.ok).toBe(false);
    if (first.ok) return;
    expect(first.error).toMatchObject({ code: "UNAVAILABLE", retryable: true });
    // The client does what the nack says: retry it unchanged.
    let retry: IngestReply = first;
    for (let i = 0; i < 20 && !retry.ok; i++) {
      await new Promise((r) => setTimeout(r, 300));
      retry = await publish(unsafe, twoBuckets(13));
    }
    expect(retry.ok).toBe(true);
    expect((await walMessageCount(unsafe.f.nc, "default")) - before).toBe(4);
  });
});
