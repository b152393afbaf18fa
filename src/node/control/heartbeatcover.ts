// The heartbeat cover: a worker thread that keeps this node's heartbeat in
// px_nodes going while the main thread is busy (a long synchronous query,
// a large snapshot export), up to a grace. Heartbeats used to be put from
// the main thread only, so any block longer than the node timeout (2 s)
// made the leader move the node's shards away, and a heavy query on a
// cluster caused a failover. A main thread blocked past the grace (hung,
// or a runaway query) still stops the heartbeats; SIGSTOP stops both threads.
// The main thread reports every heartbeat it puts (`sent`); `stop` ends the
// thread before the agent deletes the heartbeat, so it is never put again.
import { Worker } from "node:worker_threads";
import { encodeHeartbeatInfo } from "../../control/index.js";
import type { HeartbeatInfo } from "../../control/index.js";
import { KV_NODES } from "../../../protocols/subjects.js";
import { workerEntry } from "../workerentry.js";
import { COVER_LAST_PUT, COVER_MAIN_PUT, COVER_MAIN_TICK, COVER_SLOTS } from "./heartbeatslots.js";
import type { CoverConfig, CoverMessage } from "./heartbeatslots.js";

const WORKER = workerEntry("heartbeatworker", import.meta.url);
const MAIN_TICK_MS = 100;

export interface HeartbeatCoverOptions {
  readonly nodeId: string;
  readonly servers: string | string[];
  readonly credsPath: string | undefined;
  readonly caPath: string | undefined;
  readonly periodMs: number;
  /** Longest main-thread block the cover bridges (PX_HEARTBEAT_GRACE_MS; default 15 s, under the agent's isolation time). */
  readonly graceMs: number;
  readonly log: (line: string) => void;
}

export interface HeartbeatCover {
  /** The main thread stored this heartbeat now. */
  sent(info: HeartbeatInfo): void;
  stop(): Promise<void>;
}

export function startHeartbeatCover(o: HeartbeatCoverOptions): HeartbeatCover {
  const shared = new SharedArrayBuffer(COVER_SLOTS * 8);
  const slots = new BigInt64Array(shared);
  const tick = (): void => {
    Atomics.store(slots, COVER_MAIN_TICK, BigInt(Date.now()));
  };
  tick();
  const ticker = setInterval(tick, MAIN_TICK_MS);
  ticker.unref();
  const config: CoverConfig = { servers: o.servers, name: `proxist ${o.nodeId}`, credsPath: o.credsPath, caPath: o.caPath, subject: `$KV.${KV_NODES}.${o.nodeId}`, periodMs: o.periodMs, graceMs: o.graceMs, shared };
  const worker = new Worker(WORKER.url, { workerData: config, execArgv: WORKER.execArgv });
  worker.unref();
  let stopped = false;
  worker.on("message", (m: CoverMessage) => {
    if (m.type === "ready") o.log(`node ${o.nodeId}: heartbeat thread running (it keeps the heartbeat while the main thread is blocked, up to ${o.graceMs} ms)`);
    else if (m.type === "covered") o.log(`node ${o.nodeId}: the main thread was busy for ${m.busyMs} ms; the heartbeat thread kept the node's heartbeat (${m.puts} puts)`);
    else if (m.type === "error") o.log(`node ${o.nodeId}: heartbeat thread failed (${m.message}); heartbeats come from the main thread only`);
  });
  worker.on("error", (e) => o.log(`node ${o.nodeId}: heartbeat thread failed (${e.message}); heartbeats come from the main thread only`));
  return {
    sent: (info) => {
      if (stopped) return;
      tick();
      const now = BigInt(Date.now());
      Atomics.store(slots, COVER_LAST_PUT, now);
      Atomics.store(slots, COVER_MAIN_PUT, now);
      worker.postMessage({ type: "latest", bytes: encodeHeartbeatInfo(info) });
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(ticker);
      await worker.terminate();
    },
  };
}

/** The grace from PX_HEARTBEAT_GRACE_MS (0 turns the cover off: heartbeats from the main thread only). */
export function heartbeatGraceMs(env: Record<string, string | undefined> = process.env): number {
  const raw = env.PX_HEARTBEAT_GRACE_MS;
  if (raw === undefined || raw === "") return 15_000;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new Error(`PX_HEARTBEAT_GRACE_MS=${raw}: must be a number of milliseconds >= 0 (0 turns the heartbeat thread off); unset it for the default 15000`);
  return v;
}
