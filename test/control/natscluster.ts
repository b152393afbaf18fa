// A three-server NATS cluster (JetStream, routes between all) on free loopback
// ports with temp data dirs, for control-plane integration tests.
import { rmSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { startNatsServer } from "../../src/runtime/servers/nats.js";
import type { NatsServer } from "../../src/runtime/servers/nats.js";
import { freePorts } from "../../src/runtime/servers/ports.js";
import { serviceCreds, testNatsAuth } from "../helpers/cluster.js";

export interface NatsCluster {
  readonly servers: NatsServer[];
  /** All client URLs, comma separated (what --nats takes). */
  readonly urls: string;
  connect(name?: string): Promise<NatsConnection>;
  close(): Promise<void>;
}

/** `netns`: server i runs in that network namespace on its address (the fault suite's partitions; needs root). */
/** `dirs`: server i keeps its data in dirs[i] (e.g. a small tmpfs), which close() leaves to its maker. */
export async function natsCluster(size = 3, o: { netns?: (i: number) => { name: string; address: string }; dirs?: readonly string[] } = {}): Promise<NatsCluster> {
  const ports = await freePorts(size * 3);
  const routePorts = ports.slice(size * 2);
  const routes = routePorts.map((p, i) => `nats://${o.netns?.(i).address ?? "127.0.0.1"}:${p}`);
  const auth = await testNatsAuth();
  const servers = await Promise.all(
    Array.from({ length: size }, (_, i) =>
      startNatsServer({ port: ports[i]!, monitorPort: ports[size + i]!, serverName: `px${i + 1}`, cluster: { name: "pxtest", port: routePorts[i]!, routes }, auth, ...(o.netns ? { netns: o.netns(i) } : {}), ...(o.dirs ? { dir: o.dirs[i]! } : {}) }),
    ),
  );
  const urls = servers.map((s) => s.url).join(",");
  const conns: NatsConnection[] = [];
  const cluster: NatsCluster = {
    servers,
    urls,
    connect: async (name = "test") => {
      const nc = await connect({ servers: servers.map((s) => s.url), name, maxReconnectAttempts: -1, reconnectTimeWait: 200, ...(await serviceCreds()) });
      conns.push(nc);
      return nc;
    },
    close: async () => {
      await Promise.all(conns.map((c) => c.close().catch(() => {})));
      await Promise.all(servers.map((s) => s.stop().catch(() => {})));
      for (const s of servers) if (!o.dirs) rmSync(s.dir, { recursive: true, force: true });
    },
  };
  // JetStream needs a meta leader before any R3 asset can be created, and nats-server 2.10 places an R3 asset
  // only once its meta leader has heard from every peer ("no suitable peers for placement" until then): a
  // peer's first report can be missed and the next comes up to ~30 s later (seen once in CI: 30 s were not
  // enough), so this waits up to 90 s.
  const nc = await cluster.connect("probe");
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      const kv = await new Kvm(nc).create("px_probe", { replicas: size });
      await kv.put("k", "v");
      await kv.destroy();
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`NATS cluster did not form a JetStream quorum: ${(e as Error).message}`, { cause: e });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return cluster;
}
