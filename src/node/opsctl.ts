// Operations requests to every node (px.ctl.ops.<verb>, no queue group: each
// node answers for the shards it hosts and pxctl gathers the replies):
// `compact` (a dry-run plan, or a compaction run through the workflow),
// `snapshot` (write the shards' snapshots now) and `drain` (the node named in
// the request hands its shards to the others; the rest ignore it). Each run is
// recorded in the event log.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { compactionKey, opsSubject } from "../../protocols/subjects.js";
import { describePlan, recordEvent } from "../wal/index.js";
import type { CompactionRuntime } from "./compaction.js";
import type { LocalShardHost } from "./shard/host.js";

/** A request body: `shards` limits it to these keys (tenant.table.bucket) or prefixes (tenant.table, tenant). */
export interface OpsRequest {
  readonly shards?: readonly string[];
  readonly dryRun?: boolean;
  /** drain: the node that is to hand its shards away. */
  readonly node?: string;
}

export interface OpsShardLine {
  readonly shard: string;
  readonly ok: boolean;
  readonly message: string;
  readonly lsn?: number;
  readonly cut?: number;
}

export interface OpsReply {
  readonly node: string;
  readonly lines: readonly OpsShardLine[];
  readonly error?: string;
}

const matches = (key: string, wanted: readonly string[] | undefined): boolean => wanted === undefined || wanted.length === 0 || wanted.some((w) => key === w || key.startsWith(`${w}.`));

export interface OpsControlOptions {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly nodeId: string;
  readonly shards: LocalShardHost;
  readonly compaction: CompactionRuntime | undefined;
  /** Hands this node's shards to the others, then stops its control plane (--shards assigned only). */
  readonly drain?: () => Promise<void>;
  readonly log: (line: string) => void;
}

export function serveOpsControl(o: OpsControlOptions): { stop(): void } {
  let draining = false;
  const sub: Subscription = o.nc.subscribe(opsSubject("*"), {
    callback: (err, msg) => {
      if (err !== null) return;
      const verb = msg.subject.split(".").at(-1) ?? "";
      let body: OpsRequest;
      try {
        body = msg.data.length === 0 ? {} : (JSON.parse(new TextDecoder().decode(msg.data)) as OpsRequest);
      } catch {
        msg.respond(JSON.stringify({ node: o.nodeId, lines: [], error: "the request is not JSON" } satisfies OpsReply));
        return;
      }
      const reply = verb === "drain" ? drain(o, body, draining, () => (draining = true)) : handle(o, verb, body);
      reply.then(
        (reply) => msg.respond(JSON.stringify(reply)),
        (e: unknown) => msg.respond(JSON.stringify({ node: o.nodeId, lines: [], error: (e as Error).message } satisfies OpsReply)),
      );
    },
  });
  return { stop: () => sub.unsubscribe() };
}

/** Starts the drain when `body.node` is this node (answers at once; pxctl follows the move in the cluster status). */
async function drain(o: OpsControlOptions, body: OpsRequest, already: boolean, started: () => void): Promise<OpsReply> {
  if (body.node !== o.nodeId) return { node: o.nodeId, lines: [] };
  const shards = o.shards.all().length;
  if (o.drain === undefined) {
    return { node: o.nodeId, lines: [], error: `node ${o.nodeId} runs standalone (--shards all): no other node takes its shards; stop it instead, or run the nodes with --shards assigned` };
  }
  if (already) return { node: o.nodeId, lines: [{ shard: "*", ok: true, message: `already draining: ${shards} shards left here` }] };
  started();
  const message = `draining: handing ${shards} shards to the other nodes; the node leaves the control plane once they are gone (restart it to rejoin)`;
  await recordEvent(o.js, { atMs: Date.now(), kind: "node.drain", node: o.nodeId, message }).catch(() => {});
  o.log(`node ${o.nodeId}: ${message}`);
  o.drain().then(
    () => o.log(`node ${o.nodeId}: drained; its control plane stopped`),
    (e: unknown) => o.log(`node ${o.nodeId}: drain failed: ${(e as Error).message}`),
  );
  return { node: o.nodeId, lines: [{ shard: "*", ok: true, message }] };
}

async function handle(o: OpsControlOptions, verb: string, body: OpsRequest): Promise<OpsReply> {
  const hosted = o.shards.all().filter((h) => matches(compactionKey(h.shard), body.shards));
  const keys = hosted.map((h) => compactionKey(h.shard));
  switch (verb) {
    case "snapshot": {
      const lines: OpsShardLine[] = [];
      for (const h of hosted) {
        const shard = compactionKey(h.shard);
        try {
          const lsn = await h.runtime.snapshotNow();
          lines.push({ shard, ok: true, lsn, message: `snapshot at LSN ${lsn}` });
        } catch (e) {
          lines.push({ shard, ok: false, message: (e as Error).message });
        }
      }
      if (lines.length > 0) {
        const message = lines.map((l) => `${l.shard}: ${l.message}`).join("; ");
        await recordEvent(o.js, { atMs: Date.now(), kind: "snapshot.requested", node: o.nodeId, message }).catch(() => {});
      }
      return { node: o.nodeId, lines };
    }
    case "compact": {
      if (o.compaction === undefined) return { node: o.nodeId, lines: [], ...(hosted.length === 0 ? {} : { error: "this node has no ClickHouse: nothing is persisted, so nothing may be compacted" }) };
      if (hosted.length === 0) return { node: o.nodeId, lines: [] };
      if (body.dryRun === true) {
        const plans = await o.compaction.plan(keys);
        return { node: o.nodeId, lines: plans.map((p) => ({ shard: compactionKey(p.shard), ok: true, cut: p.cut, message: `dry run: ${describePlan(p)}` })) };
      }
      const run = await o.compaction.compactNow(keys);
      const purged = new Map(run.results.map((r) => [compactionKey(r.plan.shard), r.purged]));
      return {
        node: o.nodeId,
        lines: run.plans.map((p) => {
          const key = compactionKey(p.shard);
          const n = purged.get(key);
          return { shard: key, ok: run.error === undefined, cut: p.cut, message: n === undefined ? describePlan(p) : `${describePlan(p)}: ${n} records purged` };
        }),
        ...(run.error === undefined ? {} : { error: run.error }),
      };
    }
    default:
      return { node: o.nodeId, lines: [], error: `unknown operations verb ${verb} (compact, snapshot, drain)` };
  }
}
