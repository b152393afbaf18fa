// The sink's WAL consumer: a durable JetStream pull consumer per shard
// (`px_sink_<table>_<bucket>` on PX_WAL_<tenant>, filtered to the shard's
// subject, ack-all). It survives restarts: its ack floor is part of how a
// restarted sink finds P. On start it is positioned at P + 1 (re-created when
// it points elsewhere or holds unacked deliveries of a dead process, which
// would otherwise come back only after ack_wait). Records are decoded at the
// edge (decodeSinkRecord) and handed to the sink machine in order by the `wal`
// actor in src/node/sink/wal.ts.
import type { JetStreamManager } from "@nats-io/jetstream";
import { AckPolicy, DeliverPolicy, JetStreamApiError } from "@nats-io/jetstream";
import { walStream, walSubject } from "../../protocols/subjects.js";
import type { ShardAddress } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { WalSchemaVersionError, decodeWalEntry, skippedRecord } from "../wal/index.js";
import type { DecodedRecord, DecodedRecordCache, SkippedLsns } from "../wal/index.js";
import type { SinkRecord } from "./types.js";
import { TaggedError } from "../../protocols/tagged.js";

const NS_PER_MS = 1_000_000;

/** Durable consumer name of a shard's sink (the stream is per tenant). */
export const sinkConsumerName = (shard: ShardAddress): string => `px_sink_${shard.table}_${shard.bucket}`;

/** A WAL record the sink cannot write (restarting will not help). */
export class SinkRecordError extends TaggedError("SinkRecordError") {}

/**
 * The shard's consumer cannot be read while the rest of JetStream answers:
 * "JetStream system temporarily unavailable" (err_code 10008: its own group has
 * no leader) or no answer at all (its only server is gone). After NATS servers
 * were SIGKILLed, chaos runs (issue 19) saw a sink consumer answer 10008 for
 * minutes (a server's /healthz: "consumer ... is not current") while every
 * other consumer of the stream worked, and its sink fail recovery on it until
 * the run ended. Its state is of no use then: the sink positions it itself.
 */
export const consumerUnreadable = (e: unknown): boolean => (e instanceof JetStreamApiError && e.code === 10008) || (e instanceof Error && e.name === "TimeoutError");

/** The server has no such consumer (never made, or deleted). */
const consumerMissing = (e: unknown): boolean => /consumer not found/i.test((e as Error).message);

/**
 * Stream sequence of the last record the shard's sink consumer acknowledged
 * (0: none, no consumer, or one that cannot be read). 0 is safe for both
 * readers: recovery takes the largest of its claims and verifies it against
 * ClickHouse, compaction the smallest (it then purges nothing).
 */
export async function consumerAckFloor(jsm: JetStreamManager, shard: ShardAddress, seen?: ConsumerProbe): Promise<number> {
  try {
    const info = await jsm.consumers.info(walStream(shard.tenant), sinkConsumerName(shard));
    return info.ack_floor.stream_seq;
  } catch (e) {
    if (consumerMissing(e)) return 0;
    if (consumerUnreadable(e)) {
      if (seen !== undefined) seen.unreadable = (e as Error).message;
      return 0;
    }
    throw e;
  }
}

/**
 * What the sink's recovery learned of its durable consumer, for the
 * positioning right after it: a consumer that could not be read (its info
 * timed out, or no leader) is made anew at once instead of asked again, which
 * would wait for the same timeout a second time.
 */
export interface ConsumerProbe {
  unreadable?: string | undefined;
}

export interface SinkConsumerOptions {
  /** Unacknowledged records the server delivers at most (bounds the sink's memory while ClickHouse is down). */
  readonly maxAckPending?: number;
  /** After this long unacknowledged, the server delivers a record again (the sink drops repeats). */
  readonly ackWaitMs?: number;
  /** Told why an existing consumer is deleted and made anew when that is not just a move of its position (logged). */
  readonly onRecreate?: (why: string) => void;
  /** Filled by the recovery's consumerAckFloor; an unreadable consumer found there is not asked again (taken once). */
  readonly probe?: ConsumerProbe;
}

