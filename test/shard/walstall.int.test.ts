// A shard whose WAL consumer stops delivering while its subject grows (seen
// once in the chaos run, seed 19: the shard stayed live at LSN 3085 of 7867)
// reopens the consumer and catches up, against a real nats-server. The stall
// is made by the test: the first consumer's messages stop reaching the shard
// after a few records (the library's iterator stays open, as it did there).
// Negative control: with the stall check off the shard stays behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JsMsg } from "@nats-io/jetstream";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { natsFixture } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { ensureWalStream } from "../../src/wal/index.js";
import { encodeWalRecord } from "../../protocols/codec.js";
import { walSubject } from "../../protocols/subjects.js";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { ShardRuntime } from "../../src/node/shard/runtime.js";
import type { SnapshotStore } from "../../src/snapshot/store.js";
import { genBatches } from "../../bench/gen.js";

const TENANT = "stall";
const spec = parseTableSpec({ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] });
const RECORDS = 60;
const FLOWING = 10;

let f: NatsFixture;

beforeAll(async () => {
  f = await natsFixture();
  const jsm = await jetstreamManager(f.nc);
  await ensureWalStream(jsm, TENANT);
  const js = jetstream(f.nc);
  let i = 0;
  for (const b of genBatches("trades", { symbols: 20, ticks: RECORDS * 2 * 50, batchRows: 50, seed: 7 })) {
    const bucket = i++ % 2;
    const record = encodeWalRecord({ tenant: TENANT, table: "trades", schemaVersion: 1, producerId: "", producerSeq: 0n, bucket, rows: b.rows, minTsMicros: 0n, maxTsMicros: 0n, payload: tickBatchToIpc(spec, b) });
    await js.publish(walSubject(TENANT, "trades", bucket), record);
  }
});
afterAll(async () => {
  await f?.close();
});

/** Messages that stop reaching the shard after `n` (the iterator stays open and ends only when the consumer is stopped). */
function freezeAfter(n: number): (messages: AsyncIterable<JsMsg>) => AsyncIterable<JsMsg> {
  let consumers = 0;
  return (messages) => {
    // Only the first consumer stalls: the reopened one flows.
    if (++consumers > 1) return messages;
    return (async function* () {
      let seen = 0;
      for await (const m of messages) if (++seen <= n) yield m;
    })();
  };
}

async function runShard(bucket: number, walStallMs: number): Promise<{ rt: ShardRuntime; lines: string[] }> {
  const jsm = await jetstreamManager(f.nc);
  const lines: string[] = [];
  const snapshots = { loadLatest: async () => undefined, write: async () => ({ lsn: 0, rows: 0, bytes: 0 }) } as unknown as SnapshotStore;
  const rt = new ShardRuntime({
    shard: { tenant: TENANT, table: "trades", bucket },
    spec,
    js: jetstream(f.nc),
    jsm,
    snapshots,
    log: (l) => lines.push(l),
    walStallMs,
    unsafeWrapWalMessages: freezeAfter(FLOWING),
  }).start();
  return { rt, lines };
}

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return what();
}

describe("shard - WAL consumer stall", () => {
  it("stall - the consumer stops delivering with records left: the shard reopens it and applies every record of its subject", async () => {
    const { rt, lines } = await runShard(0, 400);
    try {
      const last = await rt.lastLsn();
      expect(await until(() => rt.stats.appliedLsn === last, 10_000), `applied ${rt.stats.appliedLsn} of ${last}; log: ${lines.join(" | ")}`).toBe(true);
      expect(rt.stats.records).toBe(RECORDS);
      expect(lines.join("\n")).toMatch(/WAL consumer stalled: nothing delivered for \d+ ms after LSN \d+ while the subject holds up to LSN \d+; reopening it/);
      expect(rt.state).toBe("running.live");
    } finally {
      rt.stop();
    }
  });

  it("stall - negative control: with the stall check off (walStallMs 0) the same shard stays behind", async () => {
    const { rt, lines } = await runShard(1, 0);
    try {
      const last = await rt.lastLsn();
      await until(() => rt.stats.records >= FLOWING, 5_000);
      // Four times the stall time of the test above: that shard had long reopened its consumer by now.
      await new Promise((r) => setTimeout(r, 1_600));
      expect(rt.stats.records).toBe(FLOWING);
      expect(rt.stats.appliedLsn).toBeLessThan(last);
      expect(lines.join("\n")).not.toMatch(/stalled/);
    } finally {
      rt.stop();
    }
  });
});
