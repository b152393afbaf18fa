// Lag remediation's step 3 on two node processes (--shards assigned, a 3-server
// NATS cluster, a real clickhouse-server slowed by SIGSTOP bursts): the one
// shard's lag stays above its SLO (1 s, dwell 1 s), so its owner's workflow
// steps up to 3 and asks the control plane to move the shard; the leader puts
// it on the other node (which owns fewer shards), where it goes live. The
// event in `pxctl events` names that node; px_placement holds the override
// (by remediation). Still slow there, the new owner's step 3 is skipped: a
// shard is moved once until the override is cleared. Nothing acked is lost or doubled in ClickHouse: the old
// owner's sink is fenced by the new lease revision, as in a drain.
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { IngestAck } from "../../protocols/ingest.js";
import { runPxctl } from "../../src/cli/commands.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { readEvents } from "../../src/wal/index.js";
import { testNatsAuth } from "../helpers/cluster.js";
import { proxistCluster, waitEachShardLiveOnce, waitPersistedOn } from "../helpers/nodecluster.js";
import type { ProxistCluster } from "../helpers/nodecluster.js";
import { publishUntilStopped } from "../helpers/pump.js";
import { exactlyOnceReport } from "../helpers/sink.js";
import { walTicks } from "../helpers/walticks.js";

const TENANT = "lagmv";
const SPEC = parseClusterSpec({
  tenants: [
    {
      name: TENANT,
      tables: [{ name: "trades", shards: 1, lagSlo: { seconds: 1, records: 1_000_000, dwellSeconds: 1, enabled: true }, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }],
    },
  ],
});
const TRADES = SPEC.tenants[0]!.tables[0]!;
const IDS = ["n1", "n2"];
const KEY = `${TENANT}.trades.0`;

let c: ProxistCluster;
beforeAll(async () => {
  c = await proxistCluster(SPEC, { PX_LAG_REMEDIATION_INTERVAL_MS: "200", PX_COMPACTION_INTERVAL_MS: "0" }, ["--snapshot-interval-ms", "0"], { clickhouse: true });
  await c.spawn(IDS);
  await waitEachShardLiveOnce(c, IDS, 60_000);
}, 180_000);
afterAll(async () => {
  if (c?.clickhouse?.server.running) process.kill(c.clickhouse.server.pid, "SIGCONT");
  await c?.close();
});

/**
 * Slows ClickHouse in bursts (SIGSTOP 3.5 s, SIGCONT 0.5 s; at most 8) until `seen` finds what it waits for. A burst
 * ends early once it is seen: waiting out the burst proved nothing more.
 */
async function slowUntil(pid: number, seen: () => Promise<unknown>): Promise<void> {
  for (let burst = 0; burst < 8 && (await seen()) === undefined; burst++) {
    process.kill(pid, "SIGSTOP");
    const end = Date.now() + 3_500;
    try {
      while (Date.now() < end && (await seen()) === undefined) await sleep(Math.min(250, Math.max(0, end - Date.now())));
    } finally {
      process.kill(pid, "SIGCONT");
    }
    if ((await seen()) !== undefined) return;
    await sleep(500);
  }
}

