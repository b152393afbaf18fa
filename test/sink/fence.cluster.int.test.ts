// Fenced sinks across processes: a 3-server NATS cluster, a real
// clickhouse-server and two Proxist node processes in `--shards assigned`
// mode, both with sinks. The owner of shards is SIGSTOPped while ingest goes
// on (so it holds pending batches); the control plane moves its shards to the
// other node, whose sinks persist; SIGCONT: the old owner's permits lapsed and
// px_assign revoked them, so it writes nothing. ClickHouse ends with every WAL
// row exactly once by (_lsn, _row) and P never went backwards.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proxistCluster, waitEachShardLiveOnce } from "../helpers/nodecluster.js";
import type { ProxistCluster } from "../helpers/nodecluster.js";
import { nodeShards } from "../helpers/replay.js";
import { WatermarkLog, clickhouseFixture, exactlyOnceReport, walRows } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";

const TENANT = "fcl";
const SPEC = parseClusterSpec({
  tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
});
const TRADES = SPEC.tenants[0]!.tables[0]!;

let chf: ClickhouseFixture;
let c: ProxistCluster | undefined;

beforeAll(async () => {
  chf = await clickhouseFixture();
});
afterAll(async () => {
  await c?.close();
  await chf?.close();
});

/** Waits until, on the nodes given, the sink of every bucket persisted the bucket's last WAL LSN. */
async function waitAllPersisted(cl: ProxistCluster, ids: readonly string[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let view = "";
  while (Date.now() < deadline) {
    const wal = await walRows(cl.nc, TENANT, "trades");
    const last = new Map<number, number>();
    for (const [lsn, r] of wal) last.set(r.bucket, Math.max(last.get(r.bucket) ?? 0, lsn));
    const persisted = new Map<number, number>();
    for (const id of ids) {
      const port = cl.nodes.get(id)?.httpPort;
      if (port === undefined) continue;
      const shards = await nodeShards(port).catch(() => new Map());
      for (const s of shards.values()) {
        const v = s as unknown as { tenant: string; bucket: number; sink: { persistedLsn: number; state: string } | null };
        if (v.tenant === TENANT && v.sink !== null && v.sink.state !== "fenced") persisted.set(v.bucket, Math.max(persisted.get(v.bucket) ?? 0, v.sink.persistedLsn));
      }
    }
    view = JSON.stringify({ last: [...last], persisted: [...persisted] });
    if ([...last].every(([b, l]) => (persisted.get(b) ?? 0) >= l)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not persisted in ${timeoutMs} ms: ${view}`);
}

/**
 * Runs the scenario on a fresh cluster; returns the exactly-once report and the watermark check.
 * (Its negative control is the in-process one in fence.int.test.ts: across processes, whether the
 * frozen owner still holds a batch when it resumes is up to timing, so PX_FENCE_OFF=1 here does
 * not always produce duplicates and is not asserted.)
 */
async function frozenOwner() {
  c = await proxistCluster(SPEC, { PX_REPLICAS: "3" }, ["--clickhouse", chf.server.httpUrl]);
  try {
    await c.spawn(["n1", "n2"]);
    await waitEachShardLiveOnce(c, ["n1", "n2"], 60_000);
    const wm = new WatermarkLog(c.nc, chf.ch, TENANT, TRADES);
    const walk = new RandomWalk(symbolNames(40), 5, 1.75e15);
    const pub = new TickPublisher(c.nc, { tenant: TENANT, spec: TRADES, maxInFlight: 4, timeoutMs: 5_000 });
    const ingest = async (batches: number): Promise<void> => {
      for (let i = 0; i < batches; i++) await pub.publish(walk.trades(500, 200_000)).catch(() => {});
    };
    await ingest(10);
    await waitAllPersisted(c, ["n1", "n2"]);
    // n1 owns at least one shard (placement spreads 2 shards over 2 nodes); freeze it mid-ingest.
    expect((await c.liveShards(["n1"])).size).toBeGreaterThan(0);
    let go = true;
    const pump = (async () => {
      while (go) await ingest(2);
    })();
    await new Promise((r) => setTimeout(r, 300));
    await c.signal("n1", "SIGSTOP");
    try {
      // The control plane moves n1's shards to n2; n2's sinks take over and persist.
      await waitEachShardLiveOnce(c, ["n2"], 60_000);
      await new Promise((r) => setTimeout(r, 1_000));
      go = false;
      await pump;
      await waitAllPersisted(c, ["n2"]);
    } finally {
      go = false;
      await c.signal("n1", "SIGCONT");
    }
    // n1 resumes with whatever it held: fenced, it writes nothing; ingest goes on.
    await new Promise((r) => setTimeout(r, 3_000));
    await ingest(4);
    await waitAllPersisted(c, ["n1", "n2"]);
    const report = await exactlyOnceReport(chf.ch, c.nc, TENANT, TRADES);
    wm.close();
    const watermarks = await wm.check(c.nc, TENANT, "trades");
    return { report, watermarks, n1: c.nodes.get("n1")!.output() };
  } finally {
    await c.close();
    c = undefined;
  }
}

describe("fenced sinks - node processes", () => {
  it("fence - the owner SIGSTOPped with pending batches, its shards move, SIGCONT: 0 duplicates in ClickHouse, P never decreases", async () => {
    const { report, watermarks, n1 } = await frozenOwner();
    expect(report).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    expect(watermarks.decreased).toEqual([]);
    expect(watermarks.ahead).toEqual([]);
    // The resumed owner saw it had lost its lease (lapsed permit or px_assign's revocation).
    expect(n1).toMatch(/fenced|lease revision \d+ (expired|revoked)/);
  }, 300_000);
});
