// Integration-test fixtures: a real nats-server on free ports with a temp data
// dir, and an in-process Proxist node on it with the default spec applied.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { rmSync } from "node:fs";
import { startNatsServer } from "../../src/runtime/servers/nats.js";
import type { NatsServer } from "../../src/runtime/servers/nats.js";
import { startNode } from "../../src/node/node.js";
import type { NodeOptions, ProxistNode } from "../../src/node/node.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import type { ClusterSpec } from "../../protocols/tablespec.js";
import { MetadataStore } from "../../src/control/index.js";

export interface NatsFixture {
  readonly server: NatsServer;
  readonly nc: NatsConnection;
  close(): Promise<void>;
}

export async function natsFixture(): Promise<NatsFixture> {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  return {
    server,
    nc,
    close: async () => {
      await nc.close().catch(() => {});
      await server.stop();
      rmSync(server.dir, { recursive: true, force: true });
    },
  };
}

/** Applies `spec` and waits until `node` serves every tenant in it. */
export async function applyAndWait(nc: NatsConnection, spec: ClusterSpec, node?: ProxistNode): Promise<void> {
  const store = await MetadataStore.open(nc);
  await store.applyCurrent(spec);
  if (!node) return;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/readyz`);
    if (res.ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("node did not become ready");
}

export async function nodeOn(server: NatsServer, nc: NatsConnection, o: Partial<NodeOptions> = {}, spec: ClusterSpec = DEFAULT_CLUSTER_SPEC): Promise<ProxistNode> {
  await applyAndWait(nc, spec);
  const node = await startNode({ natsUrl: server.url, log: () => {}, ...o });
  await applyAndWait(nc, spec, node);
  return node;
}
