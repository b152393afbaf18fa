// A materialized feed on a node process SIGKILLed mid-ingest: restarted, the
// node's feed continues where its stream ends, and the stream equals that of
// the same feed run without interruption (in this process, another name): no
// message lost, none twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { waitFor } from "xstate";
import { walStream } from "../../protocols/subjects.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { IngestAck } from "../../protocols/ingest.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { planFeed } from "../../src/feed/index.js";
import { startFeed } from "../../src/node/feed/runtime.js";
import { applyAndWait, natsFixture } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { NodeProcess } from "../helpers/nodeproc.js";
import { feedMessages } from "../helpers/feedstream.js";
import { publishUntilStopped } from "../helpers/pump.js";

const QUERY = { op: "rolling", table: "trades", window: "50ms", aggregates: [{ fn: "vwap", column: "price", weight: "size" }] };
const SPEC = parseClusterSpec({
  tenants: [
    {
      name: "fk",
      tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }],
      feeds: [{ name: "vwap", query: QUERY }],
    },
  ],
});
const trades = SPEC.tenants[0]!.tables[0]!;

let f: NatsFixture;
const procs: NodeProcess[] = [];
beforeAll(async () => {
  f = await natsFixture();
  await applyAndWait(f.nc, SPEC);
}, 60_000);
afterAll(async () => {
  for (const p of procs) await p.kill("SIGKILL").catch(() => {});
  await f?.close();
});

const messages = (name: string) => feedMessages(f.nc, "fk", name);

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("materialized feed - node SIGKILL", () => {
  it("feed - the node SIGKILLed mid-ingest and restarted: its feed stream equals an uninterrupted run's (0 gaps, 0 duplicates)", async () => {
    const plan = planFeed("fk", { query: QUERY }, (t) => (t === "trades" ? trades : undefined), () => ["trades"]);
    // The node creates the tenant's WAL stream: the in-process feed starts after it.
    procs.push(await spawnNodeProcess(f.server.url));
    const steady = await startFeed({ nc: f.nc, name: "steady", plan });
    const walk = new RandomWalk(symbolNames(12), 9, 1.75e15);
    const pub = new TickPublisher(f.nc, { tenant: "fk", spec: trades, maxInFlight: 2 });
    const acks: IngestAck[] = [];
    const pump = publishUntilStopped(pub, () => walk.trades(50, 20_000), acks, 2);
    // Kill once the node's feed has published and ingest goes on.
    await until("the node's feed to publish", async () => ((await messages("vwap")).length >= 5 ? true : undefined));
    await procs[0]!.kill("SIGKILL");
    const before = (await messages("vwap")).length;
    await new Promise((r) => setTimeout(r, 500));
    procs.push(await spawnNodeProcess(f.server.url));
    await new Promise((r) => setTimeout(r, 1_000));
    await pump.stop();
    const wal = (await (await jetstreamManager(f.nc)).streams.info(walStream("fk"))).state.last_seq;
    await waitFor(steady.actor, (s) => s.context.stats.foldedLsn >= wal && s.matches({ running: { output: "idle" } }), { timeout: 60_000 }).catch((e: unknown) => {
      const s = steady.actor.getSnapshot();
      throw new Error(`${(e as Error).message}: steady feed ${JSON.stringify(s.value)} folded ${s.context.stats.foldedLsn} of ${wal} (${s.context.error ?? ""})`);
    });
    const want = await messages("steady");
    // The restarted node's feed catches up to the same stream.
    const got = await until("the restarted feed to catch up", async () => {
      const m = await messages("vwap");
      return m.length >= want.length ? m : undefined;
    });
    steady.stop();
    expect(acks.length).toBeGreaterThan(0);
    expect(before).toBeLessThan(want.length);
    expect(got.map((m) => m.rows)).toEqual(want.map((m) => m.rows));
    expect(new Set(got.map((m) => m.offset)).size).toBe(got.length);
  }, 180_000);
});
