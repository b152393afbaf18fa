// The ingest status (px.<t>.ingest._status, issue 19): a publisher asks the WAL
// for its highest stored seq and resumes exactly after it, also after the
// WAL's duplicate window has passed and on a restarted node. The window is
// shortened to 1 s here so "after it" takes a second, not two minutes.
// Negative control: resending the unacked batch after the window (what a
// publisher without the status query does) stores it a second time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { ipcOf } from "../helpers/arrow.js";
import { readWal } from "../helpers/wal.js";
import type { ProxistNode } from "../../src/node/node.js";
import type { IngestReply, IngestStatusReply } from "../../protocols/ingest.js";
import { walStream } from "../../protocols/subjects.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { IngestStatusError, ingestStatus, resumeFrom } from "../../src/client/ingeststatus.js";
import { bucketOf } from "../../protocols/routing.js";
import { decodeTickBatch } from "../../src/codec/arrow.js";

const TRADES = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!;
const dec = new TextDecoder();
const T0 = BigInt(Date.now() - 60_000) * 1000n;
const syms = Array.from({ length: 50 }, (_, i) => `S${i}`);
const a = syms[0]!;
const b = syms.find((s) => bucketOf(s, TRADES.shards) !== bucketOf(a, TRADES.shards))!;
const batchOf = (price: number) => ipcOf({ sym: [a, b], ts: BigInt64Array.of(T0, T0 + 1n), price: Float64Array.of(price, price), size: Float64Array.of(1, 1) });

let f: NatsFixture;
let node: ProxistNode;
beforeAll(async () => {
  f = await natsFixture();
  node = await nodeOn(f.server, f.nc);
}, 60_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

async function send(payload: Uint8Array, producer: string, seq: bigint): Promise<IngestReply> {
  const h = headers();
  h.set("Px-Producer-Id", producer);
  h.set("Px-Producer-Seq", String(seq));
  const m = await f.nc.request("px.default.ingest.trades", payload, { timeout: 30_000, headers: h });
  return JSON.parse(dec.decode(m.data)) as IngestReply;
}

/** WAL records holding rows at this price (each batch here has its own price). */
async function copiesAt(price: number): Promise<number> {
  let n = 0;
  for (const r of await readWal(f.nc, "default")) {
    const batch = decodeTickBatch(TRADES, r.record.payload, "wal");
    const col = batch.values[TRADES.columns.findIndex((c) => c.name === "price")] as Float64Array | undefined;
    if (col?.[0] === price) n++;
  }
  return n;
}

describe("ingest - status and resume", () => {
  it("status - the highest stored seq per producer, with the batch's records; bad requests are refused by name", async () => {
    const p = new TickPublisher(f.nc, { tenant: "default", spec: TRADES, producerId: "status-a" });
    for (let i = 0; i < 3; i++) await p.publishIpc(batchOf(1 + i));
    expect((await send(batchOf(9), "status-b", 7n)).ok).toBe(true);
    const one = await ingestStatus(f.nc, "default", "status-a");
    expect(one.producers).toEqual([{ producerId: "status-a", lastSeq: "3", lastLsn: expect.any(Number), records: 2, batchRecords: 2, missing: [], cut: [] }]);
    const all = await ingestStatus(f.nc, "default");
    expect(all.producers.map((x) => [x.producerId, x.lastSeq]).filter(([id]) => id!.startsWith("status-"))).toEqual([
      ["status-a", "3"],
      ["status-b", "7"],
    ]);
    expect(all.walLastLsn).toBeGreaterThanOrEqual(one.producers[0]!.lastLsn);
    expect((await ingestStatus(f.nc, "default", "never-sent")).producers).toEqual([]);
    // Batch 2 of a producer was in flight when the outage hit and never stored; batch 3 was: 2 is reported missing.
    expect((await send(batchOf(31), "status-gap", 1n)).ok).toBe(true);
    expect((await send(batchOf(33), "status-gap", 3n)).ok).toBe(true);
    const gap = await resumeFrom(f.nc, "default", "status-gap");
    expect(gap).toMatchObject({ nextSeq: 4n, missing: [2n], cut: [] });
    expect((await resumeFrom(f.nc, "default", "never-sent")).nextSeq).toBe(1n);
    await expect(ingestStatus(f.nc, "default", "bad id!")).rejects.toThrow(/producerId "bad id!" must be 1-64 characters/);
    await expect(ingestStatus(f.nc, "nosuch")).rejects.toBeInstanceOf(IngestStatusError);
    const raw = JSON.parse(dec.decode((await f.nc.request("px.default.ingest._status", new TextEncoder().encode("{nope"), { timeout: 10_000 })).data)) as IngestStatusReply;
    expect(raw.ok === false && raw.error).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/must be JSON \{"producerId":"p1"\} or empty/) });
  });

  it("resume - after the duplicate window and a node restart, resume() continues after the stored batch; a blind resend duplicates it (negative control)", async () => {
    const jsm = await jetstreamManager(f.nc);
    const c = (await jsm.streams.info(walStream("default"))).config;
    await jsm.streams.update(walStream("default"), { ...c, duplicate_window: 1_000_000_000 });
    try {
      // Batch 2's ack never reached the publisher (it was stored): the outage.
      expect((await send(batchOf(21), "resume-a", 1n)).ok).toBe(true);
      expect((await send(batchOf(22), "resume-a", 2n)).ok).toBe(true);
      await node.stop();
      await new Promise((r) => setTimeout(r, 1_500)); // longer than the window
      node = await nodeOn(f.server, f.nc);
      const p = await TickPublisher.resume(f.nc, { tenant: "default", spec: TRADES, producerId: "resume-a" });
      expect(p.resumed).toMatchObject({ nextSeq: 3n, missing: [], cut: [], status: { lastSeq: "2", records: 2, batchRecords: 2 } });
      const ack = await p.publishIpc(batchOf(23));
      expect(ack.appends.every((x) => !x.duplicate)).toBe(true);
      expect(await copiesAt(22)).toBe(2); // one record per bucket: stored once
      expect((await ingestStatus(f.nc, "default", "resume-a")).producers[0]!.lastSeq).toBe("3");
      // The negative control: resending batch 2 as it was, past the window, stores it again.
      const blind = await send(batchOf(22), "resume-a", 2n);
      expect(blind.ok && blind.appends.some((x) => !x.duplicate)).toBe(true);
      expect(await copiesAt(22)).toBe(4);
    } finally {
      await jsm.streams.update(walStream("default"), { ...c });
    }
  }, 120_000);
});
