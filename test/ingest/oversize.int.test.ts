// One oversize batch must not hurt anyone else (issue 19): a batch (here 1 MB
// through the in-process path of gRPC Ingest and Flight DoPut, which accept up
// to 64 MiB) whose WAL record for one bucket is over the NATS server's
// max_payload (256 KiB here, 8 MB in infra/nats/nats.conf) is refused whole,
// naming the limit, before anything of it is stored, and the gateway stays
// ready for every other batch. Negative control: with the record check off the
// same batch is stored in part (its small bucket), fails, and puts the gateway
// in `degraded`, so the next, unrelated batch is refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { ipcOf } from "../helpers/arrow.js";
import { walMessageCount } from "../helpers/wal.js";
import type { ProxistNode } from "../../src/node/node.js";
import type { IngestReply } from "../../protocols/ingest.js";
import { bucketOf } from "../../protocols/routing.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";

const SHARDS = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!.shards;
const MAX_PAYLOAD = 256 * 1024;
const dec = new TextDecoder();
const T0 = BigInt(Date.now() - 60_000) * 1000n;

const candidates = Array.from({ length: 200 }, (_, i) => `O${i}`);
const big = candidates[0]!;
const small = candidates.find((s) => bucketOf(s, SHARDS) < bucketOf(big, SHARDS))!;

/** `bigRows` rows of one symbol (one bucket, ~24 bytes a row) and one row of a symbol in a lower bucket (sent first). */
function batch(bigRows: number): Uint8Array {
  const n = bigRows + 1;
  const sym = [small, ...Array.from({ length: bigRows }, () => big)];
  const ts = new BigInt64Array(n);
  const price = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    ts[i] = T0 + BigInt(i);
    price[i] = 100 + (i % 97);
  }
  return ipcOf({ sym, ts, price, size: new Float64Array(n).fill(1) });
}

interface Side {
  f: NatsFixture;
  node: ProxistNode;
}

async function side(unsafeSkipRecordLimit: boolean): Promise<Side> {
  const f = await natsFixture({ maxPayloadBytes: MAX_PAYLOAD });
  const node = await nodeOn(f.server, f.nc, unsafeSkipRecordLimit ? { unsafeSkipRecordLimit } : {});
  return { f, node };
}

async function send(s: Side, payload: Uint8Array): Promise<IngestReply> {
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

describe("ingest - WAL records over max_payload", () => {
  // Through the in-process path gRPC Ingest and Flight DoPut use: the API takes messages up to 64 MiB.
  const ingestBig = (s: Side): Promise<IngestReply> => s.node.ingest({ tenant: "default", table: "trades", payload: batch(40_000), producer: undefined });

  it("record limit - refused whole with the named limit, nothing stored, the gateway stays ready for the next batch", async () => {
    expect(bucketOf(small, SHARDS)).not.toBe(bucketOf(big, SHARDS));
    const before = await walMessageCount(safe.f.nc, "default");
    const reply = await ingestBig(safe);
    expect(reply.ok).toBe(false);
    if (reply.ok) return;
    expect(reply.error.code).toBe("RESOURCE_EXHAUSTED");
    expect(reply.error.retryable).toBe(false);
    expect(reply.error.message).toMatch(new RegExp(`WAL record for bucket ${bucketOf(big, SHARDS)} is \\d+ bytes .*max_payload ${MAX_PAYLOAD}.*nothing of this batch was stored; send it as smaller batches`));
    expect(await walMessageCount(safe.f.nc, "default")).toBe(before);
    // At once, no backoff: another batch is stored.
    expect(safe.node.state()).toBe("ready");
    const next = await send(safe, batch(10));
    expect(next.ok).toBe(true);
  });

  it("record limit - negative control: without the check the batch is stored in part and the gateway refuses everyone", async () => {
    const before = await walMessageCount(unsafe.f.nc, "default");
    const reply = await ingestBig(unsafe);
    expect(reply.ok).toBe(false);
    // The small bucket went out before the big one failed: part of a refused batch is in the WAL.
    expect((await walMessageCount(unsafe.f.nc, "default")) - before).toBeGreaterThanOrEqual(1);
    expect(unsafe.node.state()).toBe("degraded");
    const next = await send(unsafe, batch(10));
    expect(next.ok).toBe(false);
  });
});
