// Worker thread body of the heartbeat cover (./heartbeatcover.ts): its own
// NATS connection, and a timer that re-puts the node's last heartbeat into
// px_nodes when no heartbeat went out for a period,
// as long as the main thread ticked within the grace. A long synchronous
// query on the main thread then no longer looks like a dead node (its shards
// stay), while a hung main thread still stops the heartbeats after the grace.
import { parentPort, workerData } from "node:worker_threads";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { natsCredsOptions, natsTlsOptions } from "../../runtime/natsclient.js";
import { COVER_LAST_PUT, COVER_MAIN_PUT, COVER_MAIN_TICK } from "./heartbeatslots.js";
import type { CoverConfig, CoverMessage } from "./heartbeatslots.js";

const port = parentPort;
if (port !== null) {
  const c = workerData as CoverConfig;
  const slots = new BigInt64Array(c.shared);
  let latest: Uint8Array | undefined;
  let covered = 0;
  let busySince: number | undefined;
  port.on("message", (m: { type: "latest"; bytes: Uint8Array }) => (latest = m.bytes));
  const say = (m: CoverMessage): void => port.postMessage(m);
  const main = async (): Promise<void> => {
    const nc = await connect({ servers: c.servers, name: `${c.name} heartbeat cover`, maxReconnectAttempts: -1, ...natsCredsOptions(c.credsPath), ...natsTlsOptions(c.caPath) });
    const js = jetstream(nc, { timeout: Math.max(250, c.periodMs) });
    let putting = false;
    const timer = setInterval(() => {
      const now = Date.now();
      const lastPut = Number(Atomics.load(slots, COVER_LAST_PUT));
      const mainPut = Number(Atomics.load(slots, COVER_MAIN_PUT));
      const mainTick = Number(Atomics.load(slots, COVER_MAIN_TICK));
      // The main thread puts again: report the busy spell this thread bridged.
      if (busySince !== undefined && mainPut > busySince) {
        say({ type: "covered", puts: covered, busyMs: mainPut - busySince });
        covered = 0;
        busySince = undefined;
      }
      // A heartbeat went out within the period, or the main thread is past the grace (let the node look dead).
      if (latest === undefined || putting || now - lastPut < c.periodMs || now - mainTick > c.graceMs) return;
      busySince ??= mainTick;
      putting = true;
      js.publish(c.subject, latest).then(
        () => {
          covered++;
          Atomics.store(slots, COVER_LAST_PUT, BigInt(now));
          putting = false;
        },
        () => (putting = false),
      );
    }, Math.max(25, Math.floor(c.periodMs / 4)));
    port.on("close", () => {
      clearInterval(timer);
      void nc.close();
    });
    say({ type: "ready" });
  };
  main().catch((e: unknown) => say({ type: "error", message: (e as Error).message }));
}
