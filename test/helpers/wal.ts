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
}
