// The node catalog over the in-memory KV: loaded only after the watcher's
// initial values, changes reach subscribers, a broken watcher resyncs, a
// failing prepare keeps the previous catalog.
import { Duration, Schedule } from "effect";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Catalog } from "../../src/catalog.js";
import { jsonValue, MemoryKv, watchCatalog } from "../../src/control/index.js";
import type { NodeCatalog } from "../../src/control/index.js";
import { flush, tenant } from "./fakes.js";

const put = (kv: MemoryKv, name: string, tables: Record<string, number>) => kv.put(`tenant.${name}`, jsonValue.encode(tenant(name, tables)));
const tablesOf = (c: Catalog): string[] => [...c].flatMap(([t, tables]) => [...tables.keys()].map((n) => `${t}.${n}`)).sort();
// A 1 ms retry keeps the tests fast; the delays themselves are effect's Schedule.
const fast = Schedule.spaced(Duration.millis(1));

const open: NodeCatalog[] = [];
const start = (kv: MemoryKv, o: Parameters<typeof watchCatalog>[1] = {}): NodeCatalog => {
  const c = watchCatalog(kv, { retry: fast, ...o });
  open.push(c);
  return c;
};
afterEach(async () => {
  for (const c of open.splice(0)) await c.stop();
});

describe("node catalog", () => {
  it("catalog - loaded only after every initial value was seen", async () => {
    const kv = new MemoryKv("px_config");
    await put(kv, "acme", { trades: 2 });
    await put(kv, "beta", { quotes: 1 });
    await kv.put("other.key", jsonValue.encode({ ignored: true }));
    const c = start(kv);
    expect(c.loaded()).toBe(false);
    expect(c.current().size).toBe(0);
    const first = await c.whenLoaded();
    expect(tablesOf(first)).toEqual(["acme.trades", "beta.quotes"]);
    expect(c.loaded()).toBe(true);
    expect(c.current()).toBe(first);
  });

  it("catalog - an empty bucket loads as an empty catalog", async () => {
    const c = start(new MemoryKv("px_config"));
    expect((await c.whenLoaded()).size).toBe(0);
  });

  it("catalog - updates and deletes reach subscribers; an unreadable spec keeps the previous one", async () => {
    const kv = new MemoryKv("px_config");
    await put(kv, "acme", { trades: 2 });
    const c = start(kv);
    await c.whenLoaded();
    const seen: string[][] = [];
    const unsubscribe = c.subscribe((cat) => seen.push(tablesOf(cat)));
    expect(seen).toEqual([["acme.trades"]]); // a late subscriber gets the current catalog at once
    await put(kv, "acme", { trades: 2, quotes: 1 });
    await put(kv, "beta", { bars: 1 });
    await kv.put("tenant.gamma", jsonValue.encode({ name: "gamma", tables: "not a list" }));
    await kv.delete("tenant.beta");
    await flush();
    expect(seen).toEqual([["acme.trades"], ["acme.quotes", "acme.trades"], ["acme.quotes", "acme.trades", "beta.bars"], ["acme.quotes", "acme.trades"]]);
    unsubscribe();
    await put(kv, "delta", { x: 1 });
    await flush();
    expect(seen).toHaveLength(4);
    expect(tablesOf(c.current())).toEqual(["acme.quotes", "acme.trades", "delta.x"]);
  });

  it("catalog - a broken watcher resyncs and catches up with what changed meanwhile", async () => {
    const kv = new MemoryKv("px_config");
    await put(kv, "acme", { trades: 2 });
    const lines: string[] = [];
    const c = start(kv, { log: (l) => lines.push(l) });
    await c.whenLoaded();
    kv.unavailable = true; // the re-open fails until NATS is back
    kv.breakWatchers();
    kv.unavailable = false;
    await put(kv, "beta", { quotes: 1 }); // written while no watcher was open
    await vi.waitFor(() => expect(tablesOf(c.current())).toEqual(["acme.trades", "beta.quotes"]));
    expect(lines.some((l) => /watcher consumer lost/.test(l) && /resyncing/.test(l))).toBe(true);
    expect(c.loaded()).toBe(true);
  });

  it("catalog - opening retries until the bucket can be reached", async () => {
    const kv = new MemoryKv("px_config");
    await put(kv, "acme", { trades: 2 });
    kv.unavailable = true;
    const lines: string[] = [];
    const c = start(kv, { log: (l) => lines.push(l) });
    await vi.waitFor(() => expect(lines.filter((l) => /NATS is not reachable.*retrying/.test(l)).length).toBeGreaterThan(1));
    expect(c.loaded()).toBe(false);
    kv.unavailable = false;
    expect(tablesOf(await c.whenLoaded())).toEqual(["acme.trades"]);
  });

  it("catalog - served only after prepare; a failed prepare keeps the previous catalog", async () => {
    const kv = new MemoryKv("px_config");
    await put(kv, "acme", { trades: 2 });
    const prepared: string[][] = [];
    const lines: string[] = [];
    const c = start(kv, {
      prepare: async (cat) => {
        if (cat.has("bad")) throw new Error("streams of tenant bad cannot be created");
        prepared.push([...cat.keys()]);
      },
      log: (l) => lines.push(l),
    });
    await c.whenLoaded();
    expect(prepared).toEqual([["acme"]]);
    await put(kv, "bad", { t: 1 });
    await flush();
    expect([...c.current().keys()]).toEqual(["acme"]);
    expect(lines.some((l) => /cannot serve.*streams of tenant bad/.test(l))).toBe(true);
  });

  it("catalog - a failed first prepare (a JetStream timeout) is retried without waiting for a px_config change", async () => {
    const kv = new MemoryKv("px_config");
    await put(kv, "acme", { trades: 2 });
    let attempts = 0;
    const lines: string[] = [];
    const problems: (string | undefined)[] = [];
    // prepare runs on a later microtask, after start returned.
    const c = start(kv, {
      prepare: async () => {
        // What /readyz shows while the retries go on: the previous attempt's failure.
        problems.push(c.prepareProblem());
        if (++attempts < 3) throw new Error("JetStream API timeout");
      },
      prepareRetryBaseMs: 1,
      log: (l) => lines.push(l),
    });
    expect(tablesOf(await c.whenLoaded())).toEqual(["acme.trades"]);
    expect(attempts).toBe(3);
    expect(problems).toEqual([undefined, "JetStream API timeout", "JetStream API timeout"]);
    expect(c.prepareProblem()).toBeUndefined();
    expect(lines.filter((l) => /JetStream API timeout.*retrying in/.test(l))).toHaveLength(2);
  });

  it("catalog - a retry of a failed prepare gives way to a newer catalog", async () => {
    const kv = new MemoryKv("px_config");
    await put(kv, "acme", { trades: 2 });
    const prepared: string[][] = [];
    const c = start(kv, {
      prepare: async (cat) => {
        prepared.push([...cat.keys()]);
        if (cat.has("bad")) throw new Error("streams of tenant bad cannot be created");
      },
      prepareRetryBaseMs: 20,
      log: () => {},
    });
    await c.whenLoaded();
    await put(kv, "bad", { t: 1 });
    await flush();
    await kv.delete("tenant.bad");
    await new Promise((r) => setTimeout(r, 60));
    // acme, acme+bad (failed), acme: the failed catalog is not prepared again once a newer one came.
    expect(prepared).toEqual([["acme"], ["acme", "bad"], ["acme"]]);
    expect([...c.current().keys()]).toEqual(["acme"]);
  });

  it("catalog - stop ends the watch", async () => {
    const kv = new MemoryKv("px_config");
    const c = start(kv);
    await c.whenLoaded();
    await c.stop();
    await put(kv, "acme", { trades: 1 });
    await flush();
    expect(c.current().size).toBe(0);
  });
});
