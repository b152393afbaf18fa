// The node catalog against a real nats-server: the initial load ends on the KV
// watcher's own marker (every key seen, none missing), later changes arrive,
// and a watcher whose consumer is deleted is re-opened (resync).
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { natsFixture } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { MetadataStore, openCatalog } from "../../src/control/index.js";
import type { NodeCatalog } from "../../src/control/index.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { Catalog } from "../../src/catalog.js";

let f: NatsFixture;
beforeAll(async () => {
  f = await natsFixture();
});
afterAll(async () => {
  await f?.close();
});

const spec = (names: readonly string[]) =>
  parseClusterSpec({ tenants: names.map((name) => ({ name, tables: [{ name: "trades", shards: 1, columns: [{ name: "price", type: "float64" }] }] })) });
const tenantsOf = (c: Catalog): string[] => [...c.keys()].sort();

describe("node catalog on nats-server", () => {
  it("catalog - an empty px_config loads as an empty catalog", async () => {
    const c = await openCatalog(f.nc);
    try {
      expect((await c.whenLoaded()).size).toBe(0);
    } finally {
      await c.stop();
    }
  });

  it("catalog - loaded only after every tenant was seen; later changes arrive; a stalled watcher resyncs", async () => {
    const names = Array.from({ length: 300 }, (_, i) => `t${String(i).padStart(3, "0")}`);
    const store = await MetadataStore.open(f.nc);
    await store.applyCurrent(spec(names));
    const lines: string[] = [];
    const sizes: number[] = [];
    const c: NodeCatalog = await openCatalog(f.nc, 1, { log: (l) => lines.push(l) });
    try {
      c.subscribe((cat) => sizes.push(cat.size));
      // 300 keys take several deliveries: a load that ended early would show fewer.
      expect(tenantsOf(await c.whenLoaded())).toEqual(names);
      expect(sizes[0]).toBe(300);

      await store.applyCurrent(spec(["zz1"]));
      await vi.waitFor(() => expect(c.current().has("zz1")).toBe(true), { timeout: 5_000 });

      // Delete the watcher's consumer (the one with a subscriber bound; stopped watchers' linger until inactive): the iterator does not end, it only stops delivering.
      const jsm = await jetstreamManager(f.nc);
      const watchers = async (): Promise<string[]> => (await jsm.consumers.list("KV_px_config").next()).filter((ci) => ci.push_bound === true).map((ci) => ci.name);
      const before = await watchers();
      expect(before).toHaveLength(1);
      await jsm.consumers.delete("KV_px_config", before[0]!);
      await store.applyCurrent(spec(["zz2"]));
      await vi.waitFor(() => expect(c.current().has("zz2")).toBe(true), { timeout: 15_000 });
      expect(lines.some((l) => /stalled.*resyncing/.test(l))).toBe(true);
      const after = await watchers();
      expect(after).toHaveLength(1);
      expect(after[0]).not.toBe(before[0]);
      expect(c.current().size).toBe(302);
    } finally {
      await c.stop();
    }
  });
});
