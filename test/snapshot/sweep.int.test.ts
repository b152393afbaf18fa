// Leftovers of unfinished snapshot writes on a real nats-server: the chunks of
// a write cut off before its info and a data object without its manifest are
// removed once older than the grace, fresh ones and every finished snapshot
// are not (negative control: a sweep blind to the objects' infos destroys the
// snapshot, which then loads as missing instead of hanging); a store sweeps
// after a snapshot it wrote and logs what it removed. A write whose chunks
// were swept while it stalled fails before its
// info is written (negative control: with that check blinded it leaves an
// object that cannot be read). A read whose chunks go after its count check
// ends at its idle deadline (negative control: without one it waits on).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { ObjectStore } from "@nats-io/obj";
import { connect, nuid } from "@nats-io/transport-node";
import { OBJ_SNAPSHOTS } from "../../protocols/subjects.js";
import { HotTable } from "../../src/hotset/index.js";
import { putObject, getObject, readObject } from "../../src/snapshot/objects.js";
import { SnapshotStore } from "../../src/snapshot/store.js";
import { sweepSnapshotLeftovers, unreferencedChunkSubjects } from "../../src/snapshot/sweep.js";
import { genBatches } from "../../bench/gen.js";
import { natsFixture, serviceCreds } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { TRADES } from "../hotset/fixtures.js";

const STREAM = `OBJ_${OBJ_SNAPSHOTS}`;
let f: NatsFixture;
let os: ObjectStore;
let jsm: JetStreamManager;

beforeAll(async () => {
  f = await natsFixture();
  await SnapshotStore.open(f.nc);
  os = await new Objm(f.nc).open(OBJ_SNAPSHOTS);
  jsm = await jetstreamManager(f.nc);
});
afterAll(async () => {
  await f?.close();
});

function table(ticks: number, seed: number): HotTable {
  const t = new HotTable(TRADES);
  let lsn = 0;
  for (const b of genBatches("trades", { symbols: 50, ticks, batchRows: 5_000, seed })) t.apply(++lsn, b);
  return t;
}

