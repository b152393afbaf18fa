// The frozen-owner scenario of fenced sinks across processes (used by
// test/sink/fence.cluster.int.test.ts and bench/cluster.ts): a 3-server NATS
// cluster, a shared clickhouse-server and two Proxist node processes with
// sinks; the owner of shards is SIGSTOPped mid-ingest while it holds a batch,
// its shards move, SIGCONT. Returns what ClickHouse holds against the WAL.
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { proxistCluster, waitEachShardLiveOnce, waitPersistedOn } from "./nodecluster.js";
import type { ProxistCluster } from "./nodecluster.js";
import { keepRunning } from "./pump.js";
import { WatermarkLog, exactlyOnceReport } from "./sink.js";
import type { ClickhouseFixture, ExactlyOnceReport } from "./sink.js";

const specOf = (tenant: string) =>
  parseClusterSpec({
    tenants: [{ name: tenant, tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
  });

/**
 * Runs the scenario on a fresh cluster (a tenant of its own in the shared
 * ClickHouse); returns the exactly-once report and the watermark check. Every
 * node's INSERTs stall 2 s before they are sent (faultnode's
 * sink.stalled-insert), so the frozen owner surely holds a batch it has not
 * sent when it is stopped; its permit is checked right before the request.
 */
export async function frozenOwner(chf: ClickhouseFixture, tenant: string, fenceOff: boolean): Promise<{ report: ExactlyOnceReport; watermarks: { watermarks: number; decreased: string[]; ahead: string[] }; frozen: string }> {
  const SPEC = specOf(tenant);
  const TRADES = SPEC.tenants[0]!.tables[0]!;
  const env = { PX_REPLICAS: "3", PX_FAILPOINTS: "sink.stalled-insert", PX_SINK_STALL_MS: "2000", ...(fenceOff ? { PX_FENCE_OFF: "1" } : {}) };
  const c = await proxistCluster(SPEC, env, [], { clickhouse: chf });
  const waitAllPersisted = (cl: ProxistCluster, ids: readonly string[]): Promise<void> => waitPersistedOn(cl, tenant, "trades", ids);
  try {
    await c.spawn(["n1", "n2"]);
    await waitEachShardLiveOnce(c, ["n1", "n2"], 60_000);
    const wm = new WatermarkLog(c.nc, chf.ch, tenant, TRADES);
    const walk = new RandomWalk(symbolNames(40), 5, 1.75e15);
    const pub = new TickPublisher(c.nc, { tenant, spec: TRADES, maxInFlight: 4, timeoutMs: 5_000 });
    const ingest = async (batches: number): Promise<void> => {
      for (let i = 0; i < batches; i++) await pub.publish(walk.trades(500, 200_000)).catch(() => {});
    };
    await ingest(10);
    await waitAllPersisted(c, ["n1", "n2"]);
    // Freeze a node that owns shards (rendezvous placement may give both to one node) mid-ingest.
    const [frozen, other] = (await c.liveShards(["n1"])).size > 0 ? ["n1", "n2"] : ["n2", "n1"];
    const pump = keepRunning(() => ingest(2));
    // Every flush stalls 2 s before its INSERT: 1 s into the ingest the frozen node's sinks are inside one.
    await new Promise((r) => setTimeout(r, 1_000));
    await c.signal(frozen, "SIGSTOP");
    try {
      // The control plane moves the frozen node's shards to the other; its sinks take over and persist.
      await waitEachShardLiveOnce(c, [other], 60_000);
      await new Promise((r) => setTimeout(r, 1_000));
      await pump.stop();
      await waitAllPersisted(c, [other]);
    } finally {
      // On failure too: no new step starts (not awaited: a step may hang on the frozen node until SIGCONT).
      void pump.stop();
      await c.signal(frozen, "SIGCONT");
    }
    // The frozen node resumes with whatever it held: fenced, it writes nothing; ingest goes on.
    await new Promise((r) => setTimeout(r, 3_000));
    await ingest(4);
    await waitAllPersisted(c, ["n1", "n2"]);
    const report = await exactlyOnceReport(chf.ch, c.nc, tenant, TRADES);
    wm.close();
    const watermarks = await wm.check(c.nc, tenant, "trades");
    return { report, watermarks, frozen: c.nodes.get(frozen)!.output() };
  } finally {
    await c.close();
  }
}

