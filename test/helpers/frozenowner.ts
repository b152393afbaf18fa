// The frozen-owner scenario of fenced sinks across processes (used by
// test/sink/fence.cluster.int.test.ts and bench/cluster.ts): a 3-server NATS
// cluster, a shared clickhouse-server and two Proxist node processes with
// sinks; the owner of shards is SIGSTOPped mid-ingest while it holds a batch,
// its shards move, SIGCONT; and the same with clickhouse-server SIGSTOPped
// during the owner's INSERT. Both return what ClickHouse holds against the WAL.
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

type Watermarks = { watermarks: number; decreased: string[]; ahead: string[] };

/** What a fault step gets: the running cluster, an ingest pump, the node that owns shards and the other one. */
interface Scene {
  readonly c: ProxistCluster;
  readonly owner: string;
  readonly other: string;
  ingest(batches: number, rows?: number): Promise<void>;
}

/**
 * The part both scenarios share: a fresh cluster (a tenant of its own in the
 * shared ClickHouse), two nodes with sinks, 10 batches persisted; then
 * `fault`; then 4 more batches persisted on both nodes and the exactly-once
 * report and watermark check. `logs` are the nodes' outputs at the end.
 */
async function fencedScene<T>(chf: ClickhouseFixture, tenant: string, env: Record<string, string>, fault: (s: Scene) => Promise<T>): Promise<{ report: ExactlyOnceReport; watermarks: Watermarks; logs: Map<string, string>; fault: T }> {
  const SPEC = specOf(tenant);
  const TRADES = SPEC.tenants[0]!.tables[0]!;
  const c = await proxistCluster(SPEC, { PX_REPLICAS: "3", ...env }, [], { clickhouse: chf });
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
    // Rendezvous placement may give both shards to one node: the owner is one that has any.
    const owner = (await c.liveShards(["n1"])).size > 0 ? "n1" : "n2";
    const result = await fault({ c, owner, other: owner === "n1" ? "n2" : "n1", ingest });
    await ingest(4);
    await waitPersistedOn(c, tenant, "trades", ["n1", "n2"]);
    const report = await exactlyOnceReport(chf.ch, c.nc, tenant, TRADES);
    wm.close();
    const watermarks = await wm.check(c.nc, tenant, "trades");
    return { report, watermarks, logs: new Map([...c.nodes].map(([id, p]) => [id, p.output()])), fault: result };
  } finally {
    await c.close();
  }
}

/**
 * Every node's INSERTs stall 2 s before they are sent (faultnode's
 * sink.stalled-insert), so the frozen owner surely holds a batch it has not
 * sent when it is stopped; its permit is checked right before the request.
 * Returns the exactly-once report, the watermark check and the frozen node's log.
 */
export async function frozenOwner(chf: ClickhouseFixture, tenant: string, fenceOff: boolean): Promise<{ report: ExactlyOnceReport; watermarks: Watermarks; frozen: string }> {
  const env = { PX_FAILPOINTS: "sink.stalled-insert", PX_SINK_STALL_MS: "2000", ...(fenceOff ? { PX_FENCE_OFF: "1" } : {}) };
  const { report, watermarks, logs, fault: frozen } = await fencedScene(chf, tenant, env, async ({ c, owner, other, ingest }) => {
    const pump = keepRunning(() => ingest(2));
    // Every flush stalls 2 s before its INSERT: 1 s into the ingest the frozen node's sinks are inside one.
    await sleep(1_000);
    await c.signal(owner, "SIGSTOP");
    try {
      // The control plane moves the frozen node's shards to the other; its sinks take over and persist.
      await waitEachShardLiveOnce(c, [other], 60_000);
      await sleep(1_000);
      await pump.stop();
      await waitPersistedOn(c, tenant, "trades", [other]);
    } finally {
      // On failure too: no new step starts (not awaited: a step may hang on the frozen node until SIGCONT).
      void pump.stop();
      await c.signal(owner, "SIGCONT");
    }
    // The frozen node resumes with whatever it held: fenced, it writes nothing; ingest goes on.
    await sleep(3_000);
    return owner;
  });
  return { report, watermarks, frozen: logs.get(frozen)! };
}

