// The frozen-owner scenario of fenced sinks across processes (used by
// test/sink/fence.cluster.int.test.ts and bench/cluster.ts): a 3-server NATS
// cluster, a shared clickhouse-server and two Proxist node processes with
// sinks; the owner of shards is SIGSTOPped mid-ingest while it holds a batch,
// its shards move, SIGCONT; and the same with clickhouse-server SIGSTOPped
// during the owner's INSERT. Returns what ClickHouse holds against the WAL.
import { execFileSync } from "node:child_process";
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

/**
 * The same cluster with clickhouse-server SIGSTOPped while an owner's INSERT
 * is on its way: ClickHouse is frozen (and thawed and frozen again) until it
 * catches one of the owner's INSERTs mid-body (`unsent`: bytes of it the
 * kernel holds unsent, ss's Send-Q), then the owner is frozen too. Its shards
 * move to the other node, whose sinks meet a frozen ClickHouse. ClickHouse
 * resumes (`caught`: the owner's INSERT if system.processes shows it while its
 * sender is still stopped); a few seconds later, whatever the new owner does
 * meanwhile, the old owner resumes. Every INSERT is deaf to the sink's abort
 * (faultnode's sink.stalled-insert without a stall): the old owner's request
 * goes on as a request whose bytes already left would.
 */
export async function frozenClickhouse(chf: ClickhouseFixture, tenant: string): Promise<{ report: ExactlyOnceReport; watermarks: { watermarks: number; decreased: string[]; ahead: string[] }; unsent: number; caught: string; log: string }> {
  const SPEC = specOf(tenant);
  const TRADES = SPEC.tenants[0]!.tables[0]!;
  const env = { PX_REPLICAS: "3", PX_FAILPOINTS: "sink.stalled-insert", PX_SINK_STALL_MS: "0" };
  const c = await proxistCluster(SPEC, env, [], { clickhouse: chf });
  let chStopped = false;
  let frozen: string | undefined;
  try {
    await c.spawn(["n1", "n2"]);
    await waitEachShardLiveOnce(c, ["n1", "n2"], 60_000);
    const wm = new WatermarkLog(c.nc, chf.ch, tenant, TRADES);
    const walk = new RandomWalk(symbolNames(40), 5, 1.75e15);
    const pub = new TickPublisher(c.nc, { tenant, spec: TRADES, maxInFlight: 4, timeoutMs: 5_000 });
    const ingest = async (batches: number, rows = 500): Promise<void> => {
      for (let i = 0; i < batches; i++) await pub.publish(walk.trades(rows, 200_000)).catch(() => {});
    };
    await ingest(10);
    await waitPersistedOn(c, tenant, "trades", ["n1", "n2"]);
    const owner = (await c.liveShards(["n1"])).size > 0 ? "n1" : "n2";
    const other = owner === "n1" ? "n2" : "n1";
    const buckets = [...(await c.liveShards([owner])).values()].map((v) => v[0]![1].bucket);
    // Big batches: INSERT bodies of megabytes, more than the sockets take while ClickHouse does not read.
    const pump = keepRunning(() => ingest(1, 50_000));
    let unsent = 0;
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      const pid = c.nodes.get(owner)!.child.pid!;
      const until = Date.now() + 30_000;
      for (;;) {
        await chf.server.kill("SIGSTOP");
        chStopped = true;
        const tryUntil = Date.now() + 1_000;
        while (unsentTo(pid, chf.server.httpPort) === 0 && Date.now() < tryUntil) await new Promise((r) => setTimeout(r, 20));
        unsent = unsentTo(pid, chf.server.httpPort);
        if (unsent > 0 || Date.now() > until) break;
        await chf.server.kill("SIGCONT");
        chStopped = false;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
      await c.signal(owner, "SIGSTOP");
      frozen = owner;
    } finally {
      await pump.stop();
    }
    // Past the lease TTL: the control plane moves the frozen node's shards; the other node's sinks find ClickHouse frozen.
    await new Promise((r) => setTimeout(r, 4_000));
    await chf.server.kill("SIGCONT");
    chStopped = false;
    const prefixes = buckets.map((b) => `pxsink-${tenant}-trades-${b}-`);
    const where = prefixes.map((p) => `substring(query_id, 1, ${p.length}) = '${p}'`).join(" OR ");
    const deadline = Date.now() + 3_000;
    let caught = "";
    while (caught === "" && Date.now() < deadline) {
      caught = (await chf.ch.query(`SELECT query_id FROM system.processes WHERE (${where}) AND query LIKE 'INSERT%' LIMIT 1 FORMAT TabSeparated`).catch(() => "")).trim();
      if (caught === "") await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())));
    await c.signal(owner, "SIGCONT");
    frozen = undefined;
    await waitEachShardLiveOnce(c, [other], 60_000).catch(() => undefined);
    await ingest(4);
    await waitPersistedOn(c, tenant, "trades", ["n1", "n2"]);
    const report = await exactlyOnceReport(chf.ch, c.nc, tenant, TRADES);
    wm.close();
    const watermarks = await wm.check(c.nc, tenant, "trades");
    return { report, watermarks, unsent, caught, log: [...c.nodes].map(([id, p]) => `--- ${id}\n${p.output()}`).join("\n") };
  } finally {
    if (chStopped) await chf.server.kill("SIGCONT");
    if (frozen !== undefined) await c.signal(frozen, "SIGCONT");
    await c.close();
  }
}

/** Bytes the kernel holds unsent on the TCP connections of process `pid` to 127.0.0.1:`port` (ss's Send-Q). */
function unsentTo(pid: number, port: number): number {
  const out = execFileSync("ss", ["-tnpH", "state", "established", "dst", `127.0.0.1:${port}`], { encoding: "utf8" });
  let n = 0;
  for (const line of out.split("\n")) {
    // Recv-Q Send-Q local peer users:(("node",pid=N,fd=M)) (no State column under a state filter)
    const m = /^\s*(\d+)\s+(\d+)\s/.exec(line);
    if (m !== null && line.includes(`pid=${pid},`)) n += Number(m[2]);
  }
  return n;
}
