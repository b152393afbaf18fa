// WAL consumers pull by bytes (src/wal/pull.ts), against a real nats-server
// and node processes. A node replaying a WAL of large records (20 k-tick
// batches: ~140 KB per shard record) with pulls of 256 messages asked for more
// than the server lets a client leave unread (max_pending, here 8 MB): the
// server cut the node off as a slow consumer and its shards stalled. Pulling at
// most one max_payload (here 1 MB) per consumer, the node replays without a
// disconnect. Negative control: pulls by messages (PX_UNSAFE_WAL_PULL_BY_MESSAGES=1)
// and the node's log says it was disconnected.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { MetadataStore } from "../../src/control/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { startNatsServer } from "../../src/runtime/servers/nats.js";
import type { NatsServer } from "../../src/runtime/servers/nats.js";
import { PULL_HEADROOM_BYTES, serverMaxPayload, walPull } from "../../src/wal/index.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { walStream } from "../../protocols/subjects.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { NodeProcess } from "../helpers/nodeproc.js";

const MAX_PAYLOAD = 1024 * 1024;
// 100 batches: 100 records of ~140 KB per shard. Pulled by 256 messages, each consumer asks for ~14 MB at once,
// well past the 8 MB the server lets a client leave unread. With 40 batches (~5.6 MB per consumer) a node that
// read fast enough was not cut off in 2 of 6 local runs (before and after 2026-12-07's changes alike), and the
// negative control failed (once in CI).
const TICKS = 2_000_000;
const BATCH = 20_000;
const trades = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables.find((t) => t.name === "trades")!;

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer({ auth: "open", maxPayloadBytes: MAX_PAYLOAD, maxPendingBytes: 8 * 1024 * 1024 });
  nc = await connect({ servers: server.url, noAsyncTraces: true });
  await (await MetadataStore.open(nc)).applyCurrent(DEFAULT_CLUSTER_SPEC);
  // A node takes the ingest (WAL records as a node writes them), then dies before any snapshot: the next replays it all.
  const writer = await spawnNodeProcess(server.url);
  const pub = new TickPublisher(nc, { tenant: "default", spec: trades, maxInFlight: 8 });
  const walk = new RandomWalk(symbolNames(1000), 1, 1.7e15);
  for (let i = 0; i < TICKS / BATCH; i++) await pub.publish(walk.trades(BATCH, 10));
  await writer.kill("SIGKILL");
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

/** Starts a node, waits until its trades shards hold every tick or its log says it was disconnected; returns its log. */
async function replay(env: Record<string, string>): Promise<{ rows: number; log: string }> {
  const node: NodeProcess = await spawnNodeProcess(server.url, env);
  try {
    const deadline = Date.now() + 60_000;
    let rows = 0;
    while (Date.now() < deadline) {
      const shards = (await (await fetch(`http://127.0.0.1:${node.httpPort}/v1/shards`)).json()) as { table: string; rows: number }[];
      rows = shards.filter((s) => s.table === "trades").reduce((a, s) => a + s.rows, 0);
      if (rows >= TICKS || /NATS connection: disconnected/.test(node.output())) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return { rows, log: node.output() };
  } finally {
    await node.kill("SIGKILL");
  }
}

describe("WAL pulls bounded by bytes", () => {
  it("pull - a WAL of large records is pulled by bytes: the server's max_payload (read from the nats.js client) plus headroom", async () => {
    const js = jetstream(nc);
    expect(serverMaxPayload(js)).toBe(MAX_PAYLOAD);
    expect(await walPull(js, walStream("default"), 256)).toEqual({ max_bytes: MAX_PAYLOAD + PULL_HEADROOM_BYTES });
  });

  it("pull - a node replays a WAL of large records without being cut off as a slow consumer; pulling by messages, it is", async () => {
    const bounded = await replay({});
    expect(bounded.log).not.toMatch(/NATS connection: disconnected/);
    expect(bounded.rows).toBe(TICKS);
    const byMessages = await replay({ PX_UNSAFE_WAL_PULL_BY_MESSAGES: "1" });
    expect(byMessages.log).toMatch(/NATS connection: disconnected/);
  }, 150_000);
});
