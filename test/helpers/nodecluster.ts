// A Proxist cluster for failover tests and the failover benchmark: a 3-server
// NATS cluster (R3 streams and KV) and Proxist node processes in
// `--shards assigned` mode, which the control plane gives shards to; with
// `clickhouse` the nodes run their sinks against a real clickhouse-server.
import type { NatsConnection } from "@nats-io/transport-node";
import { natsCluster } from "../control/natscluster.js";
import type { NatsCluster } from "../control/natscluster.js";
import { MetadataStore, openControlStores, shardKey, shardsOfCatalog } from "../../src/control/index.js";
import type { ControlStores } from "../../src/control/index.js";
import type { ClusterSpec } from "../../protocols/tablespec.js";
import { spawnNodeProcess } from "./nodeproc.js";
import type { NodeProcess } from "./nodeproc.js";
import { nodeShards } from "./replay.js";
import type { NodeShard } from "./replay.js";
import { clickhouseFixture, walRows } from "./sink.js";
import type { ClickhouseFixture } from "./sink.js";

export interface ProxistCluster {
  readonly nats: NatsCluster;
  readonly nc: NatsConnection;
  readonly metadata: MetadataStore;
  readonly stores: ControlStores;
  /** The clickhouse-server the nodes' sinks write to (undefined: nodes run without ClickHouse). */
  readonly clickhouse: ClickhouseFixture | undefined;
  /** Running node processes by node id (killed ones are removed). */
  readonly nodes: Map<string, NodeProcess>;
  spawn(ids: readonly string[]): Promise<void>;
  /** Sends the signal; SIGKILL also waits for the exit and forgets the node. */
  signal(id: string, sig: NodeJS.Signals): Promise<void>;
  /** Every shard key of the applied catalog. */
  shardKeys(): Promise<string[]>;
  /** shard key -> [node id, shard] for every shard a running node reports live. */
  liveShards(ids?: readonly string[], digest?: boolean): Promise<Map<string, [string, NodeShard][]>>;
  close(): Promise<void>;
}

/** Serving: replayed up to the WAL's end ("running.live", or "running.snapshotting" which still applies and answers). */
export const isLive = (s: NodeShard): boolean => /running\.(live|snapshotting)/.test(s.state);

export interface ClusterOptions {
  /**
   * Run every node with `--clickhouse`: `true` starts a clickhouse-server for
   * this cluster (stopped by close), a fixture is shared (the caller stops it).
   */
  readonly clickhouse?: boolean | ClickhouseFixture;
}

/**
 * The placement settle period of the nodes (PX_PLACEMENT_SETTLE_MS; an `env` of
 * the cluster overrides it): 1 s, not the 15 s default, so a node that joins or
 * comes back gets its shares soon (waitSpread) without slowing CI.
 */
export const TEST_SETTLE_MS = "1000";

/** `args` are added to every node's command line. */
export async function proxistCluster(spec: ClusterSpec, env: Record<string, string> = {}, args: readonly string[] = [], o: ClusterOptions = {}): Promise<ProxistCluster> {
  const ownClickhouse = o.clickhouse === true;
  const [nats, clickhouse] = await Promise.all([natsCluster(3), ownClickhouse ? clickhouseFixture() : Promise.resolve(o.clickhouse || undefined)]);
  const chArgs = clickhouse === undefined ? [] : ["--clickhouse", clickhouse.server.httpUrl];
  const nc = await nats.connect("failover-test");
  const metadata = await MetadataStore.open(nc, 3);
  await metadata.applyCurrent(spec);
  const stores = await openControlStores(nc, { replicas: 3 });
  const nodes = new Map<string, NodeProcess>();
  const c: ProxistCluster = {
    nats,
    nc,
    metadata,
    stores,
    clickhouse,
    nodes,
    spawn: async (ids) => {
      const procs = await Promise.all(
        ids.map((id) => spawnNodeProcess(nats.urls, { PX_REPLICAS: "3", PX_PLACEMENT_SETTLE_MS: TEST_SETTLE_MS, ...env }, ["--shards", "assigned", "--node-id", id, "--grpc-port", "0", ...chArgs, ...args])),
      );
      ids.forEach((id, i) => nodes.set(id, procs[i]!));
    },
    signal: async (id, sig) => {
      const p = nodes.get(id);
      if (!p) throw new Error(`no node ${id}`);
      if (sig === "SIGKILL") {
        await p.kill("SIGKILL");
        nodes.delete(id);
      } else p.child.kill(sig);
    },
    shardKeys: async () => {
      const catalog = new Map([...(await metadata.tenants())].map(([t, v]) => [t, new Map(v.spec.tables.map((s) => [s.name, s]))]));
      return shardsOfCatalog(catalog).map(shardKey);
    },
    liveShards: async (ids = [...nodes.keys()], digest = false) => {
      const out = new Map<string, [string, NodeShard][]>();
      await Promise.all(
        ids.map(async (id) => {
          const shards = await nodeShards(nodes.get(id)!.httpPort, digest).catch(() => new Map<string, NodeShard>());
          for (const [k, s] of shards) if (isLive(s)) out.set(k, [...(out.get(k) ?? []), [id, s]]);
        }),
      );
      return out;
    },
    close: async () => {
      for (const p of nodes.values()) {
        p.child.kill("SIGCONT");
        await p.kill("SIGKILL");
      }
      nodes.clear();
      await nats.close();
      if (ownClickhouse) await clickhouse?.close();
    },
  };
  return c;
}

