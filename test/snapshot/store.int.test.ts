// The snapshot store's own data path (src/snapshot/objects.ts: pipelined chunk
// publishes, a pull-consumer read) against a real nats-server: a format-3
// snapshot written off the event loop loads to the same table and is a valid
// object for the object store client too, also when the snapshot thread writes
// it over a connection of its own (and fails, naming them, on credentials it
// cannot read); a damaged or missing chunk makes the
// load fall back to the older snapshot and then to none (full WAL replay), and
// such a snapshot never counts as verified for compaction; a format-2
// snapshot, as a node wrote it before format 3, still loads.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { ObjectStore } from "@nats-io/obj";
import { encodeSnapshotManifest } from "../../protocols/codec.js";
import { OBJ_SNAPSHOTS } from "../../protocols/subjects.js";
import { HotTable } from "../../src/hotset/index.js";
import type { HotTableColumns } from "../../src/hotset/index.js";
import { writeSnapshotOffLoop } from "../../src/node/shard/snapshotwriter.js";
import { encodeSnapshot, sha256Hex } from "../../src/snapshot/codec.js";
import { SnapshotStore } from "../../src/snapshot/store.js";
import { genBatches } from "../../bench/gen.js";
import { natsFixture, testNatsAuth } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { TRADES } from "../hotset/fixtures.js";

let f: NatsFixture;
let os: ObjectStore;

beforeAll(async () => {
  f = await natsFixture();
  await SnapshotStore.open(f.nc);
  os = await new Objm(f.nc).open(OBJ_SNAPSHOTS);
});
afterAll(async () => {
  await f?.close();
});

/** A table of `ticks` bench trades (enough rows for the worker thread: 100 k and more). */
function table(ticks: number, seed: number): HotTable {
  const t = new HotTable(TRADES);
  let lsn = 0;
  for (const b of genBatches("trades", { symbols: 200, ticks, batchRows: 10_000, seed })) t.apply(++lsn, b);
  return t;
}

const bits = (c: HotTableColumns): string =>
  sha256Hex(Buffer.concat(c.series.flatMap((s) => [s.tsMicros, s.lsn, s.rowInRecord, ...s.values].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)))));

/** Chunk messages of a data object, in order: their subject and bytes. */
async function chunksOf(name: string): Promise<{ subject: string; data: Uint8Array[] }> {
  const info = (await os.info(name))!;
  const subject = `$O.${OBJ_SNAPSHOTS}.C.${info.nuid}`;
  const jsm = await jetstreamManager(f.nc);
  const data: Uint8Array[] = [];
  const last = (await jsm.streams.getMessage(`OBJ_${OBJ_SNAPSHOTS}`, { last_by_subj: subject }))!.seq;
  for (let seq = 0; seq < last; ) {
    const m = (await jsm.direct.getMessage(`OBJ_${OBJ_SNAPSHOTS}`, { next_by_subj: subject, seq: seq + 1 }))!;
    data.push(m.data);
    seq = m.seq;
  }
  return { subject, data };
}

