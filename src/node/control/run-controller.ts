// A controller (and optionally the control-message server) in its own process:
// `node --import tsx src/node/control/run-controller.ts --nats URL[,URL] --id c1`.
// Integration tests run it as a child to SIGSTOP/SIGCONT a leader. It prints one
// JSON object per line (ready, elected, steppedDown, assigned, role) on stdout
// and releases its lease on SIGTERM.
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { controlBackend, MetadataStore, startControlServer } from "../../control/index.js";
import { startController } from "./runtime.js";
import { placementSettleMs } from "./settle.js";
import { NATS_CREDS_ENV, TLS_CA_ENV, natsCredsOptions, natsTlsOptions } from "../../runtime/natsclient.js";

const { values } = parseArgs({
  options: {
    nats: { type: "string", default: process.env.PX_NATS_URL ?? "nats://127.0.0.1:4222" },
    id: { type: "string", default: `ctl-${process.pid}` },
    replicas: { type: "string", default: "1" },
    "lease-ms": { type: "string", default: "5000" },
    "node-timeout-ms": { type: "string", default: "5000" },
    "reconcile-ms": { type: "string", default: "1000" },
    "settle-ms": { type: "string", default: String(placementSettleMs()) },
    "serve-control": { type: "boolean", default: false },
  },
});

const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ at: Date.now(), id: values.id, ...o }) + "\n");
};

const nc = await connect({ servers: values.nats.split(","), name: `proxist controller ${values.id}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...natsCredsOptions(process.env[NATS_CREDS_ENV]), ...natsTlsOptions(process.env[TLS_CA_ENV]) });
const replicas = Number(values.replicas);
const metadata = await MetadataStore.open(nc, replicas);
const ctl = await startController(nc, {
  id: values.id,
  replicas,
  leaseMs: Number(values["lease-ms"]),
  nodeTimeoutMs: Number(values["node-timeout-ms"]),
  reconcileMs: Number(values["reconcile-ms"]),
  settleMs: Number(values["settle-ms"]),
  log: (line) => process.stderr.write(line + "\n"),
});
ctl.actor.on("elected", (e) => out({ event: "elected", term: e.term, revision: e.revision }));
ctl.actor.on("steppedDown", (e) => out({ event: "steppedDown", reason: e.reason }));
ctl.actor.on("assigned", (e) => out({ event: "assigned", term: e.term, writes: e.writes.length, lastRevision: e.lastRevision }));
let role = ctl.role();
ctl.actor.subscribe((s) => {
  const r = ctl.role();
  if (r !== role) out({ event: "role", role: r, from: role, term: s.context.lease?.record.term });
  role = r;
});
const server = values["serve-control"] ? startControlServer(nc, controlBackend(metadata, ctl.stores)) : undefined;
out({ event: "ready", role: ctl.role() });

const shutdown = async (): Promise<void> => {
  await ctl.stop();
  await server?.stop();
  await nc.drain().catch(() => {});
  out({ event: "exit" });
  process.exit(0);
};
process.once("SIGTERM", () => void shutdown());
process.once("SIGINT", () => void shutdown());
