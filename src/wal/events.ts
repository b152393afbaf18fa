// The operations event log: what the workflows did (compaction runs, snapshots
// on demand, failures), one JSON message per event on px.events.<kind> in the
// stream PX_EVENTS. Bounded (10,000 events, 16 MiB, oldest dropped): it is a
// log for people (`pxctl events`), never state anyone replays.
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { EVENTS_STREAM, EVENTS_WILDCARD, eventSubject } from "../../protocols/subjects.js";

export interface OpsEvent {
  readonly atMs: number;
  readonly kind: string;
  readonly node: string;
  readonly message: string;
}

const MAX_EVENTS = 10_000;
const MAX_BYTES = 16 * 1024 * 1024;

export async function ensureEventsStream(jsm: JetStreamManager, replicas = 1): Promise<void> {
  try {
    await jsm.streams.info(EVENTS_STREAM);
  } catch (e) {
    if (!/stream not found/i.test((e as Error).message)) throw e;
    await jsm.streams
      .add({ name: EVENTS_STREAM, subjects: [EVENTS_WILDCARD], storage: StorageType.File, retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old, max_msgs: MAX_EVENTS, max_bytes: MAX_BYTES, num_replicas: replicas })
      .catch((addErr: unknown) => {
        if (!/already in use|exists/i.test((addErr as Error).message)) throw addErr;
      });
  }
}

export async function recordEvent(js: JetStreamClient, e: OpsEvent): Promise<void> {
  await js.publish(eventSubject(e.kind), JSON.stringify(e));
}

/**
 * What a workflow machine emits as `recorded` goes to the node's log and the
 * events stream (best effort: an event lost never stops the workflow).
 */
export function eventRecorder(o: { readonly js: JetStreamClient; readonly nodeId: string; readonly log: (line: string) => void }): (e: { readonly kind: string; readonly message: string }) => void {
  return (e) => {
    o.log(`node ${o.nodeId}: ${e.kind}: ${e.message}`);
    void recordEvent(o.js, { atMs: Date.now(), kind: e.kind, node: o.nodeId, message: e.message }).catch(() => {});
  };
}

/** The last `count` events, oldest first ([] when none was ever recorded). */
export async function readEvents(jsm: JetStreamManager, js: JetStreamClient, count: number): Promise<OpsEvent[]> {
  const info = await jsm.streams.info(EVENTS_STREAM).catch(() => undefined);
  if (info === undefined || info.state.messages === 0) return [];
  const from = Math.max(info.state.first_seq, info.state.last_seq - count + 1);
  const consumer = await js.consumers.get(EVENTS_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from });
  const want = info.state.last_seq - from + 1;
  const out: OpsEvent[] = [];
  const iter = await consumer.fetch({ max_messages: want, expires: 3_000 });
  for await (const m of iter) {
    try {
      out.push(JSON.parse(new TextDecoder().decode(m.data)) as OpsEvent);
    } catch {
      // Not ours: skipped.
    }
    if (m.seq >= info.state.last_seq) break;
  }
  return out;
}
