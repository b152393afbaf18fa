// The sink machine's `announcer` over JetStream: publishes the sink's
// watermarks in order, newest wins, retried with the sink's backoff. Each
// publish first asks the lease's permit: a fenced sink publishes nothing.
import type { JetStreamClient } from "@nats-io/jetstream";
import { fromCallback } from "xstate";
import type { Announce, AnnouncerInput, SinkEvent } from "../../../actors/sink.js";
import { isFenced, retryDelayMs } from "../../sink/index.js";
import { publishWatermark } from "../../wal/index.js";

/**
 * The sink machine's `announcer`, for real: publishes watermarks one at a time,
 * in order; when several P wait, only the newest is published. A failed
 * publish is retried after the policy's backoff. Reports `announced` once the
 * watermark stream stored it (then the WAL may be acknowledged up to P).
 */
export function jetstreamAnnouncer(js: JetStreamClient, clock: () => number, permit: (what: string) => void = () => {}) {
  return fromCallback<Announce, AnnouncerInput>(({ input, receive, sendBack }) => {
    const send = (e: SinkEvent): void => sendBack(e);
    let want: Announce | undefined;
    let busy = false;
    let stopped = false;
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;
    const run = async (): Promise<void> => {
      if (busy || stopped || want === undefined) return;
      busy = true;
      const w = want;
      want = undefined;
      try {
        permit(`watermark P ${w.persistedLsn}`);
        await publishWatermark(js, input.shard, { persistedLsn: w.persistedLsn, tPersistedMicros: w.tPersistedMicros, leaseRevision: input.leaseRevision }, clock());
        attempt = 0;
        busy = false;
        if (!stopped) send({ type: "announced", persistedLsn: w.persistedLsn, atMs: clock() });
        void run();
      } catch (e) {
        if (isFenced(e)) {
          if (!stopped) send({ type: "fenced", reason: (e as Error).message });
          return;
        }
        attempt++;
        if (want === undefined) want = w;
        if (!stopped) send({ type: "announceFailed", message: (e as Error).message });
        timer = setTimeout(() => {
          busy = false;
          void run();
        }, retryDelayMs(input.retry, attempt));
      }
    };
    receive((cmd) => {
      if (want === undefined || cmd.persistedLsn >= want.persistedLsn) want = cmd;
      void run();
    });
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  });
}
