// A WAL record that does not decode (issue 19), published straight to a shard's
// WAL subject with the service credentials: the shard stops before it with a
// named error that gives the way out (state failed; /v1/shards shows it; no
// restart loop, the node and the other shards go on). `pxctl shard skip-record`
// refuses a record that decodes and a record of another shard, skips the bad
// one with an audit entry in the event log, and the shard then applies the
// records after it. The skip survives a node restart (stored in px_walskips).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { ipcOf } from "../helpers/arrow.js";
import type { ProxistNode } from "../../src/node/node.js";
import type { IngestReply } from "../../protocols/ingest.js";
import { bucketOf } from "../../protocols/routing.js";
import { walSubject } from "../../protocols/subjects.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { runPxctl } from "../../src/cli/commands.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import type { HostedShardStatus } from "../../src/node/shard/host.js";

const SHARDS = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!.shards;
const dec = new TextDecoder();
const T0 = BigInt(Date.now() - 60_000) * 1000n;
const SYM = "POISON1";
const BUCKET = bucketOf(SYM, SHARDS);
const OTHER = Array.from({ length: 100 }, (_, i) => `Q${i}`).find((s) => bucketOf(s, SHARDS) !== BUCKET)!;
const batchOf = (sym: string, price: number) => ipcOf({ sym: [sym], ts: BigInt64Array.of(T0 + BigInt(price)), price: Float64Array.of(price), size: Float64Array.of(1) });

let f: NatsFixture;
let node: ProxistNode;
beforeAll(async () => {
  f = await natsFixture();
  node = await nodeOn(f.server, f.nc);
}, 60_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

async function send(payload: Uint8Array): Promise<IngestReply & { ok: true }> {
  const m = await f.nc.request("px.default.ingest.trades", payload, { timeout: 30_000 });
  const r = JSON.parse(dec.decode(m.data)) as IngestReply;
  if (!r.ok) throw new Error(r.error.message);
  return r;
}

async function shardStatus(bucket = BUCKET): Promise<HostedShardStatus> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/v1/shards`);
  const body = (await res.json()) as HostedShardStatus[] | { shards: HostedShardStatus[] };
  const list = Array.isArray(body) ? body : body.shards;
  return list.find((s) => s.table === "trades" && s.bucket === bucket)!;
}

async function until(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function pxctl(args: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: f.server.auth!.credsPath("admin") } };
  return runPxctl(["--nats", f.server.url, ...args], io).then(
    (code) => ({ code, out: out.join("\n") }),
    (e: unknown) => ({ code: -1, out: `${out.join("\n")}\n${(e as Error).message}` }),
  );
}

// pxctl gathers the nodes' replies for --wait (3 s by default): one in-process node here, which answers at once.
const skip = (bucket: number, lsn: number, reason = "test poison") => pxctl(["shard", "skip-record", "--tenant", "default", "--table", "trades", "--bucket", String(bucket), "--lsn", String(lsn), "--reason", reason, "--wait", "1500"]);

describe("shard - a WAL record that does not decode", () => {
  it("poison record - the shard stops with the named error, skip-record refuses good and foreign records, skips the bad one with an audit, and the shard goes on", async () => {
    const good = await send(batchOf(SYM, 1));
    const poison = await jetstream(f.nc).publish(walSubject("default", "trades", BUCKET), new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]));
    const after = await send(batchOf(SYM, 2));
    await until("the shard to fail", async () => (await shardStatus()).state === "failed");
    const failed = await shardStatus();
    expect(failed.error).toMatch(new RegExp(`^WAL record unreadable: the record at LSN ${poison.seq} of table trades does not decode .*pxctl shard skip-record --tenant default --table trades --bucket ${BUCKET} --lsn ${poison.seq}$`));
    expect(failed.appliedLsn).toBe(good.lastLsn);
    // No restart loop: it stays stopped, the node still takes batches and other shards go on.
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await shardStatus()).state).toBe("failed");
    const other = await send(batchOf(OTHER, 3));
    await until("another shard to apply", async () => (await shardStatus(bucketOf(OTHER, SHARDS))).appliedLsn >= other.lastLsn);
    expect(node.state()).toBe("ready");

    // Refused: a record that decodes, and the bad LSN under another shard.
    const decodes = await skip(BUCKET, good.lastLsn);
    expect(decodes.code).toBe(EXIT.other);
    expect(decodes.out).toMatch(new RegExp(`the record at LSN ${good.lastLsn} decodes \\(1 rows\\); skip-record only skips records that cannot be read, so nothing was changed`));
    const foreign = await skip(bucketOf(OTHER, SHARDS), poison.seq);
    expect(foreign.code).toBe(EXIT.other);
    expect(foreign.out).toMatch(new RegExp(`the record at LSN ${poison.seq} is on px.default.wal.trades.${BUCKET}, not on this shard's`));
    expect((await shardStatus()).state).toBe("failed");
    const usage = await pxctl(["shard", "skip-record", "--tenant", "default", "--table", "trades", "--bucket", String(BUCKET)]);
    expect(usage.code).toBe(EXIT.usage);
    expect(usage.out).toMatch(/shard skip-record needs --lsn/);

    const done = await skip(BUCKET, poison.seq, "corrupt record from test");
    expect(done.code).toBe(EXIT.ok);
    expect(done.out).toMatch(new RegExp(`skipped the WAL record at LSN ${poison.seq}`));
    await until("the shard to apply past the skipped record", async () => {
      const s = await shardStatus();
      return s.state.includes("live") && s.appliedLsn >= after.lastLsn;
    });
    expect((await shardStatus()).rows).toBe(2);
    const events = await pxctl(["events", "--last", "20"]);
    expect(events.out).toMatch(new RegExp(`wal.record_skipped  shard default.trades.${BUCKET}: WAL record at LSN ${poison.seq} skipped by an operator \\(reason: corrupt record from test\\)`));

    // The skip is stored: a restarted node goes past the record too.
    await node.stop();
    node = await nodeOn(f.server, f.nc);
    await until("the restarted shard to replay past the skipped record", async () => {
      const s = await shardStatus();
      return s.state.includes("live") && s.appliedLsn >= after.lastLsn;
    });
    expect((await shardStatus()).rows).toBe(2);
  }, 120_000);
});
