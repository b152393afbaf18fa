// The sink side of an unreadable WAL record (issue 19), with a real
// clickhouse-server: the sink stops on the record too (state failed) and
// persists nothing past it; after `pxctl shard skip-record` it persists the
// records after it, and ClickHouse holds every readable row exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, shardViews } from "../helpers/sink.js";
import type { ClickhouseFixture, SinkShardView } from "../helpers/sink.js";
import { ipcOf } from "../helpers/arrow.js";
import type { ProxistNode } from "../../src/node/node.js";
import type { IngestReply } from "../../protocols/ingest.js";
import { bucketOf } from "../../protocols/routing.js";
import { walSubject } from "../../protocols/subjects.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { runPxctl } from "../../src/cli/commands.js";
import { EXIT } from "../../src/cli/exitcodes.js";

const SHARDS = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!.shards;
const dec = new TextDecoder();
const T0 = BigInt(Date.now() - 60_000) * 1000n;
const SYM = "POISON2";
const BUCKET = bucketOf(SYM, SHARDS);
const batchOf = (price: number) => ipcOf({ sym: [SYM], ts: BigInt64Array.of(T0 + BigInt(price)), price: Float64Array.of(price), size: Float64Array.of(1) });

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode;
beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
  node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl });
}, 90_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
  await chf?.close();
});

async function send(payload: Uint8Array): Promise<IngestReply & { ok: true }> {
  const m = await f.nc.request("px.default.ingest.trades", payload, { timeout: 30_000 });
  const r = JSON.parse(dec.decode(m.data)) as IngestReply;
  if (!r.ok) throw new Error(r.error.message);
  return r;
}

async function view(): Promise<SinkShardView> {
  return (await shardViews(node.httpPort, "default")).find((s) => s.table === "trades" && s.bucket === BUCKET)!;
}

async function until(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await view())}`);
}

describe("sink - a WAL record that does not decode", () => {
  it("poison record - the sink stops before it; after skip-record it persists the rest, each readable row once", async () => {
    const good = await send(batchOf(1));
    const poison = await jetstream(f.nc).publish(walSubject("default", "trades", BUCKET), new Uint8Array([9, 9, 9, 9, 9]));
    const after = await send(batchOf(2));
    await until("the sink to stop on the record", async () => (await view()).sinkState === "failed");
    const stopped = await view();
    expect(stopped.sink?.persistedLsn ?? 0).toBeLessThan(poison.seq);
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: f.server.auth!.credsPath("admin") } };
    const code = await runPxctl(["--nats", f.server.url, "shard", "skip-record", "--tenant", "default", "--table", "trades", "--bucket", String(BUCKET), "--lsn", String(poison.seq), "--reason", "sink test"], io);
    expect(out.join("\n")).toMatch(/skipped the WAL record/);
    expect(code).toBe(EXIT.ok);
    await until("the sink to persist past the record", async () => {
      const v = await view();
      return (v.sink?.persistedLsn ?? 0) >= after.lastLsn && v.persistedLsn >= after.lastLsn;
    });
    const text = await chf.ch.query(`SELECT _lsn, count() FROM ${qualifiedTable("default", "trades")} WHERE _shard = ${BUCKET} GROUP BY _lsn ORDER BY _lsn FORMAT TabSeparated`);
    expect(text.trim().split("\n")).toEqual([`${good.lastLsn}\t1`, `${after.lastLsn}\t1`]);
  }, 150_000);
});
