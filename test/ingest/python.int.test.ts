// An external publisher in Python (nats-py + pyarrow) ingests a pandas
// DataFrame through NATS request/reply and gets LSN acks and clear errors.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { mintUser } from "../../src/auth/index.js";
import { writeSecretFile } from "../../src/runtime/servers/natsauth.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { readWal } from "../helpers/wal.js";
import type { ProxistNode } from "../../src/node/node.js";
import { ipcToTickBatch } from "../../src/codec/arrow.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import type { IngestReply } from "../../protocols/ingest.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const trades = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!;
let f: NatsFixture;
let node: ProxistNode;
beforeAll(async () => {
  f = await natsFixture();
  node = await nodeOn(f.server, f.nc);
});
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

describe("ingest - python publisher", () => {
  it("nats-py - a pandas DataFrame is acked and stored with microsecond timestamps", async () => {
    // A tenant publisher's credentials: NATS runs locked.
    const creds = join(f.server.dir, "pub.creds");
    writeSecretFile(creds, (await mintUser(f.server.auth!.identity, { role: "publisher", tenant: "default", ttlSeconds: 3_600 })).creds);
    const { stdout } = await promisify(execFile)(`${root}/.venv/bin/python`, [`${root}/test/ingest/python_publisher.py`, f.server.url, creds], { timeout: 60_000 });
    const [good, bad] = stdout.trim().split("\n").map((l) => JSON.parse(l) as IngestReply);
    expect(good!.ok).toBe(true);
    if (good!.ok) expect(good!.rows).toBe(4);
    expect(bad!.ok).toBe(false);
    if (!bad!.ok) expect(bad!.error.message).toContain("column size is missing");
    const ticks = (await readWal(f.nc, "default")).flatMap((r) => {
      const b = ipcToTickBatch(trades, r.record.payload, "wal");
      return Array.from({ length: b.rows }, (_, i) => [b.symbols[b.symbolIndex[i]!], b.ts[i], b.values[0]![i]]);
    });
    expect(ticks.sort((a, b) => Number(a[1]) - Number(b[1]))).toEqual([
      ["AAPL", Date.parse("2026-11-25T14:30:00Z") * 1000 + 1, 190.5],
      ["MSFT", Date.parse("2026-11-25T14:30:00.5Z") * 1000, 410.25],
      ["AAPL", Date.parse("2026-11-25T14:30:01Z") * 1000, 190.75],
      ["IBM", Date.parse("2026-11-25T14:30:02.25Z") * 1000, 150],
    ]);
  });
});
