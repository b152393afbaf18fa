// px.ctl.* on a standalone node (`--shards all`): no controller runs, so the node
// answers pxctl itself with a state built from its own shards and px_config
// (src/control/standalone.ts). apply writes px_config as on a cluster.
import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import { startControlServer, standaloneState } from "../control/index.js";
import type { ControlBackend, ControlServer, MetadataStore } from "../control/index.js";
import type { LocalShardHost } from "./shard/host.js";
import { SOFTWARE_VERSION } from "./control/index.js";

/** The ClickHouse URL as pxctl shows it: scheme, host, port and path; no user, password or query. */
export function clickhouseDisplay(url: string | undefined): string {
  if (url === undefined) return "none";
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}

export interface StandaloneControlOptions {
  readonly nodeId: string;
  readonly apiPort: number;
  readonly clickhouse: string;
  readonly host: LocalShardHost;
  readonly metadata: MetadataStore;
  readonly log: (line: string) => void;
}

export function standaloneBackend(o: StandaloneControlOptions): ControlBackend {
  return {
    readState: async () =>
      standaloneState({
        nowMs: Date.now(),
        nodeId: o.nodeId,
        address: `${hostname()}:${o.apiPort}`,
        softwareVersion: SOFTWARE_VERSION,
        clickhouse: o.clickhouse,
        shards: o.host.status(),
        tenants: (await o.metadata.snapshot()).tenants,
      }),
    tenants: async () => (await o.metadata.snapshot()).tenants,
    apply: (spec, expected) => o.metadata.apply(spec, expected),
  };
}

export function startStandaloneControl(nc: NatsConnection, o: StandaloneControlOptions): ControlServer {
  return startControlServer(nc, standaloneBackend(o), { log: o.log });
}