describe("snapshot store - pipelined data objects", () => {
  const shard = { tenant: "st", table: "trades", bucket: 0 };

  it("write/load - a 300 k tick snapshot written off the loop loads to the same table; the client's get reads the same object", async () => {
    const store = await SnapshotStore.open(f.nc);
    const t = table(300_000, 1);
    const w = await writeSnapshotOffLoop(store, shard, t);
    expect(w.rows).toBe(300_000);
    const lines: string[] = [];
    const loaded = (await store.loadLatest(shard, TRADES, (l) => lines.push(l)))!;
    expect(lines).toEqual([]);
    expect(loaded.manifest.dataFormat).toBe(3);
    expect(Number(loaded.manifest.dataBytes)).toBe(w.bytes);
    // 300 k ticks are 10.8 MB as format 2: format 3 is a fraction of it, in several 1 MiB chunks.
    expect(w.bytes).toBeLessThan(3_000_000);
    expect((await os.info(loaded.manifest.dataObject))!.chunks).toBeGreaterThan(1);
    expect(bits(loaded.table.exportColumns())).toBe(bits(t.exportColumns()));
    const viaClient = (await os.getBlob(loaded.manifest.dataObject))!;
    expect(sha256Hex(viaClient)).toBe(loaded.manifest.dataSha256);
    expect(await store.newestVerifiedLsn(shard)).toBe(Number(loaded.manifest.lsn));
  });

  it("thread upload - with a dial the snapshot thread writes the data object over its own connection: it loads to the same table, the client's get reads it; unreadable credentials fail that snapshot with their path named, and the next one is written", async () => {
    const s = { tenant: "st", table: "trades", bucket: 7 };
    const creds = (await testNatsAuth()).credsPath("service");
    const bad = await SnapshotStore.open(f.nc, 1, undefined, { servers: f.server.url, name: "test", credsPath: `${creds}.missing`, caPath: undefined });
    const t = table(300_000, 3);
    expect(bad.uploadTarget(s, { appliedLsn: 1, persistedLsn: 0, horizonMicros: 0, symbols: [], schemaVersion: 1 })?.name).toBe("st.trades.7.00000000000000000001.data");
    await expect(writeSnapshotOffLoop(bad, s, t)).rejects.toThrow(`cannot read NATS credentials ${creds}.missing`);
    expect(await bad.manifests(s)).toEqual([]);
    const store = await SnapshotStore.open(f.nc, 1, undefined, { servers: f.server.url, name: "test", credsPath: creds, caPath: undefined });
    const w = await writeSnapshotOffLoop(store, s, t);
    expect(w.rows).toBe(300_000);
    const lines: string[] = [];
    const loaded = (await store.loadLatest(s, TRADES, (l) => lines.push(l)))!;
    expect(lines).toEqual([]);
    expect(Number(loaded.manifest.dataBytes)).toBe(w.bytes);
    expect(bits(loaded.table.exportColumns())).toBe(bits(t.exportColumns()));
    expect(sha256Hex((await os.getBlob(loaded.manifest.dataObject))!)).toBe(loaded.manifest.dataSha256);
  });

  it("corruption - a changed chunk, then a missing one: the load falls back to the older snapshot, then to none (full replay)", async () => {
    const s = { tenant: "st", table: "trades", bucket: 1 };
    const store = await SnapshotStore.open(f.nc);
    const t = table(200_000, 2);
    const older = await writeSnapshotOffLoop(store, s, t);
    t.apply(t.appliedLsn + 1, genBatches("trades", { symbols: 3, ticks: 50, seed: 9 }).next().value!);
    const newer = await writeSnapshotOffLoop(store, s, t);
    expect(newer.lsn).toBeGreaterThan(older.lsn);
    const [newest, previous] = await store.manifests(s);
    const dataOf = (m: string): string => m.replace(/\.manifest$/, ".data");

    // One byte of the newest data object's second chunk changes in the stream (its info and digest stay).
    const jsm = await jetstreamManager(f.nc);
    const { subject, data } = await chunksOf(dataOf(newest!));
    expect(data.length).toBeGreaterThan(1);
    await jsm.streams.purge(`OBJ_${OBJ_SNAPSHOTS}`, { filter: subject });
    const js = jsm.jetstream();
    for (const [i, d] of data.entries()) {
      const copy = Uint8Array.from(d);
      if (i === 1) copy[100] = copy[100]! ^ 0x5a;
      await js.publish(subject, copy);
    }
    // A fresh store (a restarted node): nothing it wrote itself counts as verified.
    const fresh = await SnapshotStore.open(f.nc);
    const lines: string[] = [];
    const loaded = (await fresh.loadLatest(s, TRADES, (l) => lines.push(l)))!;
    // Frames are decoded as they arrive, but what the loader reports is the checksum's verdict, not whichever frame broke first.
    expect(lines.join("\n")).toMatch(new RegExp(`${newest!.replace(/\./g, "\\.")} is unusable \\(.*SHA-256 does not match its info's digest`));
    expect(loaded.manifest.lsn).toBe(BigInt(older.lsn));
    expect(await fresh.newestVerifiedLsn(s)).toBe(older.lsn);

    // The older one loses a chunk: no snapshot is left, the shard replays the WAL from the start.
    const old = await chunksOf(dataOf(previous!));
    const seq = (await jsm.streams.getMessage(`OBJ_${OBJ_SNAPSHOTS}`, { last_by_subj: old.subject }))!.seq;
    await jsm.streams.deleteMessage(`OBJ_${OBJ_SNAPSHOTS}`, seq);
    const again = await SnapshotStore.open(f.nc);
    lines.length = 0;
    expect(await again.loadLatest(s, TRADES, (l) => lines.push(l))).toBeUndefined();
    expect(lines[1]).toMatch(/unusable \(.*the stream holds \d+ of its \d+ chunks/);
    expect(await again.newestVerifiedLsn(s)).toBe(0);
  });

  it("format 2 - a snapshot a node wrote before format 3 loads", async () => {
    const s = { tenant: "st", table: "trades", bucket: 2 };
    const t = table(120_000, 3);
    const cols = t.exportColumns();
    const enc = encodeSnapshot(TRADES, cols, 1 << 16, 2);
    const base = `st.trades.2.${String(cols.appliedLsn).padStart(20, "0")}`;
    // As the object store client wrote it then (128 KiB chunks, one PubAck at a time).
    await os.putBlob({ name: `${base}.data` }, enc.data);
    await os.putBlob(
      { name: `${base}.manifest` },
      encodeSnapshotManifest({
        tenant: "st", table: "trades", bucket: 2, lsn: BigInt(cols.appliedLsn), schemaVersion: 1, symbols: cols.symbols, rows: BigInt(enc.rows),
        persistedLsn: 0n, horizonMicros: 0n, dataObject: `${base}.data`, dataBytes: BigInt(enc.data.length), dataSha256: enc.sha256, dataFormat: 2,
        chunkRows: enc.chunkRows.map(BigInt), seamRows: BigInt(enc.seamRows), createdAtMicros: 0n,
      }),
    );
    const lines: string[] = [];
    const loaded = (await (await SnapshotStore.open(f.nc)).loadLatest(s, TRADES, (l) => lines.push(l)))!;
    expect(lines).toEqual([]);
    expect(loaded.manifest.dataFormat).toBe(2);
    expect(bits(loaded.table.exportColumns())).toBe(bits(cols));
  });
});
