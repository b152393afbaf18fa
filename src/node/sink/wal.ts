// The sink machine's `wal` actor over JetStream: the shard's durable consumer
// (positioned at P + 1), decoded records in order, ack-all on the machine's ack
// (after the watermark), which acknowledges everything up to P. The consumer is
// positioned (which may delete and re-create it) only with the lease's permit:
// a fenced sink never touches the consumer the new owner uses.
import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import { fromCallback } from "xstate";
import type { SinkEvent, SinkWalInput, WalAck } from "../../../actors/sink.js";
import { walStream, walSubject } from "../../../protocols/subjects.js";
import { DeliveryGapError, SinkRecordError, decodeSinkRecord, isFenced, positionSinkConsumer, sinkConsumerName } from "../../sink/index.js";
import type { SinkConsumerOptions, SinkRecord } from "../../sink/index.js";
import { WalGapError, consumeBatches, sharedWalGapGate, walPull } from "../../wal/index.js";
import type { DecodedRecordCache, SkippedLsns } from "../../wal/index.js";
import { TRACEPARENT, tracingOn } from "../obs/index.js";

/**
 * How long a sink consumer may deliver nothing, with every delivery
 * acknowledged, before the watchdog asks the WAL whether it holds a newer
 * record of the shard (PX_SINK_WATCHDOG_MS; 0 turns the watchdog off: the
 * negative control). The fault suite saw a sink sit idle for minutes at its P
 * while the WAL held 600 newer records of its bucket, logging nothing, after
 * ClickHouse refused inserts and a NATS server hung on a full disk (seed 1906):
 * its pull subscription had stopped without an error.
 */
export function sinkWatchdogMs(env: Record<string, string | undefined> = process.env): number {
  const raw = env.PX_SINK_WATCHDOG_MS;
  if (raw === undefined || raw === "") return 15_000;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new Error(`PX_SINK_WATCHDOG_MS=${raw}: must be a number of milliseconds >= 0 (0 turns the sink's stall watchdog off); unset it for the default 15000`);
  return v;
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
  o: SinkConsumerOptions & { watchdogMs?: number; maxEventRecords?: number; trace?: (line: string) => void; decoded?: DecodedRecordCache; skipped?: SkippedLsns; permit?: (what: string) => void; traced?: Map<number, string>; gapCheckOff?: boolean; /** TESTS ONLY (the negative control): go on past a delivery that never arrived. */ deliveryGapCheckOff?: boolean } = {},
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
      // Records after P that are gone can never reach ClickHouse: stop (fatal), never persist past them.
      const gate = sharedWalGapGate(jsm, shard, "the sink", fromLsn, o.gapCheckOff === true);
      try {
        await gate.atStart();
      } catch (e) {
        if (!(e instanceof WalGapError)) throw e;
        stopped = true;
        send({ type: "walError", message: e.message, fatal: true });
        return;
      }
      const t0 = performance.now();
      o.permit?.(`positioning the durable consumer at ${fromLsn}`);
      let nextDelivery = await positionSinkConsumer(jsm, shard, fromLsn, o);
      o.trace?.(`consumer positioned at ${fromLsn} in ${(performance.now() - t0).toFixed(1)} ms`);
      if (stopped) return;
      const consumer = await js.consumers.get(walStream(shard.tenant), sinkConsumerName(shard));
      const messages = await consumer.consume(await walPull(js, walStream(shard.tenant), Math.min(o.maxAckPending ?? 1_000, 512)));
      let highest = fromLsn - 1;
      let lastDelivery = performance.now();
      // A stalled pull: nothing delivered for watchdogMs, nothing left unacknowledged (so no ack_pending limit
      // holds deliveries back), and the WAL has a record of this shard past the last one delivered. Start over
      // from P + 1 (non-fatal: the sink machine reopens the consumer after its backoff).
      const watchdogMs = o.watchdogMs ?? sinkWatchdogMs();
      let checking = false;
      const watchdog =
        watchdogMs > 0
          ? setInterval(() => {
              if (stopped || checking || unacked.size > 0 || performance.now() - lastDelivery < watchdogMs) return;
              checking = true;
              const quietMs = Math.round(performance.now() - lastDelivery);
              jsm.streams
                .getMessage(walStream(shard.tenant), { last_by_subj: walSubject(shard.tenant, shard.table, shard.bucket) })
                .then((last) => {
                  if (stopped || last === null || last.seq <= highest || performance.now() - lastDelivery < watchdogMs) return;
                  stopped = true;
                  void messages.stop();
                  send({ type: "walError", message: `sink ${shard.tenant}/${shard.table}/${shard.bucket}: the WAL consumer delivered nothing for ${quietMs} ms while the WAL holds LSN ${last.seq} of this shard past ${highest}; reopening it from P + 1`, fatal: false });
                })
                .catch(() => {})
                .finally(() => (checking = false));
            }, Math.max(250, Math.floor(watchdogMs / 4)))
          : undefined;
      stop = () => {
        clearInterval(watchdog);
        void messages.stop();
      };
      if (stopped) stop();
      try {
        await consumeBatches<SinkRecord>(messages, {
          maxBatch: o.maxEventRecords ?? 256,
          stopped: () => stopped,
          beforeBatch: gate.beforeBatch,
          onRefused: () => void messages.stop(),
          read: (m) => {
            lastDelivery = performance.now();
            // Deliveries are numbered one by one: one skipped never reached us, and its record may be one of ours
            // that an ack-all of a later record would acknowledge unread. Start over from P + 1 (nothing acked past it).
            if (o.deliveryGapCheckOff !== true && m.info.deliverySequence !== nextDelivery) {
              throw new DeliveryGapError(`sink ${shard.tenant}/${shard.table}/${shard.bucket}: delivery ${nextDelivery} of the WAL consumer never arrived (got ${m.info.deliverySequence}, LSN ${m.seq}); starting over from P + 1`);
            }
            nextDelivery = m.info.deliverySequence + 1;
            unacked.set(m.seq, m);
            // A redelivery (ack_wait passed while ClickHouse was down): already handed over.
            if (m.seq <= highest) return undefined;
            highest = m.seq;
            // Traced records: the flush that persists this LSN continues the trace (see SinkRuntime).
            if (o.traced !== undefined && tracingOn()) {
              const tp = m.headers?.get(TRACEPARENT);
              // Bounded: a sink that cannot persist for long drops the oldest traces, never memory.
              if (tp && o.traced.size < 10_000) o.traced.set(m.seq, tp);
            }
            return decodeSinkRecord(spec, m.seq, m.data, clock(), o.decoded, o.skipped);
          },
          onBatch: (records) => send({ type: "records", records, atMs: clock() }),
        });
      } catch (e) {
        if (!(e instanceof SinkRecordError) && !(e instanceof WalGapError)) throw e;
        // A record the sink cannot write, or records it can never read: restarting will not help.
        send({ type: "walError", message: e.message, fatal: true });
        stopped = true;
        stop?.();
        return;
      } finally {
        clearInterval(watchdog);
      }
      if (!stopped) send({ type: "walError", message: "the WAL consumer stopped delivering", fatal: false });
    })().catch((e: unknown) => {
      if (!stopped) send(isFenced(e) ? { type: "fenced", reason: (e as Error).message } : { type: "walError", message: (e as Error).message, fatal: false });
    });
    return () => {
      stopped = true;
      stop?.();
    };
  });
}
