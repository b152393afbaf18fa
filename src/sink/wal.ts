// The sink's WAL consumer: a durable JetStream pull consumer per shard
// (`px_sink_<table>_<bucket>` on PX_WAL_<tenant>, filtered to the shard's
// subject, ack-all). It survives restarts: its ack floor is part of how a
// restarted sink finds P. On start it is positioned at P + 1 (re-created when
// it points elsewhere or holds unacked deliveries of a dead process, which
// would otherwise come back only after ack_wait). Records are decoded here, at
// the edge, and handed to the sink machine in order; the machine's ack (after
// the watermark) acknowledges everything up to P.
import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import { fromCallback } from "xstate";
import type { SinkEvent, SinkWalInput, WalAck } from "../../actors/sink.js";
import { walStream, walSubject } from "../../protocols/subjects.js";
import type { ShardAddress } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { WalSchemaVersionError, decodeWalEntry } from "./decoded.js";
import type { DecodedRecord, DecodedRecordCache } from "./decoded.js";
import type { SinkRecord } from "./types.js";
import { TaggedError } from "../../protocols/tagged.js";

const NS_PER_MS = 1_000_000;

/** Durable consumer name of a shard's sink (the stream is per tenant). */
export const sinkConsumerName = (shard: ShardAddress): string => `px_sink_${shard.table}_${shard.bucket}`;

/** A WAL record the sink cannot write (restarting will not help). */
export class SinkRecordError extends TaggedError("SinkRecordError") {}

/** Stream sequence of the last record the shard's sink consumer acknowledged (0: none, or no consumer). */
export async function consumerAckFloor(jsm: JetStreamManager, shard: ShardAddress): Promise<number> {
  try {
    const info = await jsm.consumers.info(walStream(shard.tenant), sinkConsumerName(shard));
    return info.ack_floor.stream_seq;
  } catch (e) {
    if (/consumer not found/i.test((e as Error).message)) return 0;
    throw e;
  }
}

export interface SinkConsumerOptions {
  /** Unacknowledged records the server delivers at most (bounds the sink's memory while ClickHouse is down). */
  readonly maxAckPending?: number;
  /** After this long unacknowledged, the server delivers a record again (the sink drops repeats). */
  readonly ackWaitMs?: number;
}

/** Makes the durable consumer of `shard` deliver from `fromLsn` on. */
export async function positionSinkConsumer(jsm: JetStreamManager, shard: ShardAddress, fromLsn: number, o: SinkConsumerOptions = {}): Promise<void> {
  const stream = walStream(shard.tenant);
  const name = sinkConsumerName(shard);
  const subject = walSubject(shard.tenant, shard.table, shard.bucket);
  const info = await jsm.consumers.info(stream, name).catch((e: unknown) => {
    if (/consumer not found/i.test((e as Error).message)) return undefined;
    throw e;
  });
  if (info !== undefined) {
    const sameFilter = info.config.filter_subject === subject;
    const atPosition = info.ack_floor.stream_seq + 1 === fromLsn || (info.ack_floor.stream_seq === 0 && info.delivered.stream_seq === 0 && (info.config.opt_start_seq ?? 1) === fromLsn);
    if (sameFilter && atPosition && info.num_ack_pending === 0) return;
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
}

/**
 * Decodes one WAL message of the shard for the sink (through `cache` when the
 * shard's hot set on this node may have decoded it already).
 */
export function decodeSinkRecord(spec: TableSpec, lsn: number, data: Uint8Array, receivedAtMs: number, cache?: DecodedRecordCache): SinkRecord {
  let d: DecodedRecord;
  try {
    d = cache === undefined ? decodeWalEntry(spec, lsn, data) : cache.takeOrDecode(spec, lsn, data);
  } catch (e) {
    throw new SinkRecordError(e instanceof WalSchemaVersionError ? e.message : `WAL record at LSN ${lsn} of table ${spec.name}: ${(e as Error).message}`, { cause: e });
  }
  if (d.schemaVersion !== spec.version) {
    throw new SinkRecordError(
      `WAL record at LSN ${lsn} was written for schema version ${d.schemaVersion} of table ${spec.name}; this node has version ${spec.version}; run every node with the same table spec`,
    );
  }
  return { lsn, batch: d.batch, bytes: d.payloadBytes, minTsMicros: d.minTsMicros, maxTsMicros: d.maxTsMicros, receivedAtMs };
}

/**
 * The `wal` actor of the sink machine, for real: positions the durable
 * consumer at `fromLsn`, sends decoded records in order (`records` events, a
 * few hundred at most per event), acknowledges on `ack`.
 */
export function jetstreamSinkConsumer(
  js: JetStreamClient,
  jsm: JetStreamManager,
  clock: () => number,
  o: SinkConsumerOptions & { maxEventRecords?: number; trace?: (line: string) => void; decoded?: DecodedRecordCache } = {},
) {
  return fromCallback<WalAck, SinkWalInput>(({ input, sendBack, receive }) => {
    const send = (e: SinkEvent): void => sendBack(e);
    let stopped = false;
    let stop: (() => void) | undefined;
    // Delivered, not yet acknowledged, by stream sequence (insertion = ascending).
    const unacked = new Map<number, JsMsg>();
    receive((cmd) => {
      if (cmd.type !== "ack") return;
      let best: JsMsg | undefined;
      for (const [seq, m] of unacked) {
        if (seq > cmd.lsn) continue;
        if (best === undefined || seq > best.seq) best = m;
        unacked.delete(seq);
      }
      // Ack-all: acknowledging the last persisted record acknowledges every one before it.
      best?.ack();
    });
    void (async () => {
      const { shard, spec, fromLsn } = input;
      const t0 = performance.now();
      await positionSinkConsumer(jsm, shard, fromLsn, o);
      o.trace?.(`consumer positioned at ${fromLsn} in ${(performance.now() - t0).toFixed(1)} ms`);
      if (stopped) return;
      const consumer = await js.consumers.get(walStream(shard.tenant), sinkConsumerName(shard));
      const messages = await consumer.consume({ max_messages: Math.min(o.maxAckPending ?? 1_000, 512) });
      stop = () => void messages.stop();
      if (stopped) stop();
      let highest = fromLsn - 1;
      let pending: SinkRecord[] = [];
      let scheduled = false;
      const maxEvent = o.maxEventRecords ?? 256;
      const flush = (): void => {
        scheduled = false;
        if (pending.length === 0 || stopped) return;
        const records = pending;
        pending = [];
        send({ type: "records", records, atMs: clock() });
      };
      for await (const m of messages) {
        if (stopped) break;
        unacked.set(m.seq, m);
        // A redelivery (ack_wait passed while ClickHouse was down): already handed over.
        if (m.seq <= highest) continue;
        highest = m.seq;
        let rec: SinkRecord;
        try {
          rec = decodeSinkRecord(spec, m.seq, m.data, clock(), o.decoded);
        } catch (e) {
          flush();
          send({ type: "walError", message: (e as Error).message, fatal: true });
          stopped = true;
          messages.stop();
          return;
        }
        pending.push(rec);
        if (pending.length >= maxEvent || m.info.pending === 0) flush();
        else if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      }
      flush();
      if (!stopped) send({ type: "walError", message: "the WAL consumer stopped delivering", fatal: false });
    })().catch((e: unknown) => {
      if (!stopped) send({ type: "walError", message: (e as Error).message, fatal: false });
    });
    return () => {
      stopped = true;
      stop?.();
    };
  });
}
