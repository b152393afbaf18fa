// The sink's flush delay as an operator sets it: `proxist node --sink-batch-ms N`
// (or PX_SINK_BATCH_MS). A node process started with it shows the delay in
// /v1/shards and persists every acked tick; a value out of range stops the node
// before it starts, naming the option, the range and what the value costs.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MetadataStore } from "../../src/control/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { natsFixture } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { NodeProcess } from "../helpers/nodeproc.js";
import { clickhouseFixture, shardViews, waitPersisted } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";

let f: NatsFixture;
let chf: ClickhouseFixture;
const procs: NodeProcess[] = [];

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
});
afterEach(async () => {
  for (const p of procs.splice(0)) await p.kill();
});
afterAll(async () => {
  await f?.close();
  await chf?.close();
});

const spec = parseClusterSpec({ tenants: [{ name: "sbd", tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });

describe("sink - flush delay option", () => {
  it("batch delay - --sink-batch-ms sets every sink's delay (shown in /v1/shards; the default is 200 ms) and every acked tick lands", async () => {
    await (await MetadataStore.open(f.nc)).applyCurrent(spec);
    const node = await spawnNodeProcess(f.server.url, {}, ["--clickhouse", chf.server.httpUrl, "--snapshot-interval-ms", "0", "--sink-batch-ms", "750"]);
    procs.push(node);
    const pub = new TickPublisher(f.nc, { tenant: "sbd", spec: spec.tenants[0]!.tables[0]!, maxInFlight: 4 });
    const walk = new RandomWalk(symbolNames(30), 5, 1.75e15);
    for (let i = 0; i < 10; i++) await pub.publish(walk.trades(300, 10_000));
    const views = await waitPersisted(node.httpPort, f.nc, "sbd", "trades");
    expect(views.map((v) => v.sink?.batchDelayMs)).toEqual([750, 750]);
    expect(Number((await chf.ch.query(`SELECT count() FROM ${qualifiedTable("sbd", "trades")}`)).trim())).toBe(3000);
    await node.kill();

    const byDefault = await spawnNodeProcess(f.server.url, {}, ["--clickhouse", chf.server.httpUrl, "--snapshot-interval-ms", "0"]);
    procs.push(byDefault);
    let shown: (number | undefined)[] = [];
    for (let i = 0; i < 200 && shown.length < 2; i++) {
      shown = (await shardViews(byDefault.httpPort, "sbd")).filter((v) => v.sink !== null).map((v) => v.sink?.batchDelayMs);
      if (shown.length < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(shown).toEqual([200, 200]);
  });

  it("batch delay - out of range (flag or PX_SINK_BATCH_MS) stops the node before it starts, naming the option and the range", async () => {
    for (const [env, args, shown] of [
      [{}, ["--sink-batch-ms", "5"], /--sink-batch-ms \(PX_SINK_BATCH_MS\) must be 10 to 60000 milliseconds, got 5;/],
      [{ PX_SINK_BATCH_MS: "120000" }, [], /must be 10 to 60000 milliseconds, got 120000; the persistence lag is about this long/],
      [{}, ["--sink-batch-ms", "1.5"], /--sink-batch-ms must be a non-negative integer, got "1.5"/],
    ] as const) {
      const e = await spawnNodeProcess(f.server.url, env, ["--clickhouse", chf.server.httpUrl, ...args]).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(e?.message).toMatch(/exited before it was up/);
      expect(e?.message).toMatch(shown);
    }
  });
});
