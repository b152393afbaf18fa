// The watermark announcer with a fake JetStream client: one publish at a time,
// in order, only the newest waiting P, retries after a failure, and
// `announced` only once the stream stored the watermark.
import { describe, expect, it } from "vitest";
import { createActor, setup, sendTo } from "xstate";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Announce, SinkEvent } from "../../actors/sink.js";
import { decodeWatermark } from "../../protocols/codec.js";
import { jetstreamAnnouncer } from "../../src/node/sink/announcer.js";
import { DEFAULT_RETRY_POLICY } from "../../src/sink/index.js";

interface Pub {
  readonly subject: string;
  readonly p: number;
  resolve(): void;
  reject(e: Error): void;
}

function fakeJs(pubs: Pub[]): JetStreamClient {
  return {
    publish: (subject: string, data: Uint8Array) =>
      new Promise((resolve, reject) => {
        pubs.push({ subject, p: Number(decodeWatermark(data).persistedLsn), resolve: () => resolve({ seq: pubs.length, stream: "PX_WM_t", duplicate: false }), reject });
      }),
  } as unknown as JetStreamClient;
}

/** A parent that forwards `announce` commands to the announcer and records what comes back. */
function harness(js: JetStreamClient) {
  const back: SinkEvent[] = [];
  const parent = setup({
    types: { events: {} as Announce | SinkEvent },
    actors: { announcer: jetstreamAnnouncer(js, () => 1_000) },
  }).createMachine({
    invoke: { id: "a", src: "announcer", input: { shard: { tenant: "t", table: "trades", bucket: 2 }, leaseRevision: 4, retry: { ...DEFAULT_RETRY_POLICY, baseMs: 5, maxMs: 5 } } },
    on: {
      announce: { actions: sendTo("a", ({ event }) => event) },
      announced: { actions: ({ event }) => void back.push(event) },
      announceFailed: { actions: ({ event }) => void back.push(event) },
    },
  });
  const actor = createActor(parent).start();
  return { actor, back, announce: (p: number) => actor.send({ type: "announce", persistedLsn: p, tPersistedMicros: p * 10 }) };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("sink announcer", () => {
  it("announcer - publishes in order, one at a time; while one is out only the newest P waits", async () => {
    const pubs: Pub[] = [];
    const h = harness(fakeJs(pubs));
    h.announce(3);
    h.announce(5);
    h.announce(8);
    await tick();
    expect(pubs.map((x) => x.p)).toEqual([3]);
    expect(pubs[0]!.subject).toBe("px.t.wm.trades.2");
    pubs[0]!.resolve();
    await tick();
    expect(pubs.map((x) => x.p)).toEqual([3, 8]);
    expect(h.back).toEqual([{ type: "announced", persistedLsn: 3, atMs: 1_000 }]);
    pubs[1]!.resolve();
    await tick();
    expect(h.back.map((e) => (e.type === "announced" ? e.persistedLsn : e.type))).toEqual([3, 8]);
  });

  it("announcer - a failed publish is reported and retried; nothing is announced before it is stored", async () => {
    const pubs: Pub[] = [];
    const h = harness(fakeJs(pubs));
    h.announce(4);
    await tick();
    pubs[0]!.reject(new Error("no responders"));
    await tick();
    expect(h.back).toEqual([{ type: "announceFailed", message: "no responders" }]);
    h.announce(6);
    await new Promise((r) => setTimeout(r, 20));
    expect(pubs.map((x) => x.p)).toEqual([4, 6]);
    pubs[1]!.resolve();
    await tick();
    expect(h.back.at(-1)).toEqual({ type: "announced", persistedLsn: 6, atMs: 1_000 });
  });

  it("announcer - the watermark carries P, T_persisted and the lease revision", async () => {
    const seen: Uint8Array[] = [];
    const js = { publish: async (_s: string, d: Uint8Array) => void seen.push(d) } as unknown as JetStreamClient;
    const h = harness(js);
    h.announce(7);
    await tick();
    expect(decodeWatermark(seen[0]!)).toMatchObject({ tenant: "t", table: "trades", bucket: 2, persistedLsn: 7n, tPersistedMicros: 70n, leaseRevision: 4n });
  });
});

