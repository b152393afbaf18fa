// Lag remediation against real servers: one node with ClickHouse, two tenants
// ingesting all along while clickhouse-server is slowed by SIGSTOP bursts. The
// table whose lagSlo is on (1 s, dwell 1 s) steps up through bigger batches,
// hold eviction, the move (skipped: the node runs standalone) and the alert,
// each in `pxctl events` and in `pxctl status`, and steps back to none once
// ClickHouse runs freely again. Every acked tick ends up in ClickHouse.
// Negative control: the other tenant's table has lagSlo.enabled false: its lag
// goes as high, and no step or event is ever taken for it. And a ClickHouse
// outage (the server stopped under a node process until the sink is degraded
// and the move step was skipped, at most 20 s): the sink shows
// degraded (in /v1/shards and pxctl status), the process stays up, ingest goes
// on, the move step is skipped because the sink is degraded, and once
// ClickHouse is back every acked tick lands.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { NodeProcess } from "../helpers/nodeproc.js";
import { MetadataStore } from "../../src/control/index.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, shardViews, waitPersisted } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { runPxctl } from "../../src/cli/commands.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { readEvents } from "../../src/wal/index.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ProxistNode } from "../../src/node/node.js";

const log: string[] = [];
let f: NatsFixture;
let chf: ClickhouseFixture;
const nodes: ProxistNode[] = [];
const procs: NodeProcess[] = [];

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
});
afterEach(async () => {
  if (chf.server.running) process.kill(chf.server.pid, "SIGCONT");
  else await chf.server.restart();
  for (const p of procs.splice(0)) await p.kill();
  for (const n of nodes.splice(0)) await n.stop();
});
afterAll(async () => {
  await f?.close();
  await chf?.close();
});

const table = (enabled: boolean, dwellSeconds = 1) => ({
  name: "trades",
  shards: 1,
  lagSlo: { seconds: 1, records: 1_000_000, dwellSeconds, enabled },
  columns: [
    { name: "price", type: "float64" },
    { name: "size", type: "float64" },
  ],
});

const chCount = async (tenant: string): Promise<number> => Number((await chf.ch.query(`SELECT count() FROM ${qualifiedTable(tenant, "trades")}`)).trim());

interface Seen {
  maxLagMs: number;
  maxStep: number;
  steps: number[];
  sinkStates: Set<string>;
}

