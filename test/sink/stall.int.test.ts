// The sink's stall watchdog (a real nats-server): the durable consumer the
// sink pulls from is swapped behind its back for one that never delivers the
// shard's records (deleted and re-made under the same name with another
// filter), so the pull goes on without an error and delivers nothing: the
// silent stall the fault suite saw (a sink idle at its P for minutes while the
// WAL held newer records of its bucket). With every delivery acknowledged and
// the WAL holding a newer record of the shard, the watchdog reports a
// non-fatal WAL error (the sink starts over from P + 1); switched off
// (negative control) the sink waits forever and says nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createActor, sendTo, setup } from "xstate";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { encodeWalRecord } from "../../protocols/codec.js";
import { walStream, walSubject } from "../../protocols/subjects.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { jetstreamSinkConsumer } from "../../src/node/sink/wal.js";
import type { SinkEvent } from "../../actors/sink.js";
import { sinkConsumerName } from "../../src/sink/index.js";
import { startNatsServer } from "../../src/runtime/servers/nats.js";
import type { NatsServer } from "../../src/runtime/servers/nats.js";
import { ensureWalStream } from "../../src/wal/streams.js";
import { DAY0, SPEC, batch } from "./fixtures.js";

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer({ auth: "open" });
  nc = await connect({ servers: server.url });
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

async function publish(tenant: string, bucket: number, i: number): Promise<number> {
  const payload = tickBatchToIpc(SPEC, batch(10, i, DAY0 + 3_600_000_000 + i * 1_000_000));
  const ack = await jetstream(nc).publish(walSubject(tenant, SPEC.name, bucket), encodeWalRecord({ tenant, table: SPEC.name, schemaVersion: SPEC.version, producerId: "p", producerSeq: BigInt(i), bucket, rows: 10, minTsMicros: 0n, maxTsMicros: 0n, payload }));
  return ack.seq;
}

/** Runs the sink's consumer, acknowledging what it hands over; swaps its consumer after 3 records; what came after. */
async function stalled(tenant: string, watchdogMs: number): Promise<{ before: number[]; after: number[]; errors: { message: string; fatal: boolean }[] }> {
  const shard = { tenant, table: SPEC.name, bucket: 0 };
  const jsm = await jetstreamManager(nc);
  await ensureWalStream(jsm, tenant);
  for (let i = 1; i <= 3; i++) await publish(tenant, 0, i);
  const lsns: number[] = [];
  const errors: { message: string; fatal: boolean }[] = [];
  const wal = jetstreamSinkConsumer(jetstream(nc), jsm, Date.now, { watchdogMs });
  // The sink machine's place: takes the records and acknowledges them at once (nothing stays unacknowledged).
  const parent = setup({ types: { events: {} as SinkEvent }, actors: { wal } }).createMachine({
    invoke: { id: "wal", src: "wal", input: { shard, spec: SPEC, fromLsn: 1 } },
    on: {
      records: {
        actions: [({ event }) => lsns.push(...event.records.map((r) => r.lsn)), sendTo("wal", ({ event }) => ({ type: "ack" as const, lsn: event.records.at(-1)!.lsn }))],
      },
      walError: { actions: ({ event }) => errors.push({ message: event.message, fatal: event.fatal }) },
    },
  });
  const actor = createActor(parent).start();
  const until = async (ok: () => boolean, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  };
  await until(() => lsns.length >= 3, 10_000);
  const before = [...lsns];
  // The swap: same durable name, another filter. The running pull keeps asking it and gets nothing of ours.
  const stream = walStream(tenant);
  await jsm.consumers.delete(stream, sinkConsumerName(shard));
  await jsm.consumers.add(stream, { durable_name: sinkConsumerName(shard), filter_subject: walSubject(tenant, SPEC.name, 1), ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.All });
  for (let i = 4; i <= 5; i++) await publish(tenant, 0, i);
  await until(() => errors.length > 0, Math.max(4 * watchdogMs, 6_000));
  actor.stop();
  return { before, after: lsns.slice(before.length), errors };
}

describe("sink - stall watchdog", () => {
  it("watchdog - a pull that silently delivers nothing while the WAL holds newer records of the shard: a non-fatal WAL error (the sink starts over from P + 1)", async () => {
    const r = await stalled("stall", 1_000);
    expect(r.before).toHaveLength(3);
    expect(r.after).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.fatal).toBe(false);
    expect(r.errors[0]!.message).toMatch(/the WAL consumer delivered nothing for \d+ ms while the WAL holds LSN \d+ of this shard past \d+; reopening it from P \+ 1/);
  }, 60_000);

  it("watchdog - negative control: switched off, the same stall is silent (no record, no error)", async () => {
    const r = await stalled("stalloff", 0);
    expect(r.before).toHaveLength(3);
    expect(r.after).toEqual([]);
    expect(r.errors).toEqual([]);
  }, 60_000);
});
