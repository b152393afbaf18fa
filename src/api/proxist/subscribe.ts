// proxist.v1.ProxistFeeds/Subscribe: an ad-hoc feed living with the call. An
// ordered JetStream consumer reads the feed's WAL subjects in LSN order into a
// FeedSession (src/feed); a watermark consumer tells it each shard's P; the
// call writes what the session releases. A consumer slower than the buffer
// ends with RESOURCE_EXHAUSTED naming the offset to resume from.
import { create } from "@bufbuild/protobuf";
import type { Schema } from "apache-arrow";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import { FeedMessageSchema } from "../../../protocols/gen/proxist/v1/feed_pb.js";
import type { FeedMessage, SubscribeRequest } from "../../../protocols/gen/proxist/v1/feed_pb.js";
import { decodeWatermark } from "../../../protocols/codec.js";
import { parseWalSubject, walStream, walSubject, walSubjectsOfTable, walSubjectsOfTenant, watermarkStream, watermarkSubjectsOfTenant } from "../../../protocols/subjects.js";
import { FeedSession, decodeOffset, encodeOffset, feedTables, planFeed, shardKey } from "../../feed/index.js";
import type { FeedBatch, FeedFrom, FeedOffset, FeedPlan } from "../../feed/index.js";
import { arrowSchema, toRecordBatches } from "../../query/index.js";
import { compactionFloor, decodeWalEntry } from "../../wal/index.js";
import { batchToIpc, schemaToIpc } from "../arrowout.js";
import { authenticate, authorize } from "../auth.js";
import { controlCall, writeFlowing } from "../callctl.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import { ApiError } from "../errors.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";
import { presentBatch, presentSchema } from "../presentation.js";
import { parseQuery } from "../queryjson.js";

/** Messages a subscription holds for a slow consumer by default, and at most. */
export const DEFAULT_FEED_BUFFER = 1024;
export const MAX_FEED_BUFFER = 65_536;

async function lastSeqOn(jsm: JetStreamManager, tenant: string, table: string, bucket: number): Promise<number> {
  const m = await jsm.streams.getMessage(walStream(tenant), { last_by_subj: walSubject(tenant, table, bucket) }).catch(() => null);
  return m?.seq ?? 0;
}

