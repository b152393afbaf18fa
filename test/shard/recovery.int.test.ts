// Hot-set recovery against a real nats-server with the node in its own process:
// SIGKILL during ingest and during a snapshot, corrupted snapshots. After each
// restart the hot set must equal a replay of every acknowledged WAL record.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Objm } from "@nats-io/obj";
import { natsFixture, applyAndWait } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { NodeProcess } from "../helpers/nodeproc.js";
import { readWal } from "../helpers/wal.js";
import { publishUntilStopped } from "../helpers/pump.js";
import { replayDigests, waitCaughtUp } from "../helpers/replay.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { createToken } from "../../src/auth/index.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { IngestAck } from "../../protocols/ingest.js";

const SPEC = parseClusterSpec({
  tenants: [{ name: "rec", tables: [{ name: "trades", shards: 3, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }],
});
const trades = SPEC.tenants[0]!.tables[0]!;

let f: NatsFixture;
const procs: NodeProcess[] = [];
let walk: RandomWalk;

beforeAll(async () => {
  f = await natsFixture();
  await applyAndWait(f.nc, SPEC);
  walk = new RandomWalk(symbolNames(200), 11, 1.75e15);
});
afterEach(async () => {
  for (const p of procs.splice(0)) await p.kill();
});
afterAll(async () => {
  await f?.close();
});

async function ingest(batches: number, late = false): Promise<IngestAck[]> {
  const p = new TickPublisher(f.nc, { tenant: "rec", spec: trades, maxInFlight: 8 });
  const acks: IngestAck[] = [];
  for (let i = 0; i < batches; i++) {
    const b = walk.trades(300, 500_000);
    // Late ticks: shift some rows back in time so the store must insert in the middle.
    if (late) for (let r = 0; r < b.rows; r += 7) b.ts[r] = b.ts[r]! - 3_000_000;
    acks.push(await p.publish(b));
  }
  return acks;
}

async function expectExactRecovery(node: NodeProcess): Promise<void> {
  const expected = await replayDigests(f.nc, "rec", [trades]);
  const got = await waitCaughtUp(node.httpPort, expected);
  for (const [k, e] of expected) {
    expect(got.get(k)?.rows, `rows of ${k}`).toBe(e.rows);
    expect(got.get(k)?.digest, `digest of ${k}`).toBe(e.digest);
  }
}

let adminToken: string | undefined;

/** POST /v1/snapshot, an admin route: with an admin token. */
async function snapshotNow(node: NodeProcess): Promise<Response> {
  adminToken ??= await createToken(f.nc, { tenant: "rec", role: "admin" });
  return fetch(`http://127.0.0.1:${node.httpPort}/v1/snapshot`, { method: "POST", headers: { authorization: `Bearer ${adminToken}` } });
}

describe("shard - recovery", () => {
  it("recovery - SIGKILL during ingest, restart: the hot set equals the replay of every acknowledged record", async () => {
    const a = await spawnNodeProcess(f.server.url, {}, ["--snapshot-interval-ms", "200"]);
    procs.push(a);
    await ingest(20);
    // Keep ingesting while the node dies; only acked batches count.
    const p = new TickPublisher(f.nc, { tenant: "rec", spec: trades, maxInFlight: 4, maxAttempts: 1, timeoutMs: 1000 });
    const acks: IngestAck[] = [];
    const pump = publishUntilStopped(p, () => walk.trades(300, 500_000), acks, 1);
    await new Promise((r) => setTimeout(r, 1500));
    await a.kill("SIGKILL");
    await pump.stop();
    expect(a.output()).toMatch(/snapshot at LSN/);

    const wal = await readWal(f.nc, "rec");
    const walLsns = new Set(wal.map((r) => r.lsn));
    for (const ack of acks) for (const ap of ack.appends) expect(walLsns.has(ap.lsn)).toBe(true);
    expect(new Set(wal.map((r) => r.msgId)).size).toBe(wal.length);

    const b = await spawnNodeProcess(f.server.url);
    procs.push(b);
    await expectExactRecovery(b);
    expect(b.output()).toMatch(/loaded snapshot at LSN/);
  });

  it("recovery - SIGKILL in the middle of a snapshot leaves no half snapshot visible", async () => {
    const a = await spawnNodeProcess(f.server.url, { PX_FAILPOINTS: "snapshot.after-data" });
    procs.push(a);
    await ingest(10, true);
    await snapshotNow(a).catch(() => undefined);
    expect((await a.exited).signal).toBe("SIGKILL");
    const os = await new Objm(f.nc).open("px_snapshots");
    const names = (await os.list()).filter((i) => !i.deleted).map((i) => i.name);
    const orphans = names.filter((n) => n.endsWith(".data") && !names.includes(n.replace(/\.data$/, ".manifest")));
    expect(orphans.length).toBeGreaterThan(0); // the data object landed, its manifest did not

    const b = await spawnNodeProcess(f.server.url);
    procs.push(b);
    await expectExactRecovery(b);
  });

  it("recovery - corrupted snapshots (flipped bytes, truncation) are detected and recovery is still exact", async () => {
    const a = await spawnNodeProcess(f.server.url);
    procs.push(a);
    await ingest(10);
    expect((await snapshotNow(a)).ok).toBe(true);
    await ingest(10, true);
    expect((await snapshotNow(a)).ok).toBe(true);
    await a.kill("SIGTERM");

    const os = await new Objm(f.nc).open("px_snapshots");
    const datas = (await os.list()).filter((i) => !i.deleted && i.name.endsWith(".data") && i.name.startsWith("rec.trades.0.")).map((i) => i.name).sort();
    const newest = datas.at(-1)!;
    const bytes = (await os.getBlob(newest))!;
    const mid = Math.floor(bytes.length / 2);
    bytes[mid] = bytes[mid]! ^ 0x5a;
    await os.putBlob({ name: newest }, bytes);

    const b = await spawnNodeProcess(f.server.url);
    procs.push(b);
    await expectExactRecovery(b);
    expect(b.output()).toMatch(/rec\.trades\.0\.\d+\.manifest is unusable \(.*SHA-256 mismatch/);
    await b.kill("SIGTERM");

    // Truncate every snapshot of bucket 0: recovery falls back to a full replay.
    for (const d of datas) {
      const full = await os.getBlob(d);
      if (full) await os.putBlob({ name: d }, full.subarray(0, Math.floor(full.length / 3)));
    }
    const c = await spawnNodeProcess(f.server.url);
    procs.push(c);
    await expectExactRecovery(c);
    expect(c.output()).toMatch(/unusable \(.*bytes, the manifest says/);
  });
});