/** Messages the stream holds on `subject`. */
const held = async (subject: string): Promise<number> => (await jsm.streams.info(STREAM, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;

/** Chunk subjects of writes in progress (no info names them yet). */
const inProgress = async (): Promise<string[]> => unreferencedChunkSubjects(OBJ_SNAPSHOTS, Object.keys((await jsm.streams.info(STREAM, { subjects_filter: `$O.${OBJ_SNAPSHOTS}.C.>` })).state.subjects ?? {}), await os.list());

/** The object store, whose first listing is `listed` (taken earlier): the sweep's first look predates what happened since. */
function staleOnce(listed: Awaited<ReturnType<ObjectStore["list"]>>): ObjectStore {
  let first = true;
  return Object.create(os, {
    list: {
      value: async () => {
        if (!first) return os.list();
        first = false;
        return listed;
      },
    },
  }) as ObjectStore;
}

/** `n` bytes of a pattern (not all zeros: nothing about them is special). */
const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe("snapshot sweep - leftovers of unfinished writes", () => {
  const shard = { tenant: "sw", table: "trades", bucket: 0 };

  it("sweep - a cut-off write's chunks and a data object without manifest go once past the grace; fresh ones and the finished snapshot stay", async () => {
    const store = await SnapshotStore.open(f.nc);
    const t = table(20_000, 1);
    await store.write(shard, t);
    const js = jsm.jetstream();
    const cut = `$O.${OBJ_SNAPSHOTS}.C.${nuid.next()}`;
    for (let i = 0; i < 3; i++) await js.publish(cut, bytes(1_000, i));
    const lone = "sw.trades.0.00000000000000000099.data";
    await os.put({ name: lone }, ReadableStream.from([bytes(5_000, 7)]));

    // Within the grace: both look like writes in progress.
    expect(await sweepSnapshotLeftovers(jsm, os, OBJ_SNAPSHOTS, 60_000)).toEqual({ chunkSubjects: [], dataObjects: [] });
    expect(await held(cut)).toBe(3);

    const swept = await sweepSnapshotLeftovers(jsm, os, OBJ_SNAPSHOTS, 60_000, Date.now() + 120_000);
    expect(swept).toEqual({ chunkSubjects: [cut], dataObjects: [lone] });
    expect(await held(cut)).toBe(0);
    expect((await os.info(lone))?.deleted ?? true).toBe(true);
    const loaded = (await store.loadLatest(shard, TRADES, () => {}))!;
    expect(loaded.table.rowCount).toBe(20_000);
    // Nothing left to sweep.
    expect(await sweepSnapshotLeftovers(jsm, os, OBJ_SNAPSHOTS, 0)).toEqual({ chunkSubjects: [], dataObjects: [] });
  });

  it("sweep after a snapshot - a store sweeps in the background after the first snapshot it writes and logs what it removed; a grace below 60 s from PX_SNAPSHOT_SWEEP_GRACE_S is refused, logged naming the variable", async () => {
    const s = { tenant: "sw", table: "trades", bucket: 4 };
    const cut = `$O.${OBJ_SNAPSHOTS}.C.${nuid.next()}`;
    await jsm.jetstream().publish(cut, bytes(1_000, 3));
    const lines: string[] = [];
    const store = await SnapshotStore.open(f.nc, 1, undefined, undefined, { log: (l) => lines.push(l), graceMs: 0 });
    await store.write(s, table(20_000, 4));
    await store.sweeping;
    expect(lines).toEqual(["snapshot store: removed leftovers of unfinished snapshot writes: the chunks of 1 cut-off writes, 0 data objects without a manifest"]);
    expect(await held(cut)).toBe(0);
    for (const bad of ["30", "soon", " "]) {
      process.env.PX_SNAPSHOT_SWEEP_GRACE_S = bad;
      try {
        const other = await SnapshotStore.open(f.nc, 1, undefined, undefined, { log: (l) => lines.push(l) });
        await other.write(s, table(20_000, 5));
        await other.sweeping;
        expect(lines.at(-1)).toBe(`snapshot store: sweeping leftovers of unfinished snapshot writes failed (PX_SNAPSHOT_SWEEP_GRACE_S=${bad} is not a number of seconds >= 60; unset it for the default (900)); tried again after the next snapshot 10 min from now`);
        expect((await other.loadLatest(s, TRADES, () => {}))!.table.rowCount).toBe(20_000);
      } finally {
        delete process.env.PX_SNAPSHOT_SWEEP_GRACE_S;
      }
    }
  });

  it("sweep - a data object rewritten after the listing (a snapshot of the same LSN replaced it) or given its manifest meanwhile is kept", async () => {
    const name = "sw.trades.5.00000000000000000042.data";
    await os.put({ name }, ReadableStream.from([bytes(3_000, 1)]));
    const listed = await os.list();
    // The rewrite: same name, new chunks (new nuid), after the sweep listed the bucket.
    await os.put({ name }, ReadableStream.from([bytes(3_000, 2)]));
    const stale = staleOnce(listed);
    const r = await sweepSnapshotLeftovers(jsm, stale, OBJ_SNAPSHOTS, 0, Date.now() + 1_000);
    expect(r.dataObjects).toEqual([]);
    expect(Buffer.from((await os.getBlob(name))!).equals(Buffer.from(bytes(3_000, 2)))).toBe(true);
    // Its manifest written after the listing: kept too.
    const other = "sw.trades.5.00000000000000000043.data";
    await os.put({ name: other }, ReadableStream.from([bytes(3_000, 3)]));
    const listedAgain = await os.list();
    await os.put({ name: other.replace(/\.data$/, ".manifest") }, ReadableStream.from([bytes(10, 4)]));
    const stale2 = staleOnce(listedAgain);
    // The first one, unchanged since this listing and still without a manifest, goes now.
    expect((await sweepSnapshotLeftovers(jsm, stale2, OBJ_SNAPSHOTS, 0, Date.now() + 1_000)).dataObjects).toEqual([name]);
    expect((await os.info(other))?.deleted).toBe(false);
    // Without its manifest again, unchanged: it goes.
    await os.delete(other.replace(/\.data$/, ".manifest"));
    expect((await sweepSnapshotLeftovers(jsm, os, OBJ_SNAPSHOTS, 0, Date.now() + 1_000)).dataObjects).toEqual([other]);
  });

  it("sweep, negative control - blind to the objects' infos, the same sweep takes the finished snapshot's chunks: the shard would replay from the start", async () => {
    const s = { tenant: "sw", table: "trades", bucket: 1 };
    const store = await SnapshotStore.open(f.nc);
    await store.write(s, table(20_000, 2));
    const blind = Object.create(os, { list: { value: async () => [] } }) as ObjectStore;
    const swept = await sweepSnapshotLeftovers(jsm, blind, OBJ_SNAPSHOTS, 0);
    expect(swept.chunkSubjects.length).toBeGreaterThan(0);
    const lines: string[] = [];
    expect(await (await SnapshotStore.open(f.nc)).loadLatest(s, TRADES, (l) => lines.push(l))).toBeUndefined();
    expect(lines.join("\n")).toMatch(/unusable \(.*the stream holds 0 of its \d+ chunks/);
  });

  /** Writes 10 chunks of 4 KiB; after the 4th is acknowledged, purges the write's chunks as a sweep would. */
  async function cutMidWrite(js: JetStreamClient, name: string): Promise<unknown> {
    async function* parts(): AsyncGenerator<Uint8Array> {
      yield bytes(4 * 4096, 1);
      // The four chunks are sent (at most 4 await their PubAck): wait until the stream holds them.
      for (let i = 0; i < 200 && (await inProgress()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      for (const subject of await inProgress()) await jsm.streams.purge(STREAM, { filter: subject });
      yield bytes(6 * 4096, 2);
    }
    return putObject(js, os, OBJ_SNAPSHOTS, name, parts(), 4096).then(
      (r) => r,
      (e: unknown) => e,
    );
  }

  it("stalled write - chunks removed while it wrote: it fails naming the count and writes no info", async () => {
    const name = "sw.trades.2.cut.data";
    const r = await cutMidWrite(jsm.jetstream(), name);
    expect(String(r)).toMatch(new RegExp(`object ${name.replace(/\./g, "\\.")} of bucket ${OBJ_SNAPSHOTS}: the stream holds \\d of its 10 chunks`));
    expect(await os.info(name)).toBeNull();
  });

  it("stalled write, negative control - with the count check blinded (the stream said to hold every chunk) the write becomes an object that cannot be read", async () => {
    const name = "sw.trades.3.cut.data";
    const js = jsm.jetstream();
    let sent = 0;
    const countingJs = new Proxy(js, {
      get(target, p) {
        if (p === "publish") return (subject: string, data: Uint8Array, o?: object) => (subject.includes(".C.") && sent++, target.publish(subject, data, o));
        if (p === "jetstreamManager") return async () => new Proxy(jsm, { get: (m, q) => (q === "streams" ? new Proxy(jsm.streams, { get: (st, k) => (k === "info" ? async (stream: string, o: { subjects_filter: string }) => ({ state: { subjects: { [o.subjects_filter]: sent } } }) : Reflect.get(st, k).bind(st)) }) : Reflect.get(m, q)) });
        const v = Reflect.get(target, p) as unknown;
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const r = await cutMidWrite(countingJs, name);
    expect(r).toMatchObject({ bytes: 10 * 4096 });
    expect((await os.info(name))?.chunks).toBe(10);
    await expect(getObject(js, os, OBJ_SNAPSHOTS, name)).rejects.toThrow(/the stream holds \d of its 10 chunks/);
  });

  /**
   * Object `name` (10 chunks of 4 KiB) read over a connection of its own whose
   * consumer lookup first purges its chunks: the count check passed, then they
   * went. `close` ends that connection (and with it a read still waiting).
   */
  async function readPurgedMidway(name: string, idleMs: number): Promise<{ read: Promise<unknown>; close: () => Promise<void> }> {
    async function* parts(): AsyncGenerator<Uint8Array> {
      yield bytes(10 * 4096, 3);
    }
    await putObject(jsm.jetstream(), os, OBJ_SNAPSHOTS, name, parts(), 4096);
    const nuid = (await os.info(name))!.nuid;
    const nc = await connect({ servers: f.server.url, ...(await serviceCreds()) });
    const js = jetstream(nc);
    const purging = new Proxy(js, {
      get(target, p) {
        if (p === "consumers")
          return new Proxy(target.consumers, {
            get: (c, k) => (k === "get" ? async (...a: Parameters<typeof c.get>) => (await jsm.streams.purge(STREAM, { filter: `$O.${OBJ_SNAPSHOTS}.C.${nuid}` }), c.get(...a)) : Reflect.get(c, k)),
          });
        const v = Reflect.get(target, p) as unknown;
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const read = readObject(purging, os, OBJ_SNAPSHOTS, name, () => {}, undefined, idleMs).then(
      (r) => r,
      (e: unknown) => e,
    );
    return { read, close: () => nc.close() };
  }

  it("read - chunks removed after the count check: the read ends after its idle deadline, naming what it got", async () => {
    const { read, close } = await readPurgedMidway("sw.trades.4.purged.data", 500);
    expect(String(await read)).toMatch(/no chunk came for 500 ms after 0 of 10 \(chunks removed while it was read\?\)/);
    await close();
  });

  it("read, negative control - without the idle deadline the same read is still waiting 3 s later", async () => {
    const { read, close } = await readPurgedMidway("sw.trades.5.purged.data", 2 ** 31 - 1);
    const r = await Promise.race([read, new Promise((r) => setTimeout(() => r("still waiting"), 3_000))]);
    expect(r).toBe("still waiting");
    // Its connection closed, the read ends (nothing of it is left pending after the test).
    await close();
    expect(String(await read)).toMatch(/read 0 chunks, 0 bytes; its info says 10, 40960/);
  });
});