/** Polls until every shard is live on exactly one of `ids` (returns when); throws with the last view on timeout. */
export async function waitEachShardLiveOnce(c: ProxistCluster, ids: readonly string[], timeoutMs: number, pollMs = 50): Promise<Map<string, [string, NodeShard][]>> {
  const keys = await c.shardKeys();
  const deadline = Date.now() + timeoutMs;
  let last = new Map<string, [string, NodeShard][]>();
  for (;;) {
    last = await c.liveShards(ids);
    if (keys.every((k) => last.get(k)?.length === 1)) return last;
    if (Date.now() > deadline) {
      const view = keys.map((k) => `${k}: ${(last.get(k) ?? []).map(([id]) => id).join("+") || "-"}`).join(", ");
      const logs = ids.map((id) => `--- ${id}\n${c.nodes.get(id)?.output().split("\n").slice(-20).join("\n")}`).join("\n");
      throw new Error(`shards not live exactly once on ${ids.join(",")} after ${timeoutMs} ms: ${view}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Waits until every node of `ids` owns a shard, then until every shard is live on exactly one of them: nodes that boot
 * later than the first settled one take shards only after the settle period (src/control/placement.ts).
 */
export async function waitSpread(c: ProxistCluster, ids: readonly string[], timeoutMs: number): Promise<Map<string, [string, NodeShard][]>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const owned = new Set([...(await c.stores.assignments.read()).values()].map((a) => a.node));
    if (ids.every((id) => owned.has(id))) break;
    if (Date.now() > deadline) throw new Error(`shards not spread over ${ids.join(",")} after ${timeoutMs} ms: owners ${[...owned].sort().join(",") || "none"}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return waitEachShardLiveOnce(c, ids, Math.max(1_000, deadline - Date.now()));
}

/** Waits until, on the nodes given, an unfenced sink of every bucket of `table` persisted the bucket's last WAL LSN. */
export async function waitPersistedOn(c: ProxistCluster, tenant: string, table: string, ids: readonly string[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let view = "";
  while (Date.now() < deadline) {
    const last = new Map<number, number>();
    for (const [lsn, r] of await walRows(c.nc, tenant, table)) last.set(r.bucket, Math.max(last.get(r.bucket) ?? 0, lsn));
    const persisted = new Map<number, number>();
    for (const id of ids) {
      const port = c.nodes.get(id)?.httpPort;
      if (port === undefined) continue;
      const shards = await nodeShards(port).catch(() => new Map<string, NodeShard>());
      for (const s of shards.values()) {
        const v = s as unknown as { tenant: string; table: string; bucket: number; sink: { persistedLsn: number; state: string } | null };
        if (v.tenant === tenant && v.table === table && v.sink !== null && v.sink.state !== "fenced") persisted.set(v.bucket, Math.max(persisted.get(v.bucket) ?? 0, v.sink.persistedLsn));
      }
    }
    view = JSON.stringify({ last: [...last], persisted: [...persisted] });
    if ([...last].every(([b, l]) => (persisted.get(b) ?? 0) >= l)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${tenant}.${table} not persisted on ${ids.join(",")} in ${timeoutMs} ms: ${view}`);
}
