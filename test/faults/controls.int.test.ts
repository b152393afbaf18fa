// Negative controls of the chaos checker (issue 19): each breaks one guarantee
// on purpose and asserts the checker (checker.ts) reports exactly that
// violation, so a clean chaos run means something.
//   1. WAL dedup off: the WAL stream's duplicate window shrunk to 1 ms, then a
//      publisher resends an acknowledged batch with the same producer id and
//      seq (a retry) -> the checker finds duplicates (D) in ClickHouse and in a
//      node's answer.
//   2. Sink landed-check off (PX_SINK_UNSAFE_SKIP_LANDED_CHECK=1, the switch
//      test/sink uses) and a node SIGKILLed right after an INSERT committed,
//      before its watermark (faultnode's sink.after-insert): its successor
//      writes those rows again -> D in ClickHouse.
//   3. An acknowledged batch dropped from ClickHouse (ALTER TABLE … DELETE of
//      its rows) -> the checker finds it lost (L).
// One harness (2 nodes, both with the landed check off), a tenant per control.
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createToken } from "../../src/auth/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { walStream } from "../../protocols/subjects.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { WatermarkLog } from "../helpers/sink.js";
import { clickhouseRows, emptyFindings, summarize } from "./checker.js";
import type { Findings } from "./checker.js";
import { Harness } from "./harness.js";
import { readBack } from "./run.js";
import { Ledger, Producer, ingest } from "./workload.js";

const TENANTS = ["ncdedup", "nclanded", "ncdrop"] as const;
const SPEC = parseClusterSpec({
  tenants: TENANTS.map((name) => ({ name, tables: [{ name: "trades", shards: 2, retention: { hotSeconds: 1 }, columns: [{ name: "rid", type: "float64" }, { name: "pk", type: "float64" }] }] })),
});
const tableOf = (tenant: string): TableSpec => SPEC.tenants.find((t) => t.name === tenant)!.tables[0]!;
const log = (l: string): void => console.log(l);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let h: Harness;

beforeAll(async () => {
  h = await Harness.start({
    spec: SPEC,
    nodeIds: ["n1", "n2"],
    env: { PX_SINK_UNSAFE_SKIP_LANDED_CHECK: "1" },
    log,
  });
  await h.waitSettled(90_000);
}, 180_000);

afterAll(async () => {
  await h?.close();
});

/** Ingests into `tenant` for `ms` (2 producers), returns the ledger. */
async function ingestFor(tenant: string, ms: number, ledger = new Ledger()): Promise<Ledger> {
  const run = ingest(h.nc, tenant, tableOf(tenant), ledger, { producers: 2, symbolsPerProducer: 4, rowsPerBatch: 100, pauseMs: 20 }, `${tenant}-${Date.now()}`);
  await sleep(ms);
  await run.stop();
  return ledger;
}

/** The checker's findings for `tenant` after the sinks caught up (or `persistTimeoutMs` passed). */
async function check(tenant: string, ledger: Ledger, wm: WatermarkLog, persistTimeoutMs = 60_000): Promise<Findings> {
  const token = await createToken(h.nc, { tenant, role: "reader", replicas: 3 });
  const f = emptyFindings();
  await readBack(h, tenant, "trades", ledger, token, wm, f, log, persistTimeoutMs);
  log(`control ${tenant}: ${ledger.acks.length} batches acked; ${summarize(f)}`);
  return f;
}

