// A materialized feed's messages as its stream holds them (the feed tests
// compare a node's feed with an uninterrupted in-process run of the same feed).
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { tableFromIPC } from "apache-arrow";
import { HDR_FEED_OFFSET, feedStream, feedSubject } from "../../protocols/subjects.js";

/** The feed's messages in stream order: offset and rows (as JSON text, bigints as numbers). */
export async function feedMessages(nc: NatsConnection, tenant: string, name: string): Promise<{ offset: string; rows: string }[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(feedStream(tenant)).catch(() => undefined);
  const out: { offset: string; rows: string }[] = [];
  if (info === undefined) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(feedStream(tenant), { seq }).catch(() => null);
    if (m === null || m.subject !== feedSubject(tenant, name)) continue;
    out.push({ offset: m.header.get(HDR_FEED_OFFSET), rows: JSON.stringify(tableFromIPC(m.data).toArray().map((r) => JSON.stringify(r, (_, v: unknown) => (typeof v === "bigint" ? Number(v) : v)))) });
  }
  return out;
}
