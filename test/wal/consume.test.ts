// WAL consumer batching (the shard's and the sink's readers share it): batch
// size, hand-over when caught up or on the next turn, skips, errors, stop.
import { describe, expect, it } from "vitest";
import type { JsMsg } from "@nats-io/jetstream";
import { consumeBatches } from "../../src/wal/index.js";

/** Deliveries as the server sends them: `pending` is what is left after each. */
function msg(seq: number, pending: number): JsMsg {
  return { seq, data: new Uint8Array([seq]), info: { pending } } as unknown as JsMsg;
}

/** A message stream the test feeds; `end()` closes it. */
function feed() {
  const queue: JsMsg[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  const iterable: AsyncIterable<JsMsg> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const m = queue.shift();
        if (m !== undefined) {
          yield m;
          continue;
        }
        if (ended) return;
        await new Promise<void>((r) => (wake = r));
      }
    },
  };
  return {
    iterable,
    push: (...ms: JsMsg[]) => {
      queue.push(...ms);
      wake?.();
    },
    end: () => {
      ended = true;
      wake?.();
    },
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("wal consume", () => {
  it("batching - full batches of maxBatch; the rest once the server has nothing pending", async () => {
    const batches: number[][] = [];
    let caughtUp = 0;
    const f = feed();
    const done = consumeBatches(f.iterable, { maxBatch: 2, stopped: () => false, read: (m) => m.seq, onBatch: (b) => batches.push(b), onCaughtUp: () => caughtUp++ });
    f.push(msg(1, 4), msg(2, 3), msg(3, 2), msg(4, 1), msg(5, 0));
    f.end();
    await done;
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    expect(caughtUp).toBe(1);
  });

  it("batching - a trickle is handed over on the next turn, not held for a full batch", async () => {
    const batches: number[][] = [];
    const f = feed();
    const done = consumeBatches(f.iterable, { maxBatch: 100, stopped: () => false, read: (m) => m.seq, onBatch: (b) => batches.push(b) });
    f.push(msg(1, 10), msg(2, 9));
    await turn();
    await turn();
    expect(batches).toEqual([[1, 2]]);
    f.end();
    await done;
  });

  it("skips - undefined from read drops the message (a redelivery)", async () => {
    const batches: number[][] = [];
    const f = feed();
    const done = consumeBatches(f.iterable, { maxBatch: 10, stopped: () => false, read: (m) => (m.seq === 2 ? undefined : m.seq), onBatch: (b) => batches.push(b) });
    f.push(msg(1, 2), msg(2, 1), msg(3, 0));
    f.end();
    await done;
    expect(batches).toEqual([[1, 3]]);
  });

  it("errors - a record that cannot be read ends the loop after the records before it are handed over", async () => {
    const batches: number[][] = [];
    const f = feed();
    const done = consumeBatches(f.iterable, {
      maxBatch: 10,
      stopped: () => false,
      read: (m) => {
        if (m.seq === 3) throw new Error("bad record 3");
        return m.seq;
      },
      onBatch: (b) => batches.push(b),
    });
    f.push(msg(1, 5), msg(2, 4), msg(3, 3), msg(4, 2));
    await expect(done).rejects.toThrow("bad record 3");
    expect(batches).toEqual([[1, 2]]);
  });

  it("caught up - never before the records it covers, when a batch is held by beforeBatch (the gap check)", async () => {
    // The shard goes live on caughtUp: before this fix it went live while its last batch waited for the gap check.
    const events: string[] = [];
    const f = feed();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const done = consumeBatches(f.iterable, {
      maxBatch: 10,
      stopped: () => false,
      read: (m) => m.seq,
      beforeBatch: () => gate,
      onBatch: (b) => events.push(`batch ${b.join(",")}`),
      onCaughtUp: () => events.push("caught up"),
    });
    f.push(msg(1, 2), msg(3, 1), msg(5, 0));
    await turn();
    expect(events).toEqual([]);
    release();
    f.end();
    await done;
    expect(events).toEqual(["batch 1,3,5", "caught up"]);
  });

  it("a later batch's check failing while an earlier one is held: the loop ends with it, no unhandled rejection", async () => {
    // Seen after a node was SIGSTOPped: every pending floor read timed out at once on SIGCONT; the later
    // check's promise rejected before the chain reached it and the process died of an unhandled rejection.
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const f = feed();
      let release!: () => void;
      const first = new Promise<void>((r) => (release = r));
      const gates: (() => Promise<void>)[] = [() => first, () => Promise.reject(new Error("floor read timed out"))];
      let refused = 0;
      const batches: number[][] = [];
      const done = consumeBatches(f.iterable, {
        maxBatch: 1,
        stopped: () => false,
        read: (m) => m.seq,
        beforeBatch: () => gates.shift()?.(),
        onBatch: (b) => batches.push(b),
        onRefused: () => refused++,
      });
      f.push(msg(1, 1), msg(3, 0));
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      release();
      f.end();
      await expect(done).rejects.toThrow("floor read timed out");
      expect(batches).toEqual([[1]]);
      expect(refused).toBe(1);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("stop - once the reader stopped nothing more is handed over", async () => {
    const batches: number[][] = [];
    let stopped = false;
    const f = feed();
    const done = consumeBatches(f.iterable, { maxBatch: 10, stopped: () => stopped, read: (m) => m.seq, onBatch: (b) => batches.push(b) });
    f.push(msg(1, 5));
    stopped = true;
    f.push(msg(2, 0));
    await done;
    expect(batches).toEqual([]);
  });
});
