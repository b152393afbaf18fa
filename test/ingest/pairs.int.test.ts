// Producer dedup per (Px-Producer-Id, Px-Producer-Seq) pair, not per bucket
// (issue 21.6): the same pair with the same batch is a retry (acked duplicate,
// stored once); the same pair with a different batch is refused, whichever
// buckets it routes to, and nothing of it reaches the WAL. Negative control: with
// the pair check switched off the reuse is stored (other buckets) or silently
// dropped (same bucket), which this test detects.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers } from "@nats-io/transport-node";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { ipcOf, micros } from "../helpers/arrow.js";
import { walMessageCount } from "../helpers/wal.js";
import type { ProxistNode } from "../../src/node/node.js";
import type { IngestReply } from "../../protocols/ingest.js";
import { bucketOf } from "../../protocols/routing.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";

const SHARDS = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!.shards;
const T0 = micros("2026-11-25T14:30:00Z");
const dec = new TextDecoder();

/** Two symbols in bucket 0 and one in another bucket. */
const candidates = Array.from({ length: 200 }, (_, i) => `P${i}`);
const inBucket0 = candidates.filter((s) => bucketOf(s, SHARDS) === 0);
const elsewhere = candidates.find((s) => bucketOf(s, SHARDS) !== 0)!;
const batchOf = (sym: string, price: number) => ipcOf({ sym: [sym], ts: BigInt64Array.of(T0), price: Float64Array.of(price), size: Float64Array.of(1) });

interface Side {
  f: NatsFixture;
  node: ProxistNode;
}

async function side(unsafeSkipProducerPairCheck: boolean): Promise<Side> {
  const f = await natsFixture();
  const node = await nodeOn(f.server, f.nc, unsafeSkipProducerPairCheck ? { unsafeSkipProducerPairCheck } : {});
  return { f, node };
}

async function send(s: Side, payload: Uint8Array, producer: string, seq: number): Promise<IngestReply> {
  const h = headers();
  h.set("Px-Producer-Id", producer);
  h.set("Px-Producer-Seq", String(seq));
  const m = await s.f.nc.request("px.default.ingest.trades", payload, { timeout: 10_000, headers: h });
  return JSON.parse(dec.decode(m.data)) as IngestReply;
}

/** What reusing one pair for three batches does: the first, the same again, other data in the same bucket, other data elsewhere. */
async function reuse(s: Side, producer: string): Promise<{ first: IngestReply; retry: IngestReply; sameBucket: IngestReply; otherBucket: IngestReply; walGrowth: number }> {
  const first = await send(s, batchOf(inBucket0[0]!, 100), producer, 1);
  const after = await walMessageCount(s.f.nc, "default");
  const retry = await send(s, batchOf(inBucket0[0]!, 100), producer, 1);
  const sameBucket = await send(s, batchOf(inBucket0[1]!, 200), producer, 1);
  const otherBucket = await send(s, batchOf(elsewhere, 300), producer, 1);
  return { first, retry, sameBucket, otherBucket, walGrowth: (await walMessageCount(s.f.nc, "default")) - after };
}

let safe: Side;
let unsafe: Side;
beforeAll(async () => {
  [safe, unsafe] = await Promise.all([side(false), side(true)]);
}, 60_000);
afterAll(async () => {
  for (const s of [safe, unsafe]) {
    await s?.node.stop();
    await s?.f.close();
  }
});

describe("ingest - producer pairs", () => {
  it("pairs - a retry is a duplicate; the same pair with other data is refused in any bucket and nothing is stored", async () => {
    expect(inBucket0.length).toBeGreaterThanOrEqual(2);
    const r = await reuse(safe, "pair-test");
    expect(r.first.ok).toBe(true);
    expect(r.retry.ok && r.retry.appends.every((a) => a.duplicate)).toBe(true);
    expect(r.retry.ok && r.first.ok && r.retry.firstLsn).toBe(r.first.ok && r.first.firstLsn);
    for (const reused of [r.sameBucket, r.otherBucket]) {
      expect(reused.ok).toBe(false);
      if (reused.ok) continue;
      expect(reused.error.code).toBe("INVALID_ARGUMENT");
      expect(reused.error.retryable).toBe(false);
      expect(reused.error.message).toMatch(/producer pair-test seq 1 was already used for a different batch .*a new batch needs a new Px-Producer-Seq/);
    }
    expect(r.walGrowth).toBe(0);
    // The refusals are the client's error: the gateway keeps accepting.
    expect((await send(safe, batchOf(elsewhere, 400), "pair-test", 2)).ok).toBe(true);
  });

  it("pairs - a batch over several buckets: its retry is a duplicate in every bucket, with the same LSNs", async () => {
    const two = ipcOf({ sym: [inBucket0[0]!, elsewhere], ts: BigInt64Array.of(T0, T0), price: Float64Array.of(1, 2), size: Float64Array.of(1, 1) });
    const first = await send(safe, two, "pair-multi", 1);
    expect(first.ok && first.appends.length).toBe(2);
    const before = await walMessageCount(safe.f.nc, "default");
    const retry = await send(safe, two, "pair-multi", 1);
    expect(retry.ok && retry.appends.every((a) => a.duplicate)).toBe(true);
    expect(retry.ok && retry.appends.map((a) => a.lsn).sort()).toEqual(first.ok && first.appends.map((a) => a.lsn).sort());
    const reused = await send(safe, batchOf(elsewhere, 9), "pair-multi", 1);
    expect(reused.ok).toBe(false);
    expect((await walMessageCount(safe.f.nc, "default")) - before).toBe(0);
  });

  it("pairs - negative control: without the pair check, reuse is silently dropped in the same bucket and stored in another", async () => {
    const r = await reuse(unsafe, "pair-test");
    expect(r.sameBucket.ok && r.sameBucket.appends.every((a) => a.duplicate)).toBe(true); // silently dropped
    expect(r.otherBucket.ok && r.otherBucket.appends.some((a) => !a.duplicate)).toBe(true); // stored under a reused pair
    expect(r.walGrowth).toBe(1);
  });
});
