// The coordinator side of fan-out over NATS request/reply: where each shard
// lives (px_assign, read at most every `assignCacheMs`), and a part sent to its
// owner on px.node.<owner>.qpart with a reply inbox that receives the answer in
// chunks. NATS because every node already holds a connection to it (no extra
// ports or peer addresses; subject permissions can scope it per node).
import { trace } from "@opentelemetry/api";
import { createInbox, headers } from "@nats-io/transport-node";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { PartTooLargeError } from "../../protocols/errors.js";
import { HDR_PART_LAST, HDR_PART_SEQ, queryCancelSubject, queryPartSubject } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { shardKey } from "../control/index.js";
import type { Assignment, AssignmentStore } from "../control/index.js";
import { decodePartReply, joinChunks } from "../query/index.js";
import { TRACEPARENT, traceparentOf, tracingOn } from "./obs/index.js";
import type { BucketPlace, ClusterParts, PartReply, PartRequest } from "../query/index.js";

export interface NatsPartsOptions {
  readonly nc: NatsConnection;
  readonly nodeId: string;
  readonly assignments: AssignmentStore;
  /** How long a read of px_assign is reused (default 250 ms: shards move after seconds). */
  readonly assignCacheMs?: number;
}

export function natsClusterParts(o: NatsPartsOptions): ClusterParts {
  let cached: { at: number; map: Promise<Map<string, Assignment>> } | undefined;
  const assignments = (fresh: boolean): Promise<Map<string, Assignment>> => {
    const now = Date.now();
    if (fresh || cached === undefined || now - cached.at > (o.assignCacheMs ?? 250)) {
      const map = o.assignments.read();
      cached = { at: now, map };
      // A failed read is not reused.
      map.catch(() => (cached = undefined));
    }
    return cached.map;
  };
  return {
    placement: async (tenant, spec, fresh) => {
      const map = await assignments(fresh === true);
      const out: BucketPlace[] = [];
      for (let bucket = 0; bucket < spec.shards; bucket++) {
        const a = map.get(shardKey({ tenant, table: spec.name, bucket }));
        if (a === undefined || a.node === "") out.push({ kind: "missing", why: "unowned (no node is assigned the shard in px_assign)" });
        else if (a.node === o.nodeId) out.push({ kind: "local" });
        else out.push({ kind: "remote", node: a.node });
      }
      return out;
    },
    run: (node, spec, req, signal) => runPart(o.nc, node, spec, req, signal),
  };
}

/**
 * One wildcard inbox subscription per connection for every part's reply
 * chunks (<prefix>.<n> per part), as src/ingest/replymux.ts does for requests:
 * a subscription per part cost a SUB and an UNSUB, each carried to every
 * server of the NATS cluster, per part.
 */
class PartInbox {
  readonly prefix: string;
  private readonly handlers = new Map<number, (err: Error | null, msg: Msg) => void>();
  private next = 1;

  constructor(private readonly nc: NatsConnection) {
    // The connection's inbox prefix: credentials may only receive under their own.
    this.prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
    const sub = nc.subscribe(`${this.prefix}*`, {
      callback: (err, msg) => {
        if (err !== null) {
          for (const h of this.handlers.values()) h(err, msg);
          return;
        }
        this.handlers.get(Number(msg.subject.slice(this.prefix.length)))?.(null, msg);
      },
    });
    void sub.closed.then(
      () => this.failAll(new Error("the part reply subscription closed (connection closed)")),
      (e: unknown) => this.failAll(e instanceof Error ? e : new Error(String(e))),
    );
  }

  /** A reply subject routed to `h` until the returned function is called. */
  open(h: (err: Error | null, msg: Msg) => void): { subject: string; close: () => void } {
    const id = this.next++;
    this.handlers.set(id, h);
    return { subject: this.prefix + id, close: () => void this.handlers.delete(id) };
  }

  private failAll(e: Error): void {
    inboxes.delete(this.nc);
    for (const h of [...this.handlers.values()]) h(e, undefined as unknown as Msg);
    this.handlers.clear();
  }
}

