// The owner side of fan-out: serves query parts for the shards this node hosts
// on px.node.<id>.qpart (stitched series, hot + cold under the seam rule, with
// each bucket's status) and cancels a running part on px.node.<id>.qcancel.
// Started with the node's API; stop() unsubscribes and aborts running parts.
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { Span } from "@opentelemetry/api";
import { headers } from "@nats-io/transport-node";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { HDR_PART_LAST, HDR_PART_SEQ, queryCancelSubject, queryPartSubject } from "../../protocols/subjects.js";
import type { Catalog } from "../catalog.js";
import { answerPart, chunks, encodePartError, encodePartReply, readinessOf } from "../query/index.js";
import type { ColdSource, HotShard, PartRequest } from "../query/index.js";
import { TRACEPARENT, childSpan, tracingOn } from "./obs/index.js";
import type { LocalShardHost } from "./shard/host.js";

export interface PartServerOptions {
  readonly nc: NatsConnection;
  readonly nodeId: string;
  readonly catalog: () => Catalog;
  readonly shards: LocalShardHost;
  readonly cold: ColdSource | undefined;
  /** Longest minLsn wait on this node (default 5 s, bounded by the part's own timeout). */
  readonly minLsnTimeoutMs?: number;
  readonly log: (line: string) => void;
}

export interface PartServer {
  /** Parts running now. */
  running(): number;
  stop(): void;
}

export function servePartQueries(o: PartServerOptions): PartServer {
  const running = new Map<string, AbortController>();
  const subs: Subscription[] = [];
  subs.push(
    o.nc.subscribe(queryPartSubject(o.nodeId), {
      callback: (err, msg) => {
        if (err !== null || msg.reply === undefined) return;
        void handle(o, running, msg);
      },
    }),
  );
  subs.push(
    o.nc.subscribe(queryCancelSubject(o.nodeId), {
      callback: (err, msg) => {
        if (err !== null) return;
        running.get(msg.string())?.abort(new Error("the coordinator cancelled the query"));
      },
    }),
  );
  return {
    running: () => running.size,
    stop: () => {
      for (const s of subs) s.unsubscribe();
      for (const c of running.values()) c.abort(new Error("the node is stopping"));
    },
  };
}

async function handle(o: PartServerOptions, running: Map<string, AbortController>, msg: Msg): Promise<void> {
  let req: PartRequest | undefined;
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let bytes: Uint8Array;
  // A traced coordinator sent its part span's traceparent: the owner's work joins that trace.
  const tp = tracingOn() ? msg.headers?.get(TRACEPARENT) : undefined;
  let span: Span | undefined;
  try {
    req = msg.json<PartRequest>();
    if (tp) span = childSpan("px.query.part.serve", tp, { kind: SpanKind.SERVER, attributes: { "px.node": o.nodeId, "px.tenant": req.tenant, "px.table": req.table, "px.buckets": req.buckets.join(",") } });
    const table = o.catalog().get(req.tenant)?.get(req.table);
    if (table === undefined) throw new Error(`node ${o.nodeId} has no table ${req.tenant}.${req.table} in its catalog (the spec is not applied here yet)`);
    running.set(req.id, ctl);
    timer = setTimeout(() => ctl.abort(new Error(`the part's deadline of ${req!.timeoutMs} ms passed`)), req.timeoutMs);
    const hosted = o.shards
      .all()
      .filter((h) => h.shard.tenant === req!.tenant && h.shard.table === req!.table)
      .map((h): HotShard => ({
          bucket: h.shard.bucket,
          // Read when the rows are read: a shard recovering now swaps in its snapshot's table once loaded.
          get table() {
            return h.runtime.table;
          },
          waitForLsn: (lsn, ms) => h.runtime.waitForLsn(lsn, ms), readiness: () => readinessOf(h.runtime) }));
    const reply = await answerPart(req, table, hosted, o.cold, ctl.signal, { nodeId: o.nodeId, minLsnWaitMs: o.minLsnTimeoutMs ?? 5_000 });
    bytes = encodePartReply(table, reply);
    span?.setAttributes({ "px.symbols": reply.rows?.symbols.length ?? reply.series.length, "px.cold_rows": reply.coldRows });
  } catch (e) {
    bytes = encodePartError(`node ${o.nodeId}: ${(e as Error).message}`);
    span?.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
  } finally {
    span?.end();
    clearTimeout(timer);
    if (req !== undefined) running.delete(req.id);
  }
  if (ctl.signal.aborted) return;
  // Leave room for the headers under the server's payload limit.
  const max = Math.max(4096, (o.nc.info?.max_payload ?? 1 << 20) - 1024);
  const parts = chunks(bytes, max);
  parts.forEach((p, i) => {
    const h = headers();
    h.set(HDR_PART_SEQ, String(i));
    if (i === parts.length - 1) h.set(HDR_PART_LAST, "1");
    o.nc.publish(msg.reply!, p, { headers: h });
  });
}