export function subscribeHandler(ctx: ApiContext) {
  return (call: ServerWritableStream<Decoded<SubscribeRequest>, FeedMessage>): void => {
    const ctl = controlCall(call);
    const stops: (() => void)[] = [];
    void (async () => {
      const principal = await authenticate(ctx.tokens, call.metadata);
      authorize(principal, "query");
      const req = unwrap(call.request);
      const tenant = principal.tenant;
      const query = parseQuery(principal, req.feedJson, "feed_json");
      const catalog = ctx.node.catalog().get(tenant);
      const plan = planFeed(tenant, req.lateness === "" ? { query } : { query, lateness: req.lateness }, (t) => catalog?.get(t), () => [...(catalog?.keys() ?? [])]);
      const tables = feedTables(plan);
      const from: FeedFrom = req.from === "" || req.from === "now" ? "now" : req.from === "snapshot" ? "snapshot" : decodeOffset(req.from, plan.fingerprint, tables);
      const maxBuffer = req.maxBuffer === 0 ? DEFAULT_FEED_BUFFER : Math.min(req.maxBuffer, MAX_FEED_BUFFER);
      const jsm = await ctx.jsm();
      const shards = tables.flatMap((t) => Array.from({ length: t.shards }, (_, bucket) => ({ table: t.name, bucket })));
      const lastLsn = Math.max(0, ...(await Promise.all(shards.map((s) => lastSeqOn(jsm, tenant, s.table, s.bucket)))));
      const session = new FeedSession(plan, { from, lastLsn, durable: req.durable, maxBuffer, conflate: req.conflate });
      const notes = await walNotes(jsm, tenant, plan, shards, session.readFrom);
      const raw = arrowSchema(plan.fields, new Map([["proxist.feed", plan.fingerprint], ...(notes.length > 0 ? [["proxist.notes", notes.join("\n")] as [string, string]] : [])]));
      // Time columns leave as Arrow timestamp[us, UTC], as query results do.
      const schema = presentSchema(raw, "timestamp");

      let wake: (() => void) | undefined;
      const poke = (): void => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      let readError: Error | undefined;
      const fail = (e: Error): void => {
        readError ??= e;
        poke();
      };
      const js = jetstream(ctx.node.nc);
      // Watermarks: the last one of every shard of the tenant, then each new one.
      const wmConsumer = await js.consumers.get(watermarkStream(tenant), { filter_subjects: watermarkSubjectsOfTenant(tenant), deliver_policy: DeliverPolicy.LastPerSubject }).catch(() => undefined);
      if (wmConsumer !== undefined) {
        const wms = await wmConsumer.consume({ max_messages: 64 });
        stops.push(() => void wms.stop());
        void (async () => {
          for await (const m of wms) {
            try {
              const w = decodeWatermark(m.data);
              session.setPersisted(w.table, w.bucket, Number(w.persistedLsn));
              poke();
            } catch {
              // An unreadable watermark: the next one supersedes it.
            }
          }
        })().catch(fail);
      } else if (req.durable) throw new ApiError("UNAVAILABLE", `tenant ${tenant} has no watermark stream yet, so no row can be known durable; retry once the node serves the tenant`);

      const specs = new Map(tables.map((t) => [t.name, t]));
      const walConsumer = await js.consumers.get(walStream(tenant), {
        filter_subjects: tables.length === 1 ? walSubjectsOfTable(tenant, plan.left.name) : walSubjectsOfTenant(tenant),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: session.readFrom,
      });
      const msgs = await walConsumer.consume({ max_messages: 256 });
      stops.push(() => void msgs.stop());
      void (async () => {
        for await (const m of msgs) {
          if (ctl.signal.aborted || session.overflowed) break;
          const a = parseWalSubject(m.subject);
          const spec = a === undefined ? undefined : specs.get(a.table);
          if (a === undefined || spec === undefined) continue;
          session.push({ table: a.table, bucket: a.bucket, lsn: m.seq, batch: decodeWalEntry(spec, m.seq, m.data).batch });
          if (session.buffered > 0 || session.overflowed) poke();
        }
      })().catch(fail);

      let sent: FeedOffset = session.startOffset;
      const message = (kind: string, ipc: Uint8Array, rows: number, offset: FeedOffset): FeedMessage =>
        create(FeedMessageSchema, {
          kind,
          arrowIpc: ipc,
          rows,
          offset: encodeOffset(offset),
          feed: plan.fingerprint,
          shards: shards.map((s) => ({
            table: s.table,
            bucket: s.bucket,
            lsn: BigInt(offset.lsn[shardKey(s.table, s.bucket)] ?? 0),
            persistedLsn: BigInt(session.persisted.get(shardKey(s.table, s.bucket)) ?? 0),
            horizonMicros: BigInt(Math.trunc(ctx.horizon?.(tenant, s.table, s.bucket) ?? -1)),
          })),
        });
      await writeFlowing(call, message("start", schemaToIpc(schema), 0, sent), ctl.signal);
      while (!ctl.signal.aborted) {
        if (readError !== undefined) throw new ApiError("UNAVAILABLE", `feed ${plan.fingerprint}: reading the WAL failed (${readError.message}); resume with from = the last offset received`);
        for (const b of session.drain()) {
          await writeFlowing(call, message(b.kind, encodeBatch(b, raw, schema), b.table.rows, b.offset), ctl.signal);
          sent = b.offset;
          if (ctl.signal.aborted) break;
        }
        if (session.overflowed) {
          throw new ApiError(
            "RESOURCE_EXHAUSTED",
            `feed ${plan.fingerprint}: the consumer read too slowly and the subscription's buffer of ${maxBuffer} messages is full; nothing is lost: subscribe again with from = "${encodeOffset(sent)}" (the offset of the last message sent)${plan.kind === "lastBy" || plan.kind === "bars" ? ', or set conflate to get the latest state instead' : ""}`,
          );
        }
        if (session.buffered === 0) await new Promise<void>((resolve) => {
          wake = resolve;
          ctl.signal.addEventListener("abort", () => resolve(), { once: true });
        });
      }
      throw ctl.signal.reason;
    })()
      .catch((e: unknown) => failCall(ctx, call, e))
      .finally(() => {
        for (const s of stops) s();
        ctl.dispose();
      });
  };
}

function encodeBatch(b: FeedBatch, raw: Schema, presented: Schema): Uint8Array {
  const [rb] = toRecordBatches(b.table, raw, Infinity);
  return batchToIpc(presentBatch(rb!, presented));
}

/**
 * Why the feed may differ from the batch query at its start: the WAL below its
 * first sequence was trimmed, by a limit or a hand purge (the stream's first
 * sequence) or by compaction (a shard's floor in px_compaction: the stream's
 * anchor record keeps its first sequence in place, so only the floors show it).
 */
async function walNotes(jsm: JetStreamManager, tenant: string, plan: FeedPlan, shards: readonly { table: string; bucket: number }[], readFrom: number): Promise<string[]> {
  const [streamFirst, ...floors] = await Promise.all([
    jsm.streams
      .info(walStream(tenant))
      .then((i) => i.state.first_seq)
      .catch(() => 1),
    ...shards.map((s) => compactionFloor(jsm, { tenant, table: s.table, bucket: s.bucket }).catch(() => 0)),
  ]);
  const first = Math.max(streamFirst, ...floors);
  if (first <= readFrom) return [];
  if (plan.kind === "raw" && readFrom > 1) {
    throw new ApiError("FAILED_PRECONDITION", `feed ${plan.fingerprint}: the offset needs WAL records from LSN ${readFrom}, but the WAL now starts at ${first} (older records were compacted); resuming below the WAL's start is not implemented yet: start from "now" or "snapshot" and read the gap with a range query`);
  }
  return [`the WAL starts at LSN ${first}: the feed's state is built from there (older rows are not in it)`];
}