describe("ops - lag remediation moves the shard", () => {
  it("remediation - lag above the SLO through steps 1 and 2: step 3 moves the shard to the other node, where it goes live; the event names the node; 0 acked ticks lost or doubled", async () => {
    // Each shard was live once; the controller may still be placing it (a node joined): wait until it is live on one node.
    let owners = (await c.liveShards(IDS)).get(KEY);
    for (const end = Date.now() + 30_000; owners?.length !== 1 && Date.now() < end; owners = (await c.liveShards(IDS)).get(KEY)) await sleep(200);
    expect(owners, `${KEY} live on exactly one node`).toHaveLength(1);
    const from = owners![0]![0];
    const to = IDS.find((id) => id !== from)!;
    const acks: IngestAck[] = [];
    const walk = new RandomWalk(symbolNames(20), 3, 1.75e15);
    const ingest = publishUntilStopped(new TickPublisher(c.nc, { tenant: TENANT, spec: TRADES, maxInFlight: 4, timeoutMs: 2_000, maxAttempts: 20 }), () => walk.trades(200, 50_000), acks, 1);
    await sleep(1_000);

    const js = jetstream(c.nc);
    const jsm = await jetstreamManager(c.nc);
    const moveEvent = async () => (await readEvents(jsm, js, 500)).find((e) => e.kind === "lag.step_up" && e.message.includes(KEY) && / -> 3 \(move-sink\)/.test(e.message));
    // ClickHouse slowed: stopped 3.5 s, running 0.5 s, until step 3 was taken (at most 8 bursts).
    const pid = c.clickhouse!.server.pid;
    await slowUntil(pid, moveEvent);
    const event = await moveEvent();
    const lagEvents = (await readEvents(jsm, js, 500)).filter((e) => e.kind.startsWith("lag.")).map((e) => `${e.node} ${e.kind} ${e.message}`);
    expect(event, lagEvents.join("\n")).toBeDefined();
    expect(event!.node).toBe(from);
    expect(event!.message).toMatch(new RegExp(`step 2 \\(hold-eviction\\) -> 3 \\(move-sink\\): .*; the shard and its sink move to node ${to}$`));
    console.log(`lag remediation events:\n${lagEvents.join("\n")}`);

    // The leader placed it on the other node, where it is live; the override says who asked.
    const deadline = Date.now() + 60_000;
    while ((await c.liveShards(IDS)).get(KEY)?.map(([id]) => id).join() !== to && Date.now() < deadline) await sleep(200);
    expect((await c.liveShards(IDS)).get(KEY)?.map(([id]) => id)).toEqual([to]);
    expect((await c.stores.assignments.read()).get(KEY)?.node).toBe(to);
    expect((await c.stores.overrides.read()).get(KEY)?.override).toMatchObject({ node: to, from, by: "remediation", reason: `lag remediation on ${from}` });

    // pxctl events shows it.
    const out: string[] = [];
    const env = { PX_NATS_CREDS: (await testNatsAuth()).credsPath("admin") };
    expect(await runPxctl(["--nats", c.nats.urls, "events", "--last", "200"], { stdout: (t) => out.push(t), stderr: (t) => out.push(t), readFile: async () => "", prompt: async () => "y", env })).toBe(EXIT.ok);
    expect(out.join("\n")).toMatch(new RegExp(`  ${from}  lag\\.step_up  shard ${KEY.replace(/\./g, "\\.")}: lag remediation step 2 \\(hold-eviction\\) -> 3 \\(move-sink\\): .*move to node ${to}`));

    // Still slow on the new owner: its workflow climbs again, but step 3 does not move the shard back (once per shard until cleared).
    const skipped = async () => (await readEvents(jsm, js, 500)).find((e) => e.node === to && e.kind === "lag.step_skipped" && e.message.includes(KEY));
    await slowUntil(pid, skipped);
    const skip = await skipped();
    expect(skip, (await readEvents(jsm, js, 500)).filter((e) => e.kind.startsWith("lag.")).map((e) => `${e.node} ${e.kind} ${e.message}`).join("\n")).toBeDefined();
    console.log(`on ${to}: ${skip!.kind} ${skip!.message}`);
    expect(skip!.message).toMatch(new RegExp(`-> 3 \\(move-sink\\): .*move skipped: shard ${KEY.replace(/\./g, "\\.")} was moved to ${to} already \\(remediation: lag remediation on ${from}\\); it is not moved again until the override is cleared`));
    expect((await c.liveShards(IDS)).get(KEY)?.map(([id]) => id)).toEqual([to]);
    // The new owner started the shard at step 0 and climbed from there.
    expect((await readEvents(jsm, js, 500)).some((e) => e.node === to && e.kind === "lag.step_up" && e.message.includes(`${KEY}: lag remediation step 0 (none) -> 1`))).toBe(true);

    await sleep(1_000);
    await ingest.stop();
    // Every acked tick lands in ClickHouse once: the old owner's sink was fenced.
    const wal = await walTicks(c.nc, TENANT, [TRADES]);
    const acked = acks.flatMap((a) => a.appends.map((x) => x.lsn));
    expect(acked.length).toBeGreaterThan(0);
    expect(acked.filter((l) => !wal.lsns.has(l))).toEqual([]);
    await waitPersistedOn(c, TENANT, "trades", IDS);
    expect(await exactlyOnceReport(c.clickhouse!.ch, c.nc, TENANT, TRADES)).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0, walRows: wal.ticks.length });
  }, 240_000);
});
