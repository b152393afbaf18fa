// Test-only entry point: a Proxist node (`proxist node` flags) whose IO is
// wrapped with the faults named in PX_FAILPOINTS, for crash tests that need a
// power cut at an exact place. Production code has no failpoints: the faults
// live here, in front of the IO interfaces the node takes (NodeSeams, the
// sink's flushIo). Started by test/helpers/nodeproc.ts when PX_FAILPOINTS is set.
//
// Faults (comma-separated in PX_FAILPOINTS), each a SIGKILL of this process:
//   gateway.after-append  JetStream stored a batch, the gateway has not acked it
//   snapshot.after-data   a snapshot's data object is written, its manifest not
//   sink.before-insert    a flush is about to send its INSERT
//   sink.mid-insert       half of an INSERT's rows sent (cut at a row boundary)
//   sink.after-insert     an INSERT committed, its watermark not yet published
// Sink faults fire only after PX_SINK_FAILPOINTS_AFTER INSERTs of this process
// succeeded, so the crash has history behind it. One fault stalls instead:
//   sink.stalled-insert   every INSERT waits PX_SINK_STALL_MS (default 2000) before
//                         it is sent and is then sent deaf to the sink's abort (a
//                         client stuck in a GC pause whose request cannot be
//                         recalled): a node SIGSTOPped mid-ingest surely holds a
//                         batch it has not sent, and only the sink's permit,
//                         checked right before the request, can stop it.
// And one blocks the main thread without stopping the process:
//   main.block-on-sigusr2 each SIGUSR2 runs a synchronous loop of PX_BLOCK_MS
//                         (default 5000) on the main thread, as a long query
//                         does; worker threads (the heartbeat thread) go on.
import { request } from "node:http";
import { parseArgs } from "node:util";
import type { ObjectStore } from "@nats-io/obj";
import { insertRowBinarySql } from "../../src/clickhouse/index.js";
import { startNode } from "../../src/node/node.js";
import type { NodeSeams } from "../../src/node/node.js";
import type { WrapFlushIo } from "../../src/node/sink/runtime.js";
import { encodeInsert } from "../../src/sink/index.js";
import type { FlushIo, InsertPlan, SinkClickhouse } from "../../src/sink/index.js";
import type { TableSpec } from "../../protocols/tablespec.js";

const armed = new Set((process.env.PX_FAILPOINTS ?? "").split(",").filter(Boolean));
const sinkAfter = Number(process.env.PX_SINK_FAILPOINTS_AFTER ?? 0);
const stallMs = Number(process.env.PX_SINK_STALL_MS ?? 2_000);
let inserts = 0;

function die(): never {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable: SIGKILL");
}

const sinkArmed = (name: string): boolean => armed.has(name) && inserts >= sinkAfter;

if (armed.has("main.block-on-sigusr2")) {
  const blockMs = Number(process.env.PX_BLOCK_MS ?? 5_000);
  process.on("SIGUSR2", () => {
    const end = Date.now() + blockMs;
    while (Date.now() < end) {
      // A synchronous computation: nothing else runs on this thread meanwhile.
    }
  });
}

/**
 * Sends the first half of the INSERT's rows (cut at a row boundary, as a client
 * killed between two socket writes) and dies. ClickHouse 18.16 commits that
 * prefix: the restarted sink finds the LSNs partly landed.
 */
async function insertHalfAndDie(ch: SinkClickhouse, tenant: string, spec: TableSpec, plan: InsertPlan, bucket: number, queryId: string): Promise<never> {
  const body = encodeInsert(spec, plan, bucket);
  const half = Math.max(1, Math.floor(plan.rows / 2));
  const prefix = encodeInsert(spec, { ...plan, rows: half, batch: { ...plan.batch, rows: half } }, bucket);
  const url = new URL(ch.url);
  url.searchParams.set("query", insertRowBinarySql(tenant, spec));
  url.searchParams.set("query_id", queryId);
  // The whole body's length: the server waits for the rest, which never comes.
  const req = request(url, { method: "POST", headers: { "Content-Length": body.length, "Content-Type": "application/octet-stream" } });
  req.on("error", () => {});
  await new Promise<void>((resolve) => req.write(prefix, () => resolve()));
  // Let the kernel hand the bytes to the server before the process dies.
  await new Promise((r) => setTimeout(r, 50));
  return die();
}

const flushIo: WrapFlushIo = (io, { shard, spec, clickhouse }): FlushIo => ({
  ...io,
  insert: async (plan, queryId, signal) => {
    if (sinkArmed("sink.before-insert")) die();
    if (sinkArmed("sink.mid-insert")) await insertHalfAndDie(clickhouse, shard.tenant, spec, plan, shard.bucket, queryId);
    if (sinkArmed("sink.stalled-insert")) {
      await new Promise((r) => setTimeout(r, stallMs));
      // The real insert checks the sink's permit right before the request: a fenced sink sends nothing.
      await io.insert(plan, queryId, undefined);
    } else await io.insert(plan, queryId, signal);
    if (sinkArmed("sink.after-insert")) die();
    inserts++;
  },
});

/** The object store, except that writing a manifest kills the process: its data object is already stored. */
const snapshotObjects = (os: ObjectStore): ObjectStore =>
  new Proxy(os, {
    get(target, prop, receiver) {
      if (prop === "putBlob") {
        return (meta: { name: string }, data: Uint8Array | null) => {
          if (meta.name.endsWith(".manifest")) die();
          return target.putBlob(meta, data);
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });

const seams: NodeSeams = {
  ...(armed.has("gateway.after-append") ? { afterAppend: () => die() } : {}),
  ...(armed.has("snapshot.after-data") ? { snapshotObjects } : {}),
};

const int = (v: string | undefined, fallback: number): number => (v === undefined ? fallback : Number(v));

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "node") args.shift();
  const { values } = parseArgs({
    args,
    options: {
      nats: { type: "string" },
      clickhouse: { type: "string" },
      "http-port": { type: "string" },
      "grpc-port": { type: "string" },
      "node-id": { type: "string" },
      "snapshot-interval-ms": { type: "string" },
      shards: { type: "string" },
      replicas: { type: "string" },
    },
  });
  if (values.nats === undefined) throw new Error("faultnode: --nats is required");
  const shards = values.shards ?? "all";
  if (shards !== "all" && shards !== "none" && shards !== "assigned") throw new Error(`faultnode: --shards must be all, none or assigned, got "${shards}"`);
  const unsafeSkipLandedCheck = process.env.PX_SINK_UNSAFE_SKIP_LANDED_CHECK === "1";
  console.log(`faultnode: armed ${[...armed].join(", ") || "nothing"} (sink faults after ${sinkAfter} inserts)`);
  const node = await startNode({
    natsUrl: values.nats,
    httpPort: int(values["http-port"], 0),
    grpcPort: int(values["grpc-port"], 0),
    replicas: int(values.replicas ?? process.env.PX_REPLICAS, 1),
    snapshotIntervalMs: int(values["snapshot-interval-ms"], 60_000),
    shards,
    seams,
    sink: { flushIo, ...(unsafeSkipLandedCheck ? { unsafeSkipLandedCheck } : {}) },
    ...(values["node-id"] === undefined ? {} : { nodeId: values["node-id"] }),
    ...(values.clickhouse === undefined ? {} : { clickhouseUrl: values.clickhouse }),
  });
  const stop = (): void => void node.stop().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e: unknown) => {
  console.error(`faultnode: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