/**
 * Makes the durable consumer of `shard` deliver from `fromLsn` on. Returns the
 * consumer (delivery) sequence its next delivery carries: deliveries are
 * numbered one by one, so a number skipped is a delivery that never arrived.
 */
export async function positionSinkConsumer(jsm: JetStreamManager, shard: ShardAddress, fromLsn: number, o: SinkConsumerOptions = {}): Promise<number> {
  const stream = walStream(shard.tenant);
  const name = sinkConsumerName(shard);
  const subject = walSubject(shard.tenant, shard.table, shard.bucket);
  const known = o.probe?.unreadable;
  if (o.probe !== undefined) o.probe.unreadable = undefined;
  const info =
    known !== undefined
      ? { unreadable: `${known}, at recovery just before` }
      : await jsm.consumers.info(stream, name).catch((e: unknown) => {
          if (consumerMissing(e)) return undefined;
          // A consumer without a leader is of no use and its position is ours to set (P + 1): made anew below.
          if (consumerUnreadable(e)) return { unreadable: (e as Error).message };
          throw e;
        });
  if (info !== undefined && "unreadable" in info) {
    o.onRecreate?.(`the durable consumer ${name} cannot be read (${info.unreadable}); deleting it and creating it again at LSN ${fromLsn}`);
    await jsm.consumers.delete(stream, name).catch((e: unknown) => {
      if (!consumerMissing(e) && !consumerUnreadable(e)) throw e;
      o.onRecreate?.(`deleting ${name}: ${(e as Error).message}`);
    });
  } else if (info !== undefined) {
    const sameFilter = info.config.filter_subject === subject;
    const atPosition = info.ack_floor.stream_seq + 1 === fromLsn || (info.ack_floor.stream_seq === 0 && info.delivered.stream_seq === 0 && (info.config.opt_start_seq ?? 1) === fromLsn);
    if (sameFilter && atPosition && info.num_ack_pending === 0) return info.delivered.consumer_seq + 1;
    await jsm.consumers.delete(stream, name);
  }
  await jsm.consumers.add(stream, {
    durable_name: name,
    filter_subject: subject,
    ack_policy: AckPolicy.All,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, fromLsn),
    max_ack_pending: o.maxAckPending ?? 1_000,
    ack_wait: (o.ackWaitMs ?? 5 * 60_000) * NS_PER_MS,
  });
  return 1;
}

/**
 * A delivery of the sink's consumer never arrived (lost in flight when a NATS
 * server died, or pulled by another process): the record it carried is
 * pending on the server, and acknowledging any later one (ack-all) would
 * acknowledge it unread. The sink starts over from P + 1 instead.
 */
export class DeliveryGapError extends TaggedError("DeliveryGapError") {}

/**
 * Decodes one WAL message of the shard for the sink (through `cache` when the
 * shard's hot set on this node may have decoded it already).
 */
export function decodeSinkRecord(spec: TableSpec, lsn: number, data: Uint8Array, receivedAtMs: number, cache?: DecodedRecordCache, skipped?: SkippedLsns): SinkRecord {
  let d: DecodedRecord;
  try {
    d = skipped?.has(lsn) === true ? skippedRecord(spec) : cache === undefined ? decodeWalEntry(spec, lsn, data) : cache.takeOrDecode(spec, lsn, data);
  } catch (e) {
    throw new SinkRecordError(e instanceof WalSchemaVersionError ? e.message : `WAL record at LSN ${lsn} of table ${spec.name}: ${(e as Error).message}`, { cause: e });
  }
  return { lsn, batch: d.batch, bytes: d.payloadBytes, minTsMicros: d.minTsMicros, maxTsMicros: d.maxTsMicros, receivedAtMs };
}
