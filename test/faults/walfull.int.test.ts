// The nats-disk-full fault's store-limit mode (walfull.ts) against a real
// nats-server: the WAL refuses appends by name while the fault holds, keeps
// every record, and takes appends again after release() with its first
// sequence (the anchor) unmoved. Negative control: a limit below what the WAL
// holds drops its oldest records (discard old), and fill() says so instead of going on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import { natsFixture } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { walStream, walSubject } from "../../protocols/subjects.js";
import { ensureWalStream } from "../../src/wal/streams.js";
import { walFullCause } from "../../src/wal/gap.js";
import { WalFull, WalLimitDroppedError } from "./walfull.js";

let f: NatsFixture;
let jsm: JetStreamManager;

beforeAll(async () => {
  f = await natsFixture();
  jsm = await jetstreamManager(f.nc);
});
afterAll(async () => {
  await f?.close();
});

async function appendOne(tenant: string, i: number): Promise<string | undefined> {
  try {
    await jsm.jetstream().publish(walSubject(tenant, "trades", i % 3), new Uint8Array(1_000));
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

describe("faults - nats-disk-full as a full WAL store", () => {
  it("walfull - appends refused by name while full, none of the 200 records lost, first sequence unmoved, appends taken after release", async () => {
    const tenant = "wf";
    await ensureWalStream(jsm, tenant);
    for (let i = 0; i < 200; i++) expect(await appendOne(tenant, i)).toBeUndefined();
    const before = (await jsm.streams.info(walStream(tenant))).state;
    const full = await WalFull.fill(jsm, tenant);
    expect(full.fillerCount).toBeGreaterThan(0);
    const refusal = await appendOne(tenant, 200);
    expect(refusal).toBeDefined();
    expect(walFullCause(refusal!)).toBe("the WAL stream reached its byte limit (max_bytes, discard new)");
    await full.release();
    const after = (await jsm.streams.info(walStream(tenant))).state;
    expect(after.first_seq).toBe(before.first_seq);
    expect(after.messages).toBe(before.messages);
    expect((await jsm.streams.info(walStream(tenant))).config.max_bytes).toBe(-1);
    expect(await appendOne(tenant, 201)).toBeUndefined();
  });

  it("walfull - negative control: a limit below what the WAL holds drops its oldest records (the anchor first) and fill() throws WalLimitDroppedError", async () => {
    const tenant = "wfneg";
    await ensureWalStream(jsm, tenant);
    // nats-server 2.10 no longer drops records of a discard-new stream when its limit is lowered below them
    // (nats-server #4775; 2.9.10 did): the control switches this WAL to discard old, so the lowered limit drops.
    const cfg = (await jsm.streams.info(walStream(tenant))).config;
    await jsm.streams.update(walStream(tenant), { ...cfg, discard: DiscardPolicy.Old });
    for (let i = 0; i < 200; i++) expect(await appendOne(tenant, i)).toBeUndefined();
    const held = (await jsm.streams.info(walStream(tenant))).state.bytes;
    await expect(WalFull.fill(jsm, tenant, -Math.floor(held / 2))).rejects.toBeInstanceOf(WalLimitDroppedError);
    expect((await jsm.streams.info(walStream(tenant))).state.first_seq).toBeGreaterThan(1);
  });
});