const inboxes = new WeakMap<NatsConnection, PartInbox>();

/** The connection's shared part inbox. */
function partInbox(nc: NatsConnection): PartInbox {
  let i = inboxes.get(nc);
  if (i === undefined) inboxes.set(nc, (i = new PartInbox(nc)));
  return i;
}

/** Room left in a message for the headers NATS adds (the trace parent, the reply subject). */
const HEADER_ROOM = 1024;

/**
 * The refusal of a part request too large for one NATS message (its symbol
 * list, in practice): INVALID_ARGUMENT naming the sizes and what to do.
 */
function partTooLarge(spec: TableSpec, node: string, req: PartRequest, bytes: number, maxPayload: number): PartTooLargeError {
  return new PartTooLargeError(
    `the part of table ${spec.name} asked of node ${node} is ${bytes} bytes (its symbol list: ${req.symbols?.length ?? 0} symbols), over what one NATS message carries here (max_payload ${maxPayload} bytes, less ${HEADER_ROOM} for headers): ` +
      `a cluster query sends each shard owner the symbols of its shards in one message; split the list over several queries, or leave it out to read every symbol`,
  );
}

/** Sends one part and gathers its chunked answer; on abort or deadline it tells the owner to cancel. */
export function runPart(nc: NatsConnection, node: string, spec: TableSpec, req: PartRequest, signal: AbortSignal | undefined): Promise<PartReply> {
  return new Promise<PartReply>((resolve, reject) => {
    const got: Uint8Array[] = [];
    let done = false;
    const finish = (err: Error | undefined, value?: PartReply): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      sub.close();
      if (err !== undefined) reject(err);
      else resolve(value!);
    };
    const cancel = (): void => nc.publish(queryCancelSubject(node), req.id);
    const onAbort = (): void => {
      cancel();
      finish(signal?.reason instanceof Error ? signal.reason : new Error("the query was cancelled"));
    };
    const sub = partInbox(nc).open((err, msg) => {
      if (err !== null) return finish(err);
      // NATS answers a request nobody listens to with an empty 503 status message.
      if (msg.data.length === 0 && (msg.headers?.code === 503 || msg.headers?.status === "503")) return finish(new Error(`no responders on ${queryPartSubject(node)} (node ${node} is down or not serving queries)`));
      const seq = Number(msg.headers?.get(HDR_PART_SEQ) ?? "0");
      // Chunks of one publisher arrive in order; a gap means a chunk was lost (slow consumer).
      if (seq !== got.length) return finish(new Error(`part reply chunk ${seq} arrived after ${got.length} chunks; a chunk was lost`));
      got.push(msg.data);
      if (msg.headers?.get(HDR_PART_LAST) !== "1") return;
      try {
        finish(undefined, decodePartReply(spec, joinChunks(got), req));
      } catch (e) {
        finish(e as Error);
      }
    });
    const timer = setTimeout(() => {
      cancel();
      finish(new Error(`no answer within the query deadline of ${req.timeoutMs} ms`));
    }, req.timeoutMs);
    if (signal?.aborted === true) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    // Tracing on: the active span (the coordinator's part span) becomes the parent of the owner's.
    const span = tracingOn() ? trace.getActiveSpan() : undefined;
    const tp = span === undefined ? undefined : traceparentOf(span);
    const h = tp === undefined ? undefined : headers();
    if (tp !== undefined) h!.set(TRACEPARENT, tp);
    // Encoded once: the size check and the publish see the same bytes.
    const body = Buffer.from(JSON.stringify(req));
    const max = nc.info?.max_payload;
    if (max !== undefined && body.length > max - HEADER_ROOM) return finish(partTooLarge(spec, node, req, body.length, max));
    try {
      nc.publish(queryPartSubject(node), body, { reply: sub.subject, ...(h === undefined ? {} : { headers: h }) });
    } catch (e) {
      // A closed connection: the part fails now, not at its deadline.
      finish(e instanceof Error ? e : new Error(String(e)));
    }
  });
}
