// The queue between the snapshot thread's packer and its object store writer:
// parts come out in order, the packer waits while the writer is `limit` parts
// behind, and a failed writer fails the packer's next push.
import { describe, expect, it } from "vitest";
import { PartQueue } from "../../src/snapshot/partqueue.js";

const part = (n: number): Uint8Array => new Uint8Array([n]);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("snapshot - part queue", () => {
  it("part queue - parts are read in order and the reader ends after close", async () => {
    const q = new PartQueue(2);
    const read = (async () => {
      const got: number[] = [];
      for await (const p of q) got.push(p[0]!);
      return got;
    })();
    for (let i = 0; i < 10; i++) await q.push(part(i));
    q.close();
    expect(await read).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("part queue - a push waits while `limit` parts are unread, and goes on once one is read", async () => {
    const q = new PartQueue(2);
    await q.push(part(0));
    await q.push(part(1));
    let third = false;
    const pushing = q.push(part(2)).then(() => (third = true));
    await tick();
    expect(third).toBe(false);
    const it = q[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual(part(0));
    await pushing;
    expect(third).toBe(true);
  });

  it("part queue - a failed reader fails a waiting push and every later one; the reader throws it", async () => {
    const q = new PartQueue(1);
    await q.push(part(0));
    const waiting = q.push(part(1));
    q.fail(new Error("store full"));
    await expect(waiting).rejects.toThrow("store full");
    await expect(q.push(part(2))).rejects.toThrow("store full");
    await expect(q[Symbol.asyncIterator]().next()).rejects.toThrow("store full");
  });
});
