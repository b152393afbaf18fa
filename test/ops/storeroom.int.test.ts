// JetStream reserves each stream's max_bytes against the server's store
// (max_file_store). A node whose tenant WAL does not fit is not ready, and its
// /readyz names the refusal, the limit and the fix instead of "being created"
// forever; the fix it names (a lower PX_WAL_MAX_BYTES) makes a node ready.
import { afterAll, describe, expect, it } from "vitest";
import { natsFixture, applyAndWait } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { startNode } from "../../src/node/node.js";
import type { ProxistNode } from "../../src/node/node.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";

let f: NatsFixture | undefined;
const nodes: ProxistNode[] = [];
afterAll(async () => {
  for (const n of nodes) await n.stop();
  await f?.close();
});

const GiB = 1024 ** 3;

describe("a JetStream store too small for the WAL", () => {
  it("/readyz names the refused reservation and the fix; a lower PX_WAL_MAX_BYTES makes the node ready", async () => {
    // 3 GiB: room for the snapshot store (2 GiB) and the control buckets, not for a 2 GiB WAL besides.
    f = await natsFixture({ maxFileStore: String(3 * GiB) });
    await applyAndWait(f.nc, DEFAULT_CLUSTER_SPEC);
    const node = await startNode({ natsUrl: f.server.url, walMaxBytes: 2 * GiB, log: () => {} });
    nodes.push(node);
    let body = "";
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const r = await fetch(`http://127.0.0.1:${node.httpPort}/readyz`);
      body = await r.text();
      expect(r.status).toBe(503);
      if (/insufficient storage/.test(body)) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(body).toMatch(/catalog: px_config not loaded yet: .*JetStream refused to reserve 2147483648 bytes for stream PX_WAL_\w+ \(insufficient storage resources\)/);
    expect(body).toMatch(/max_file_store/);
    expect(body).toMatch(/lower PX_WAL_MAX_BYTES/);
    await node.stop();
    nodes.pop();

    const fixed = await startNode({ natsUrl: f.server.url, walMaxBytes: 256 * 1024 * 1024, log: () => {} });
    nodes.push(fixed);
    await applyAndWait(f.nc, DEFAULT_CLUSTER_SPEC, fixed);
  });
});