describe("faults - negative controls: the checker finds each violation", () => {
  it("control - WAL dedup off (duplicate window 1 ms) and a retried batch: duplicates found in ClickHouse and in the nodes' answers", async () => {
    const tenant = "ncdedup";
    const wm = new WatermarkLog(h.nc, h.clickhouse.ch, tenant, tableOf(tenant));
    const ledger = await ingestFor(tenant, 3_000);
    expect(ledger.acks.length).toBeGreaterThan(5);
    const jsm = await jetstreamManager(h.nc);
    const info = await jsm.streams.info(walStream(tenant));
    await jsm.streams.update(walStream(tenant), { ...info.config, duplicate_window: 1_000_000 });
    await sleep(50);
    // The retry: the same producer id and seq, the same rows (rebuilt from the ledger's producer numbering).
    const victim = ledger.acks[Math.floor(ledger.acks.length / 2)]!;
    const prod = new Producer(Number(/-p(\d+)$/.exec(victim.producerId)![1]), 4);
    const first = victim.rids[0]! % 1e9;
    for (let i = 0; i < first; i++) prod.batch(tableOf(tenant), 1, new Ledger()); // advance to the victim's first row
    const { batch } = prod.batch(tableOf(tenant), victim.rids.length, new Ledger());
    const retry = new TickPublisher(h.nc, { tenant, spec: tableOf(tenant), producerId: victim.producerId, firstSeq: BigInt(victim.seq), maxInFlight: 1 });
    const ack = await retry.publish(batch);
    expect(ack.appends.some((a) => a.duplicate), "the WAL still deduplicated the retry").toBe(false);
    const f = await check(tenant, ledger, wm);
    expect(f.duplicated.filter((d) => d.startsWith("ClickHouse")).length).toBe(victim.rids.length);
    expect(f.duplicated.some((d) => d.startsWith("node "))).toBe(true);
    expect(f.lost).toEqual([]);
  }, 240_000);

  it("control - sink landed-check off and a node killed after an INSERT, before its watermark: duplicates found in ClickHouse", async () => {
    const tenant = "nclanded";
    const wm = new WatermarkLog(h.nc, h.clickhouse.ch, tenant, tableOf(tenant));
    // The owner of the tenant's first shard again, armed: it SIGKILLs itself right after its 3rd INSERT committed.
    const owner = (await h.liveShards()).get(`${tenant}.trades.0`)![0]!;
    await h.nodes.get(owner)!.kill("SIGKILL");
    h.nodes.delete(owner);
    const armed = await h.spawn(owner, { PX_FAILPOINTS: "sink.after-insert", PX_SINK_FAILPOINTS_AFTER: "3" });
    await h.waitSettled(90_000);
    const ledger = new Ledger();
    const run = ingest(h.nc, tenant, tableOf(tenant), ledger, { producers: 2, symbolsPerProducer: 4, rowsPerBatch: 100, pauseMs: 20 }, `${tenant}-${Date.now()}`);
    const died = await Promise.race([armed.exited.then(() => true), sleep(60_000).then(() => false)]);
    expect(died, `the armed node ${owner} did not reach its failpoint`).toBe(true);
    h.nodes.delete(owner);
    await h.spawnRetrying(owner); // unarmed; the landed check stays off
    await sleep(2_000);
    await run.stop();
    const f = await check(tenant, ledger, wm);
    expect(f.duplicated.filter((d) => d.startsWith("ClickHouse")).length).toBeGreaterThan(0);
    expect(f.lost).toEqual([]);
  }, 240_000);

  it("control - an acknowledged batch deleted from ClickHouse: found lost", async () => {
    const tenant = "ncdrop";
    const wm = new WatermarkLog(h.nc, h.clickhouse.ch, tenant, tableOf(tenant));
    const ledger = await ingestFor(tenant, 3_000);
    // Persisted first: the sink must not write the rows again after the delete.
    const clean = await check(tenant, ledger, new WatermarkLog(h.nc, h.clickhouse.ch, tenant, tableOf(tenant)));
    expect(clean.lost).toEqual([]);
    const victim = ledger.acks[1]!;
    const url = h.clickhouse.server.httpUrl;
    const table = qualifiedTable(tenant, "trades");
    await clickhouseRows(url, `ALTER TABLE ${table} DELETE WHERE rid IN (${victim.rids.join(",")})`);
    // Mutations run in the background: wait until the rows are gone.
    for (let i = 0; i < 100 && Number((await clickhouseRows(url, `SELECT count() FROM ${table} WHERE rid IN (${victim.rids.join(",")})`))[0]![0]) > 0; i++) await sleep(200);
    const f = await check(tenant, ledger, wm, 5_000);
    expect(f.lost.filter((l) => l.startsWith("ClickHouse")).length).toBe(victim.rids.length);
    expect(f.duplicated).toEqual([]);
  }, 240_000);
});
