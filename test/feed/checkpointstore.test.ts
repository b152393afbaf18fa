// Where a feed's checkpoints live (src/node/feed/checkpoints.ts), over an
// in-memory object store: the two newest of a definition are kept, other
// definitions under the name go on save, and a removed feed's drop takes all
// of them, also the one a save was still writing.
import { describe, expect, it } from "vitest";
import type { ObjectStore } from "@nats-io/obj";
import { feedCheckpoints, sweepFeedCheckpoints } from "../../src/node/feed/checkpoints.js";

/** The object store calls checkpoints.ts makes; `gate` (when set) holds each putBlob until it resolves. */
function memoryStore(): { os: ObjectStore; names: () => string[]; lists: number; gate?: Promise<void> } {
  const objects = new Map<string, Uint8Array>();
  const s: { os: ObjectStore; names: () => string[]; lists: number; gate?: Promise<void> } = {
    names: () => [...objects.keys()].sort(),
    lists: 0,
    os: {
      list: () => {
        s.lists++;
        return Promise.resolve([...objects.keys()].map((name) => ({ name, deleted: false })));
      },
      putBlob: async (meta: { name: string }, bytes: Uint8Array) => {
        await s.gate;
        objects.set(meta.name, bytes);
        return {};
      },
      getBlob: (name: string) => Promise.resolve(objects.get(name) ?? null),
      delete: (name: string) => Promise.resolve(objects.delete(name)),
    } as unknown as ObjectStore,
  };
  return s;
}

describe("feed checkpoint store", () => {
  it("checkpoints - save keeps this definition's two newest and removes other definitions'; load reads the newest", async () => {
    const m = memoryStore();
    const old = feedCheckpoints(m.os, "t", "vwap", "fpold");
    await old.save(5, Uint8Array.of(5));
    const cur = feedCheckpoints(m.os, "t", "vwap", "fpnew");
    for (const lsn of [10, 20, 30]) await cur.save(lsn, Uint8Array.of(lsn));
    expect(m.names()).toEqual(["_feed.t.vwap.fpnew.00000000000000000020", "_feed.t.vwap.fpnew.00000000000000000030"]);
    expect(await cur.load()).toEqual(Uint8Array.of(30));
  });

  it("checkpoints - the store (every object's info) is listed once, not on every save; saves at once land in order", async () => {
    const m = memoryStore();
    const c = feedCheckpoints(m.os, "t", "vwap", "fp");
    expect(await c.load()).toBeUndefined();
    await Promise.all([40, 50, 60, 70].map((lsn) => c.save(lsn, Uint8Array.of(lsn))));
    expect(m.lists).toBe(1);
    expect(m.names()).toEqual(["_feed.t.vwap.fp.00000000000000000060", "_feed.t.vwap.fp.00000000000000000070"]);
    // Another definition's first save lists and removes this one's; written after this writer's listing, it is not known to
    // this writer's saves: its next listing (load, drop) sees it.
    await feedCheckpoints(m.os, "t", "vwap", "fpother").save(80, Uint8Array.of(80));
    await c.save(90, Uint8Array.of(90));
    expect(m.names()).toEqual(["_feed.t.vwap.fp.00000000000000000090", "_feed.t.vwap.fpother.00000000000000000080"]);
    expect(await c.drop()).toBe(2);
    expect(m.names()).toEqual([]);
  });

  it("checkpoints - drop removes every checkpoint under the feed's name and no other feed's", async () => {
    const m = memoryStore();
    await feedCheckpoints(m.os, "t", "vwap2", "fp").save(7, Uint8Array.of(7));
    await feedCheckpoints(m.os, "u", "vwap", "fp").save(8, Uint8Array.of(8));
    const c = feedCheckpoints(m.os, "t", "vwap", "fp");
    await c.save(9, Uint8Array.of(9));
    await c.save(10, Uint8Array.of(10));
    expect(await c.drop()).toBe(2);
    expect(m.names()).toEqual(["_feed.t.vwap2.fp.00000000000000000007", "_feed.u.vwap.fp.00000000000000000008"]);
  });

  it("checkpoints - a drop while a save is writing waits for it: the object written does not outlive the drop", async () => {
    const m = memoryStore();
    let open!: () => void;
    m.gate = new Promise<void>((r) => (open = r));
    const c = feedCheckpoints(m.os, "t", "bars", "fp");
    const saving = c.save(3, Uint8Array.of(3));
    const dropping = c.drop();
    // The save lands only now, after the drop was asked for.
    open();
    await saving;
    await dropping;
    expect(m.names()).toEqual([]);
  });

  it("checkpoints - a sweep removes the checkpoints of feeds not in the spec, and nothing else", async () => {
    const m = memoryStore();
    for (const [t, n] of [["t", "kept"], ["t", "gone"], ["u", "kept"], ["v", "gone"]] as const) await feedCheckpoints(m.os, t, n, "fp").save(1, Uint8Array.of(1));
    await m.os.putBlob({ name: "px.t.trades.0.snapshot" }, Uint8Array.of(9));
    const gone = await sweepFeedCheckpoints(m.os, [
      { tenant: "t", name: "kept" },
      { tenant: "u", name: "kept" },
    ]);
    expect(gone.sort()).toEqual(["_feed.t.gone.fp.00000000000000000001", "_feed.v.gone.fp.00000000000000000001"]);
    expect(m.names()).toEqual(["_feed.t.kept.fp.00000000000000000001", "_feed.u.kept.fp.00000000000000000001", "px.t.trades.0.snapshot"]);
  });
});
