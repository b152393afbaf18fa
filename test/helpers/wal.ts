// Reads a tenant's whole WAL stream back (for assertions): every record with its
// LSN, decoded.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { decodeWalRecord } from "../../protocols/codec.js";
import type { WalRecord } from "../../protocols/codec.js";
import { parseWalSubject, walStream } from "../../protocols/subjects.js";

export interface StoredRecord {
  readonly lsn: number;
  readonly subject: string;
  readonly msgId: string | undefined;
  readonly record: WalRecord;
}

export async function walMessageCount(nc: NatsConnection, tenant: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info(walStream(tenant))).state.messages;
}

export async function readWal(nc: NatsConnection, tenant: string): Promise<StoredRecord[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(walStream(tenant));
  const out: StoredRecord[] = [];
  if (info.state.messages === 0) return out;
  const js = jetstream(nc);
  // nats-server 2.10.26+ answers a pull sent before the new consumer's interest reached the client's server (a
  // cluster) with 503 "no responders" at once, where older servers let the request wait: read again, from scratch.
  for (let attempt = 1; ; attempt++) {
    try {
      const consumer = await js.consumers.get(walStream(tenant));
      const iter = await consumer.fetch({ max_messages: info.state.messages, expires: 5000 });
      let seen = 0;
      for await (const m of iter) {
        seen++;
        // The stream's anchor (walAnchorSubject) is no record.
        if (parseWalSubject(m.subject) !== undefined) out.push({ lsn: m.seq, subject: m.subject, msgId: m.headers?.get("Nats-Msg-Id") || undefined, record: decodeWalRecord(m.data) });
        if (seen === info.state.messages) break;
      }
      return out;
    } catch (e) {
      if (attempt >= 5 || !/no responders/i.test((e as Error).message)) throw e;
      out.length = 0;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}
