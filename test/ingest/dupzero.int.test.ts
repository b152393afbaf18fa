// An append JetStream answers with sequence 0 is not stored, and the gateway
// must not acknowledge it. On a 3-server cluster (R3 stream, discard new),
// nats-server 2.10 keeps the Nats-Msg-Id of an append it refused for max_bytes
// and answers the same id again `{"seq":0,"duplicate":true}`, even once there
// is room (seen with 2.10.27; 2.9.10 refuses again). The fault suite's seed 19
// acknowledged a batch at LSNs 369,0,0,0,0,0 that way after the WAL had been full.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiscardPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { natsCluster } from "../control/natscluster.js";
import type { NatsCluster } from "../control/natscluster.js";
import { WalNotStoredError, walAppender } from "../../src/node/gateway/io.js";

let c: NatsCluster;
let nc: NatsConnection;

beforeAll(async () => {
  c = await natsCluster(3);
  nc = await c.connect("dupzero");
}, 60_000);
afterAll(async () => {
  await c?.close();
});

const STREAM = "DZ";
const plan = (id: string, size: number) => ({ bucket: 0, subject: "px.dz.t.0", msgId: id, rows: 1, record: new Uint8Array(size) });

async function rawAppend(id: string, size: number): Promise<{ seq?: number; duplicate?: boolean; error?: unknown }> {
  const h = headers();
  h.set("Nats-Msg-Id", id);
  const m = await nc.request("px.dz.t.0", new Uint8Array(size), { timeout: 5_000, headers: h });
  return JSON.parse(new TextDecoder().decode(m.data)) as { seq?: number; duplicate?: boolean; error?: unknown };
}

describe("ingest - a PubAck with sequence 0 is no stored record", () => {
  it("dupzero - after a max_bytes refusal, the same Nats-Msg-Id again: the appender throws WalNotStoredError, never LSN 0", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: STREAM, subjects: ["px.dz.>"], num_replicas: 3, discard: DiscardPolicy.New, max_bytes: 4096 });
    const append = walAppender(jetstream(nc), 5_000);
    expect((await append(plan("fill", 3_000))).lsn).toBe(1);
    await expect(append(plan("a", 3_000))).rejects.toThrow(/maximum bytes exceeded/);
    // Room again: the refused record can be stored now, but its id is still held.
    await jsm.streams.purge(STREAM);
    const r = await append(plan("a", 3_000)).then(
      (stored) => stored,
      (e: unknown) => e,
    );
    const on210 = (nc.info?.version ?? "").startsWith("2.10.");
    if (on210 || r instanceof Error) {
      expect(r).toBeInstanceOf(WalNotStoredError);
      expect((r as Error).message).toMatch(/never stored \(sequence 0/);
      expect((await jsm.streams.info(STREAM)).state.messages).toBe(0);
    } else {
      // 2.9: the id was not kept, the record is stored now, at a real sequence.
      expect((r as { lsn: number }).lsn).toBeGreaterThan(1);
      expect((await jsm.streams.info(STREAM)).state.messages).toBe(1);
    }
    // Control: the server's own answer to that id, which the check stands between: on 2.10 a "duplicate" at
    // sequence 0 with nothing stored (2.9.10 refuses for max_bytes again, and stores it once there is room).
    if (on210) {
      const raw = await rawAppend("a", 3_000);
      expect(raw).toMatchObject({ seq: 0, duplicate: true });
      expect((await jsm.streams.info(STREAM)).state.messages).toBe(0);
    }
  });
});
