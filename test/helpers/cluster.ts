// Integration-test fixtures: a real nats-server on free ports with a temp data
// dir, locked like production (JWT auth), and an in-process Proxist node on it
// with the default spec applied. Every server of a test process trusts one
// test identity, whose service credentials the process and the node processes
// it spawns connect with ($PX_NATS_CREDS).
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../../src/runtime/servers/nats.js";
import { loadOrCreateNatsAuth } from "../../src/runtime/servers/natsauth.js";
import type { NatsAuthFiles } from "../../src/runtime/servers/natsauth.js";
import { NATS_CREDS_ENV, natsCredsOptions } from "../../src/runtime/natsclient.js";
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

let identity: Promise<NatsAuthFiles> | undefined;
let identityDir: string | undefined;

/** Removes the test process's NATS identity (test/helpers/teardown.ts, after each int test file). */
export function disposeTestNatsAuth(): void {
  if (identityDir !== undefined) rmSync(identityDir, { recursive: true, force: true });
  identity = identityDir = undefined;
}

/** The test process's NATS identity (created once); sets $PX_NATS_CREDS to its service credentials. */
export function testNatsAuth(): Promise<NatsAuthFiles> {
  if (identity === undefined) {
    const dir = (identityDir = mkdtempSync(join(tmpdir(), "px-auth-")));
    identity = loadOrCreateNatsAuth(join(dir, "auth")).then((files) => {
      process.env[NATS_CREDS_ENV] = files.credsPath("service");
      return files;
    });
  }
  return identity;
}

/** Connection options with the test identity's service (or admin) credentials. */
export async function serviceCreds(which: "service" | "admin" = "service"): Promise<ReturnType<typeof natsCredsOptions>> {
  return natsCredsOptions((await testNatsAuth()).credsPath(which));
}

/** `maxPayloadBytes`: the server's max_payload (default 8 MiB, as in infra/nats/nats.conf); `maxFileStore`: JetStream's max_file_store. */
export async function natsFixture(o: { readonly maxPayloadBytes?: number; readonly maxFileStore?: string } = {}): Promise<NatsFixture> {
  const server = await startNatsServer({ auth: await testNatsAuth(), ...o });
  const nc = await connect({ servers: server.url, ...(await serviceCreds()) });
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
  // Generous: on a loaded CI machine creating a tenant's streams can take a JetStream timeout or two, and
  // while the compose test builds its images JetStream was seen stalled for over 30 s (the node retries
  // the catalog with backoff capped at 5 s, so it is ready soon after). Still within the 120 s test timeout.
  const deadline = Date.now() + 90_000;
  let last = "";
  while (Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${node.httpPort}/readyz`);
    if (res.ok) return;
    last = (await res.text()).trim();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`node did not become ready in 90 s; /readyz said: ${last}`);
}

export async function nodeOn(server: NatsServer, nc: NatsConnection, o: Partial<NodeOptions> = {}, spec: ClusterSpec = DEFAULT_CLUSTER_SPEC): Promise<ProxistNode> {
  await applyAndWait(nc, spec);
  const node = await startNode({ natsUrl: server.url, log: () => {}, ...o });
  await applyAndWait(nc, spec, node);
  return node;
}
