// freshReads: every caller gets a read that started after its call; callers
// during a read share the next one (at most one running, one waiting).
import { describe, expect, it } from "vitest";
import { freshReads } from "../../src/wal/index.js";

/** A read the test completes by hand; `started` counts reads begun. */
function manualReads() {
  const pending: ((v: number) => void)[] = [];
  let started = 0;
  return {
    read: () => new Promise<number>((r) => (started++, pending.push(r))),
    finish: (v: number) => pending.shift()!(v),
    get started() {
      return started;
    },
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("wal fresh reads", () => {
  it("fresh - callers during a running read wait for the next read, which all of them share", async () => {
    const m = manualReads();
    const fresh = freshReads(m.read);
    const a = fresh();
    const b = fresh();
    const c = fresh();
    expect(m.started).toBe(1);
    m.finish(1);
    expect(await a).toBe(1);
    await turn();
    // b and c came after read 1 started: they get read 2, never read 1's value.
    expect(m.started).toBe(2);
    m.finish(2);
    expect([await b, await c]).toEqual([2, 2]);
    const d = fresh();
    expect(m.started).toBe(3);
    m.finish(3);
    expect(await d).toBe(3);
  });

  it("fresh - a failed read fails its callers; the next caller starts a new read", async () => {
    let n = 0;
    const fresh = freshReads(async () => {
      if (++n === 1) throw new Error("JetStream API timeout");
      return n;
    });
    await expect(fresh()).rejects.toThrow("JetStream API timeout");
    expect(await fresh()).toBe(2);
  });
});
