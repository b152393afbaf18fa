// The sink's consumer answering "JetStream system temporarily unavailable"
// (err_code 10008, its group without a leader; seen in chaos runs after NATS
// servers were SIGKILLed): the ack floor reads 0 and positioning deletes and
// makes it anew. A fake manager answers as the server did; any other error
// still fails (the negative control: the old code failed on 10008 too).
import { describe, expect, it } from "vitest";
import { JetStreamApiError } from "@nats-io/jetstream";
import type { JetStreamManager } from "@nats-io/jetstream";
import { consumerAckFloor, consumerUnreadable, positionSinkConsumer } from "../../src/sink/wal.js";
import type { ConsumerProbe } from "../../src/sink/wal.js";

const shard = { tenant: "ll", table: "t", bucket: 2 };
const unavailable = (): JetStreamApiError => new JetStreamApiError({ code: 503, err_code: 10008, description: "JetStream system temporarily unavailable" });

function fakeJsm(infoError: () => Error): { jsm: JetStreamManager; calls: string[] } {
  const calls: string[] = [];
  const jsm = {
    consumers: {
      info: async (stream: string, name: string) => {
        calls.push(`info ${stream} ${name}`);
        throw infoError();
      },
      delete: async (stream: string, name: string) => {
        calls.push(`delete ${stream} ${name}`);
        return true;
      },
      add: async (stream: string, cfg: { durable_name: string; opt_start_seq: number; filter_subject: string }) => {
        calls.push(`add ${stream} ${cfg.durable_name} from ${cfg.opt_start_seq} on ${cfg.filter_subject}`);
        return {};
      },
    },
  } as unknown as JetStreamManager;
  return { jsm, calls };
}

describe("sink - a consumer without a leader (fake manager)", () => {
  it("leaderless - 10008 on info: ack floor 0; positioning deletes and adds the consumer at the LSN asked", async () => {
    expect(consumerUnreadable(unavailable())).toBe(true);
    const { jsm, calls } = fakeJsm(unavailable);
    expect(await consumerAckFloor(jsm, shard)).toBe(0);
    const why: string[] = [];
    expect(await positionSinkConsumer(jsm, shard, 42, { onRecreate: (w) => why.push(w) })).toBe(1);
    expect(calls.slice(1)).toEqual(["info PX_WAL_ll px_sink_t_2", "delete PX_WAL_ll px_sink_t_2", "add PX_WAL_ll px_sink_t_2 from 42 on px.ll.wal.t.2"]);
    expect(why[0]).toMatch(/px_sink_t_2 cannot be read \(JetStream system temporarily unavailable\); deleting it and creating it again at LSN 42/);
  });

  it("leaderless - recovery found it unreadable: the positioning right after asks no second time (one info, not two timeouts); the probe is taken once", async () => {
    const { jsm, calls } = fakeJsm(unavailable);
    const probe: ConsumerProbe = {};
    expect(await consumerAckFloor(jsm, shard, probe)).toBe(0);
    expect(probe.unreadable).toMatch(/temporarily unavailable/);
    const why: string[] = [];
    expect(await positionSinkConsumer(jsm, shard, 42, { onRecreate: (w) => why.push(w), probe })).toBe(1);
    expect(calls).toEqual(["info PX_WAL_ll px_sink_t_2", "delete PX_WAL_ll px_sink_t_2", "add PX_WAL_ll px_sink_t_2 from 42 on px.ll.wal.t.2"]);
    expect(why[0]).toMatch(/at recovery just before/);
    // A later positioning (the consumer restarting from P + 1) asks again.
    expect(probe.unreadable).toBeUndefined();
    await positionSinkConsumer(jsm, shard, 50, { probe });
    expect(calls[3]).toBe("info PX_WAL_ll px_sink_t_2");
  });

  it("leaderless - another refusal of info still fails both (not every error means the consumer is unreadable)", async () => {
    const other = (): JetStreamApiError => new JetStreamApiError({ code: 500, err_code: 10999, description: "something else" });
    expect(consumerUnreadable(other())).toBe(false);
    const { jsm, calls } = fakeJsm(other);
    await expect(consumerAckFloor(jsm, shard)).rejects.toThrow(/something else/);
    await expect(positionSinkConsumer(jsm, shard, 42)).rejects.toThrow(/something else/);
    expect(calls.filter((c) => c.startsWith("delete") || c.startsWith("add"))).toEqual([]);
  });
});