describe("ops - lag remediation", () => {
  it("remediation - SIGSTOP bursts drive the workflow up through its steps and back down; 0 acked ticks lost; a table with it switched off gets no step", async () => {
    const spec = parseClusterSpec({ tenants: [{ name: "lagon", tables: [table(true)] }, { name: "lagoff", tables: [table(false)] }] });
    const node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, snapshotIntervalMs: 0, compaction: { intervalMs: 0 }, lagRemediation: { intervalMs: 200 }, log: (l) => log.push(l) }, spec);
    nodes.push(node);
    const acked = new Map<string, number>([
      ["lagon", 0],
      ["lagoff", 0],
    ]);
    let ingesting = true;
    const ingest = async (tenant: string): Promise<void> => {
      const walk = new RandomWalk(symbolNames(20), tenant.length, 1.75e15);
      const pub = new TickPublisher(f.nc, { tenant, spec: spec.tenants.find((t) => t.name === tenant)!.tables[0]!, maxInFlight: 4 });
      while (ingesting) {
        await pub.publish(walk.trades(200, 50_000));
        acked.set(tenant, acked.get(tenant)! + 200);
        await sleep(50);
      }
    };
    const seen = new Map<string, Seen>([
      ["lagon", { maxLagMs: 0, maxStep: 0, steps: [], sinkStates: new Set() }],
      ["lagoff", { maxLagMs: 0, maxStep: 0, steps: [], sinkStates: new Set() }],
    ]);
    let watching = true;
    const watch = async (): Promise<void> => {
      while (watching) {
        for (const [tenant, s] of seen) {
          const v = (await shardViews(node.httpPort, tenant).catch(() => []))[0] as ({ lagStep?: number } & Awaited<ReturnType<typeof shardViews>>[number]) | undefined;
          if (v === undefined) continue;
          s.maxLagMs = Math.max(s.maxLagMs, v.lagMs);
          const step = v.lagStep ?? 0;
          s.maxStep = Math.max(s.maxStep, step);
          if (s.steps.at(-1) !== step) s.steps.push(step);
          s.sinkStates.add(v.sinkState);
        }
        await sleep(100);
      }
    };
    const ingests = [ingest("lagon"), ingest("lagoff")];
    const watcher = watch();
    await sleep(1_000);

    // ClickHouse slowed: stopped 3.5 s, running 0.5 s, three times; then free again.
    const pxctl: string[] = [];
    let metrics = "";
    const io = { stdout: (t: string) => pxctl.push(t), stderr: (t: string) => pxctl.push(t), readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: f.server.auth!.credsPath("admin") } };
    for (let burst = 0; burst < 3; burst++) {
      process.kill(chf.server.pid, "SIGSTOP");
      await sleep(3_500);
      // While a step is held, pxctl status shows it next to the sink's state and lag.
      if (burst === 1) {
        expect(await runPxctl(["--nats", f.server.url, "status"], io)).toBe(EXIT.ok);
        metrics = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
      }
      process.kill(chf.server.pid, "SIGCONT");
      await sleep(500);
    }
    await sleep(1_000);
    ingesting = false;
    await Promise.all(ingests);

    // Back down once lag recovered: one step per dwell second.
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline) {
      const on = seen.get("lagon")!;
      if (on.steps.at(-1) === 0 && on.maxStep === 4) break;
      await sleep(200);
    }
    watching = false;
    await watcher;

    const on = seen.get("lagon")!;
    const off = seen.get("lagoff")!;
    expect(on.maxStep, `${JSON.stringify(on.steps)}\n${log.filter((l) => /lag|sink/.test(l)).join("\n")}`).toBe(4);
    expect(on.steps.at(-1), JSON.stringify(on.steps)).toBe(0);
    expect(on.maxLagMs).toBeGreaterThan(1_000);
    // Negative control: as far behind, and never a step.
    expect(off.maxLagMs).toBeGreaterThan(1_000);
    expect(off.maxStep).toBe(0);

    const events = (await readEvents(await jetstreamManager(f.nc), jetstream(f.nc), 500)).filter((e) => e.kind.startsWith("lag."));
    const ofOn = events.filter((e) => e.message.includes("lagon.trades.0"));
    const kinds = ofOn.map((e) => e.kind);
    expect(kinds.filter((k) => k === "lag.step_up").length, JSON.stringify(kinds)).toBeGreaterThanOrEqual(3);
    expect(kinds.filter((k) => k === "lag.step_down").length, JSON.stringify(kinds)).toBeGreaterThanOrEqual(4);
    expect(ofOn.find((e) => e.kind === "lag.step_skipped")?.message).toMatch(/step 2 \(hold-eviction\) -> 3 \(move-sink\): .*move skipped: node .* runs standalone/);
    expect(ofOn.find((e) => / -> 1 \(bigger-batches\)/.test(e.message))?.message).toMatch(/lag \d+\.\d s .*sink batches made larger \(sink batches up to 800000 rows \/ 500 ms\)/);
    expect(ofOn.some((e) => / -> 0 \(none\)/.test(e.message) && /sink batches back to their base size/.test(e.message))).toBe(true);
    expect(events.filter((e) => e.message.includes("lagoff.trades.0"))).toEqual([]);
    // The alert: the gauge (scraped during the second burst) and the log line.
    expect(metrics).toMatch(/^px_lag_remediation_step\{tenant="lagon",table="trades",bucket="0"\} [1-4]$/m);
    expect(metrics).toMatch(/^px_lag_remediation_step\{tenant="lagoff",table="trades",bucket="0"\} 0$/m);
    expect(log.some((l) => /^ALERT node .*: shard lagon\.trades\.0: sink lag stays above its SLO after every remediation step/.test(l))).toBe(true);
    // pxctl status in the second burst: the sink's state and lag, and the step taken (none for the switched-off table).
    const status = pxctl.join("\n");
    expect(status).toMatch(/ SINK +SINK_LAG +REMEDIATION$/m);
    expect(status).toMatch(/^lagon\.trades\.0 .* [a-z]+ +\d+\.\ds +[1-4] (bigger-batches|hold-eviction|move-sink|alert)$/m);
    expect(status).toMatch(/^lagoff\.trades\.0 .* [a-z]+ +\d+\.\ds +none$/m);
    expect(await runPxctl(["--nats", f.server.url, "events", "--last", "100"], io)).toBe(EXIT.ok);
    expect(pxctl.join("\n")).toMatch(/lag\.step_up {2}shard lagon\.trades\.0: lag remediation step 0 \(none\) -> 1 \(bigger-batches\)/);

    // Nothing acked is lost: once the sinks caught up, ClickHouse holds every acked tick.
    await waitPersisted(node.httpPort, f.nc, "lagon", "trades", 60_000);
    await waitPersisted(node.httpPort, f.nc, "lagoff", "trades", 60_000);
    expect(await chCount("lagon")).toBe(acked.get("lagon"));
    expect(await chCount("lagoff")).toBe(acked.get("lagoff"));
  }, 150_000);

  it("outage - ClickHouse down under a node process (until the sink is degraded and the move step skipped, at most 20 s): the sink shows degraded, the node stays up and ingest goes on; afterwards every acked tick lands", async () => {
    // A 2 s dwell: the move step comes well after the sink's retries made it degraded.
    const spec = parseClusterSpec({ tenants: [{ name: "chdown", tables: [table(true, 2)] }] });
    const trades = spec.tenants[0]!.tables[0]!;
    await (await MetadataStore.open(f.nc)).applyCurrent(spec);
    const p = await spawnNodeProcess(f.server.url, { PX_LAG_REMEDIATION_INTERVAL_MS: "200", PX_COMPACTION_INTERVAL_MS: "0" }, ["--clickhouse", chf.server.httpUrl, "--snapshot-interval-ms", "0"]);
    procs.push(p);
    const pub = new TickPublisher(f.nc, { tenant: "chdown", spec: trades, maxInFlight: 4 });
    const walk = new RandomWalk(symbolNames(20), 5, 1.75e15);
    let acked = 0;
    const publish = async (): Promise<void> => {
      await pub.publish(walk.trades(200, 50_000));
      acked += 200;
    };
    for (let i = 0; i < 5; i++) await publish();
    await waitPersisted(p.httpPort, f.nc, "chdown", "trades", 60_000);

    await chf.server.stop();
    const states = new Set<string>();
    // Down until the sink was seen degraded and the workflow reached its move step (which it skips), at most 20 s:
    // a fixed 20 s waited ~12 s past both, and the sink's retry backoff then grew towards its 10 s cap.
    const moveSkipped = async (): Promise<boolean> => (await readEvents(await jetstreamManager(f.nc), jetstream(f.nc), 500)).some((e) => e.kind === "lag.step_skipped" && e.message.includes("chdown.trades.0"));
    const downUntil = Date.now() + 20_000;
    while (Date.now() < downUntil && !(states.has("degraded") && (await moveSkipped()))) {
      await publish();
      const v = (await shardViews(p.httpPort, "chdown"))[0];
      if (v !== undefined) states.add(v.sinkState);
      await sleep(200);
    }
    // Degraded and still retrying: no crash, no restart loop; pxctl status says so.
    expect([...states], p.output().slice(-3_000)).toContain("degraded");
    expect(p.child.exitCode).toBeNull();
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: f.server.auth!.credsPath("admin") } };
    expect(await runPxctl(["--nats", f.server.url, "status"], io)).toBe(EXIT.ok);
    expect(out.join("\n")).toMatch(/^chdown\.trades\.0 .* degraded +\d+(\.\d)?s +[1-4] \S+$/m);
    const events = (await readEvents(await jetstreamManager(f.nc), jetstream(f.nc), 500)).filter((e) => e.message.includes("chdown.trades.0"));
    expect(events.find((e) => e.kind === "lag.step_skipped")?.message).toMatch(/move skipped: the sink is degraded \(.*\): another node's sink would write to the same ClickHouse/);

    await chf.server.restart();
    for (let i = 0; i < 3; i++) await publish();
    await waitPersisted(p.httpPort, f.nc, "chdown", "trades", 60_000);
    expect(await chCount("chdown")).toBe(acked);
    expect((await shardViews(p.httpPort, "chdown"))[0]?.sink?.degraded).toBe(false);
    expect(p.child.exitCode).toBeNull();
  }, 150_000);
});
