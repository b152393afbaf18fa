// A gateway killed with SIGKILL between the WAL append and its reply: the client
// retries (same producer id and seq) against a new gateway and the WAL holds
// exactly one copy of the batch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, applyAndWait } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { NodeProcess } from "../helpers/nodeproc.js";
import { readWal } from "../helpers/wal.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";

const trades = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!;
let f: NatsFixture;
const procs: NodeProcess[] = [];

beforeAll(async () => {
  f = await natsFixture();
  await applyAndWait(f.nc, DEFAULT_CLUSTER_SPEC);
});
afterAll(async () => {
  for (const p of procs) await p.kill();
  await f?.close();
});

describe("ingest - crash", () => {
  it("crash - SIGKILL between WAL append and reply, then a client retry, stores one copy", async () => {
    const doomed = await spawnNodeProcess(f.server.url, { PX_FAILPOINTS: "gateway.after-append" });
    procs.push(doomed);
    // Let the doomed node load the catalog before the batch arrives.
    await new Promise((r) => setTimeout(r, 500));
    const batch = new RandomWalk(symbolNames(20), 3, 1.7e15).trades(200, 1_000_000);
    const p = new TickPublisher(f.nc, { tenant: "default", spec: trades, producerId: "crashy", timeoutMs: 2000, maxAttempts: 30 });
    const acked = p.publish(batch);
    const died = await doomed.exited;
    expect(died.signal).toBe("SIGKILL");
    // The append happened before the crash: the records are in the WAL already.
    const afterCrash = await readWal(f.nc, "default");
    expect(afterCrash.reduce((n, r) => n + r.record.rows, 0)).toBe(200);

    procs.push(await spawnNodeProcess(f.server.url));
    const ack = await acked;
    expect(ack.rows).toBe(200);
    expect(ack.appends.every((a) => a.duplicate)).toBe(true);
    const wal = await readWal(f.nc, "default");
    expect(wal.length).toBe(afterCrash.length);
    expect(wal.reduce((n, r) => n + r.record.rows, 0)).toBe(200);
    expect(new Set(wal.map((r) => r.msgId)).size).toBe(wal.length);
  });
});