/**
 * clickhouse-server SIGSTOPped while an owner's INSERT is on its way:
 * ClickHouse is frozen (and thawed and frozen again) until it catches one of
 * the owner's INSERTs mid-body (`unsent`: bytes of it the kernel holds unsent,
 * ss's Send-Q), then the owner is frozen too. Its shards move to the other
 * node, whose sinks meet a frozen ClickHouse. ClickHouse resumes; 3 s later,
 * whatever the new owner does meanwhile, the old owner resumes. `inFlight`
 * says whether system.processes showed one of the owner's INSERTs in those
 * 3 s (a diagnostic: whether ClickHouse had begun the INSERT before the freeze
 * depends on how many of its bytes arrived, which the test does not control).
 * Every INSERT is deaf to the sink's abort (faultnode's sink.stalled-insert
 * without a stall): the old owner's request goes on as a request whose bytes
 * already left would.
 */
export async function frozenClickhouse(chf: ClickhouseFixture, tenant: string): Promise<{ report: ExactlyOnceReport; watermarks: Watermarks; unsent: number; inFlight: string; log: string }> {
  const env = { PX_FAILPOINTS: "sink.stalled-insert", PX_SINK_STALL_MS: "0" };
  const { report, watermarks, logs, fault } = await fencedScene(chf, tenant, env, async ({ c, owner, other, ingest }) => {
    let chStopped = false;
    let ownerStopped = false;
    try {
      const buckets = [...(await c.liveShards([owner])).values()].map((v) => v[0]![1].bucket);
      // Big batches: INSERT bodies of megabytes, more than the sockets take while ClickHouse does not read.
      const pump = keepRunning(() => ingest(1, 50_000));
      let unsent = 0;
      try {
        await sleep(1_000);
        const pid = c.nodes.get(owner)!.child.pid!;
        const until = Date.now() + 30_000;
        for (;;) {
          await chf.server.kill("SIGSTOP");
          chStopped = true;
          const tryUntil = Date.now() + 1_000;
          while (unsentTo(pid, chf.server.httpPort) === 0 && Date.now() < tryUntil) await sleep(20);
          unsent = unsentTo(pid, chf.server.httpPort);
          if (unsent > 0 || Date.now() > until) break;
          await chf.server.kill("SIGCONT");
          chStopped = false;
          await sleep(100 + Math.random() * 200);
        }
        await c.signal(owner, "SIGSTOP");
        ownerStopped = true;
      } finally {
        await pump.stop();
      }
      // Past the lease TTL: the control plane moves the frozen node's shards; the other node's sinks find ClickHouse frozen.
      await sleep(4_000);
      await chf.server.kill("SIGCONT");
      chStopped = false;
      const inFlight = await watchInserts(chf, tenant, buckets, 3_000);
      await c.signal(owner, "SIGCONT");
      ownerStopped = false;
      await waitEachShardLiveOnce(c, [other], 60_000).catch(() => undefined);
      return { unsent, inFlight };
    } finally {
      if (chStopped) await chf.server.kill("SIGCONT");
      if (ownerStopped) await c.signal(owner, "SIGCONT");
    }
  });
  return { report, watermarks, ...fault, log: [...logs].map(([id, out]) => `--- ${id}\n${out}`).join("\n") };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Watches system.processes for `ms` and returns the first query_id of a sink INSERT of these buckets it saw ("" if none). */
async function watchInserts(chf: ClickhouseFixture, tenant: string, buckets: readonly number[], ms: number): Promise<string> {
  const prefixes = buckets.map((b) => `pxsink-${tenant}-trades-${b}-`);
  const where = prefixes.map((p) => `substring(query_id, 1, ${p.length}) = '${p}'`).join(" OR ");
  const deadline = Date.now() + ms;
  let seen = "";
  while (Date.now() < deadline) {
    if (seen === "") seen = (await chf.ch.query(`SELECT query_id FROM system.processes WHERE (${where}) AND query LIKE 'INSERT%' LIMIT 1 FORMAT TabSeparated`).catch(() => "")).trim();
    await sleep(100);
  }
  return seen;
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
