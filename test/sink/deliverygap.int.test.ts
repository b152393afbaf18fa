// The sink's WAL consumer and a delivery that never arrives (a real
// nats-server): another client pulls one delivery of the shard's durable
// consumer (as a pull lost in flight when a NATS server dies looks to the
// sink). The sink must not go on past it: ack-all of a later record would
// acknowledge the missing one unread, and P would pass a record ClickHouse
// never got. It reports a non-fatal WAL error (the sink starts over from
// P + 1); with the check off (negative control) the records it hands over
// silently lack the stolen one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createActor, setup } from "xstate";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { encodeWalRecord } from "../../protocols/codec.js";
import { walStream, walSubject } from "../../protocols/subjects.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { jetstreamSinkConsumer } from "../../src/node/sink/wal.js";
import type { SinkEvent } from "../../actors/sink.js";
import { positionSinkConsumer, sinkConsumerName } from "../../src/sink/index.js";
import { startNatsServer } from "../../src/runtime/servers/nats.js";
import type { NatsServer } from "../../src/runtime/servers/nats.js";
import { ensureWalStream } from "../../src/wal/streams.js";
import { DAY0, SPEC, batch } from "./fixtures.js";

const TENANT = "gap";
const SHARD = { tenant: TENANT, table: SPEC.name, bucket: 0 };
let server: NatsServer;
let nc: NatsConnection;
/** The LSNs of the shard's five records (the stream's anchor holds LSN 1). */
const records: number[] = [];

beforeAll(async () => {
  server = await startNatsServer({ auth: "open" });
  nc = await connect({ servers: server.url });
  await ensureWalStream(await jetstreamManager(nc), TENANT);
  const js = jetstream(nc);
  for (let i = 1; i <= 5; i++) {
    const payload = tickBatchToIpc(SPEC, batch(10, i, DAY0 + 3_600_000_000 + i * 1_000_000));
    const ack = await js.publish(walSubject(TENANT, SPEC.name, 0), encodeWalRecord({ tenant: TENANT, table: SPEC.name, schemaVersion: SPEC.version, producerId: "p", producerSeq: BigInt(i), bucket: 0, rows: 10, minTsMicros: 0n, maxTsMicros: 0n, payload }));
    records.push(ack.seq);
  }
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/** Runs the sink's consumer from LSN 1 while a thief pulls one delivery first: what it handed over and the WAL errors it sent. */
async function withThief(deliveryGapCheckOff: boolean): Promise<{ lsns: number[]; errors: { message: string; fatal: boolean }[]; stolen: number | undefined }> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.delete(walStream(TENANT), sinkConsumerName(SHARD)).catch(() => false);
  // The consumer as the sink will find it (at LSN 1, nothing delivered), and the thief's handle on it ready.
  await positionSinkConsumer(jsm, SHARD, 1);
  const thief = await js.consumers.get(walStream(TENANT), sinkConsumerName(SHARD));
  const lsns: number[] = [];
  const errors: { message: string; fatal: boolean }[] = [];
  let stolen: Promise<number | undefined> = Promise.resolve(undefined);
  const wal = jetstreamSinkConsumer(js, jsm, Date.now, {
    deliveryGapCheckOff,
    // Right after the consumer is positioned, before the sink's own pull: the thief's pull is served first.
    trace: (line) => {
      if (line.startsWith("consumer positioned")) stolen = thief.next({ expires: 5_000 }).then((m) => m?.seq);
    },
  });
  // The sink machine's place: a parent that invokes the consumer and keeps what it sends back.
  const parent = setup({ types: { events: {} as SinkEvent }, actors: { wal } }).createMachine({
    invoke: { src: "wal", input: { shard: SHARD, spec: SPEC, fromLsn: 1 } },
    on: {
      records: { actions: ({ event }) => lsns.push(...event.records.map((r) => r.lsn)) },
      walError: { actions: ({ event }) => errors.push({ message: event.message, fatal: event.fatal }) },
    },
  });
  const actor = createActor(parent).start();
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && errors.length === 0 && lsns.length < 4) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  actor.stop();
  return { lsns, errors, stolen: await stolen };
}

describe("sink - a delivery that never arrives", () => {
  it("gap - the sink's consumer stops with a non-fatal WAL error before handing over anything past the missing delivery", async () => {
    const r = await withThief(false);
    // The server serves both pulls: whichever delivery the thief took, the sink hands over only what came before it.
    const s = r.stolen!;
    expect(records).toContain(s);
    expect(r.lsns).toEqual(records.filter((l) => l < s));
    expect(r.errors).toEqual([{ message: expect.stringMatching(/delivery \d+ of the WAL consumer never arrived \(got \d+, LSN \d+\); starting over from P \+ 1/) as unknown as string, fatal: false }]);
  });

  it("gap - negative control: with the check off the sink hands over the other LSNs without the stolen one (an ack-all of 5 would acknowledge it unread)", async () => {
    const r = await withThief(true);
    const s = r.stolen!;
    expect(records).toContain(s);
    expect(r.lsns).toEqual(records.filter((l) => l !== s));
    expect(r.errors).toEqual([]);
  });
});
