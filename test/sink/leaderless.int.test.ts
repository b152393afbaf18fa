// A sink's durable consumer that cannot be read while the rest of JetStream
// answers. Chaos runs with NATS servers SIGKILLed (issue 19) left a sink
// consumer answering "JetStream system temporarily unavailable" for minutes,
// and its sink failing recovery on it until the run ended, with every other
// consumer of the stream working. That state of a consumer's group is not made
// on purpose here; the nearest that is: a consumer with one replica on a
// server that is then killed (its info gets no answer; the 10008 answer is in
// leaderless.test.ts). The sink must make its consumer anew at the position it
// asks for; the first assertion is the negative control (the plain info call,
// all the old code had, fails).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckPolicy, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { walStream, walSubject } from "../../protocols/subjects.js";
import { consumerAckFloor, consumerUnreadable, positionSinkConsumer, sinkConsumerName } from "../../src/sink/wal.js";
import type { ConsumerProbe } from "../../src/sink/wal.js";
import { natsCluster } from "../control/natscluster.js";
import type { NatsCluster } from "../control/natscluster.js";

let c: NatsCluster;
let nc: NatsConnection;

beforeAll(async () => {
  c = await natsCluster(3);
  nc = await c.connect("leaderless");
}, 60_000);
afterAll(async () => {
  await nc?.close().catch(() => {});
  await c?.close();
});

const shard = { tenant: "ll", table: "t", bucket: 0 };

describe("sink - a durable consumer without a leader", () => {
  it("leaderless - its info gets no answer; the sink's ack floor reads 0 and positioning makes the consumer anew, at the LSN asked", async () => {
    const jsm = await jetstreamManager(nc);
    const stream = walStream(shard.tenant);
    const subject = walSubject(shard.tenant, shard.table, shard.bucket);
    await jsm.streams.add({ name: stream, subjects: [`${subject}`], num_replicas: 3 });
    const name = sinkConsumerName(shard);
    // One replica: killing its server leaves the consumer without a leader while the stream (R3) and the meta group go on.
    await jsm.consumers.add(stream, { durable_name: name, filter_subject: subject, ack_policy: AckPolicy.All, num_replicas: 1 });
    const leader = (await jsm.consumers.info(stream, name)).cluster?.leader;
    const victim = c.servers.find((s) => s.options.serverName === leader || `px_${s.port}` === leader);
    expect(victim, `the consumer's server ${leader} among ${c.servers.map((s) => s.options.serverName ?? s.port).join(", ")}`).toBeDefined();
    victim!.kill("SIGKILL");
    // Negative control: what the sink called before, the consumer's info, fails (no server answers for it).
    const refusal = await jsm.consumers.info(stream, name).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(consumerUnreadable(refusal), String(refusal)).toBe(true);
    // Recovery notes the consumer it could not read, so the positioning right after does not ask (and time out) again.
    const probe: ConsumerProbe = {};
    expect(await consumerAckFloor(jsm, shard, probe)).toBe(0);
    expect(probe.unreadable).toBeDefined();
    const why: string[] = [];
    // As the sink does: a positioning that fails (here the add right after the delete can time out while the
    // cluster removes the old consumer) is tried again.
    let next: number | undefined;
    const failures: string[] = [];
    for (let i = 0; i < 6 && next === undefined; i++) {
      next = await positionSinkConsumer(jsm, shard, 7, { onRecreate: (w) => why.push(w), probe }).catch((e: unknown) => {
        failures.push((e as Error).message);
        return undefined;
      });
      if (next === undefined) await new Promise((r) => setTimeout(r, 2_000));
    }
    expect(next, `positioning failed: ${failures.join("; ")}`).toBe(1);
    expect(why.join("\n")).toMatch(/cannot be read .*creating it again at LSN 7/);
    // The first attempt went on what recovery had found; the probe is taken once.
    expect(why[0]).toMatch(/at recovery just before/);
    expect(probe.unreadable).toBeUndefined();
    const info = await jsm.consumers.info(stream, name);
    expect(info.config.opt_start_seq).toBe(7);
    expect(info.config.filter_subject).toBe(subject);
    expect(info.cluster?.leader).not.toBe(leader);
  }, 180_000);
});
