// Snapshot pieces that let a snapshot leave the event loop: the framed chunks
// concatenate to exactly the one-shot encoding; a series read up to an LSN
// leaves later (late) rows out; chunks staged straight from the hot set frame
// to exactly format 2's chunks; the writer (staging here, packing on the
// snapshot thread) streams the same bytes and SHA-256 as the one-shot async
// encoder, and a snapshot taken while records are applied and an eviction is
// asked for is the table as of its start, the eviction landing after.
import { describe, expect, it } from "vitest";
import { HotTable } from "../../src/hotset/index.js";
import type { HotTableColumns } from "../../src/hotset/index.js";
import { decodeSnapshot, encodeSnapshot, sha256Hex, snapshotParts, snapshotPartsAsync } from "../../src/snapshot/codec.js";
import type { SnapshotSummary } from "../../src/snapshot/codec.js";
import { columnarParts } from "../../src/snapshot/columnar.js";
import { ChunkStager, frameOfStaged, stagingBytes } from "../../src/snapshot/staging.js";
import type { StagedChunk } from "../../src/snapshot/staging.js";
import type { SnapshotHead, SnapshotStore, WrittenSnapshot } from "../../src/snapshot/store.js";
import { writeSnapshotOffLoop } from "../../src/node/shard/snapshotwriter.js";
import { manifestOf } from "./manifest.js";
import { randomColumns } from "./random.js";
import { MIXED, TRADES, batchOf, trades } from "../hotset/fixtures.js";
import { rng } from "../../src/demo/randomwalk.js";

function sample(): HotTable {
  const t = new HotTable(TRADES, { chunkRows: 4, firstChunkRows: 2, nextChunkRows: 2 });
  t.apply(1, trades(["B", 10, 1], ["A", 11, 2], ["B", 12, 3], ["C", 5, 4]));
  t.apply(2, trades(["A", 9, 5], ["B", 12, 6], ["B", 30, 7], ["A", 40, 8]));
  return t;
}

/** A table of `symbols` x `rows` ticks (LSN 1..rows), then an eviction below `evictBelow` µs (seam rows). */
function big(symbols: number, rows: number, evictBelow: number): HotTable {
  const t = new HotTable(TRADES);
  for (let r = 0; r < rows; r++) t.apply(r + 1, trades(...Array.from({ length: symbols }, (_, s) => [`S${s}`, 1_000 + r, r + s / 1000] as [string, number, number])));
  t.evict(rows, evictBelow);
  return t;
}

/** What a SnapshotStore's writeStream is handed, kept (the writer's bytes and figures) instead of stored. */
type Written = Awaited<ReturnType<typeof capturingStore>["written"]>;

function capturingStore(): { store: SnapshotStore; written: Promise<{ head: SnapshotHead; data: Buffer; summary: SnapshotSummary & { sha256: string } }> } {
  let done!: (w: { head: SnapshotHead; data: Buffer; summary: SnapshotSummary & { sha256: string } }) => void;
  const written = new Promise<{ head: SnapshotHead; data: Buffer; summary: SnapshotSummary & { sha256: string } }>((r) => (done = r));
  const store = {
    async writeStream(_shard: unknown, head: SnapshotHead, parts: AsyncIterable<Uint8Array>, summary: Promise<SnapshotSummary & { sha256: string }>): Promise<WrittenSnapshot> {
      const got: Uint8Array[] = [];
      for await (const p of parts) got.push(Buffer.from(p));
      const s = await summary;
      const data = Buffer.concat(got);
      done({ head, data, summary: s });
      return { lsn: head.appliedLsn, rows: s.rows, bytes: data.length };
    },
  } as unknown as SnapshotStore;
  return { store, written };
}

async function asyncParts(cols: HotTableColumns, spec = TRADES): Promise<{ data: Buffer; summary: SnapshotSummary }> {
  const parts: Uint8Array[] = [];
  const gen = snapshotPartsAsync(spec, cols, 1 << 16);
  let r = await gen.next();
  while (r.done !== true) {
    parts.push(r.value);
    r = await gen.next();
  }
  return { data: Buffer.concat(parts), summary: r.value };
}

const shard = { tenant: "t", table: "trades", bucket: 0 };

describe("snapshot - off the event loop", () => {
  it("parts - framed chunks concatenate to exactly the one-shot data (what loaders read)", () => {
    const t = sample();
    const enc = encodeSnapshot(TRADES, t.exportColumns(), 3);
    const gen = snapshotParts(TRADES, t.exportColumns(), 3);
    const parts: Uint8Array[] = [];
    let r = gen.next();
    while (r.done !== true) {
      parts.push(r.value);
      r = gen.next();
    }
    expect(Buffer.concat(parts).equals(Buffer.from(enc.data))).toBe(true);
    expect(r.value).toEqual({ chunkRows: enc.chunkRows, seamRows: enc.seamRows, rows: 8 });
  });

  it("exportSeries, viewSeries - rows above the LSN (a late tick applied after the snapshot began) are left out; below it, views of the chunks", () => {
    const t = sample();
    const before = t.exportColumns();
    t.apply(3, trades(["A", 10, 9]));
    const id = t.lookup("A")!;
    expect(Array.from(t.exportSeries(id, 2).tsMicros)).toEqual(Array.from(before.series[id]!.tsMicros));
    expect(Array.from(t.exportSeries(id, 3).tsMicros)).toEqual([9, 10, 11, 40]);
    expect(t.viewSeries(id, 2).flatMap((v) => Array.from(v.tsMicros))).toEqual(Array.from(before.series[id]!.tsMicros));
    const views = t.viewSeries(id, 3);
    expect(views.flatMap((v) => Array.from(v.tsMicros))).toEqual([9, 10, 11, 40]);
    // Nothing above the LSN: views of the chunks' memory (which holds every column), not copies.
    for (const v of views) expect(v.tsMicros.buffer.byteLength).toBeGreaterThan(v.tsMicros.byteLength);
    for (const v of t.viewSeries(id, 2)) expect(v.tsMicros.buffer.byteLength).toBe(v.tsMicros.byteLength);
  });

  it("viewSeries - records applied after the LSN at a series' end are left out, and the rows before them are views (no copy)", () => {
    const t = sample();
    const before = t.exportColumns();
    t.apply(3, trades(["A", 50, 9], ["B", 30, 10]));
    t.apply(4, trades(["A", 60, 11]));
    for (const sym of ["A", "B"]) {
      const id = t.lookup(sym)!;
      const views = t.viewSeries(id, 2);
      expect(views.flatMap((v) => Array.from(v.tsMicros))).toEqual(Array.from(before.series[id]!.tsMicros));
      expect(views.flatMap((v) => Array.from(v.lsn)).every((l) => l <= 2)).toBe(true);
      for (const v of views) expect(v.tsMicros.buffer.byteLength).toBeGreaterThan(v.tsMicros.byteLength);
    }
  });

  it("viewSeries - equals exportSeries for every LSN, with in-order, late, equal-time and loaded rows and evictions in any mix", () => {
    const rand = rng(77);
    for (let round = 0; round < 40; round++) {
      let t = new HotTable(TRADES, { chunkRows: 2 + Math.floor(rand() * 6), firstChunkRows: 1, nextChunkRows: 2 });
      const last = new Map<string, number>();
      let lsn = 0;
      const applyRandom = (records: number): void => {
        for (let r = 0; r < records; r++) {
          const rows = Array.from({ length: 1 + Math.floor(rand() * 5) }, () => {
            const sym = `S${Math.floor(rand() * 4)}`;
            const prev = last.get(sym) ?? 1_000;
            // Mostly in time order, some equal, some late.
            const u = rand();
            const ts = u < 0.6 ? prev + 1 + Math.floor(rand() * 10) : u < 0.75 ? prev : prev - 1 - Math.floor(rand() * 30);
            last.set(sym, Math.max(prev, ts));
            return [sym, ts, rand()] as [string, number, number];
          });
          t.apply(++lsn, trades(...rows));
        }
      };
      applyRandom(10 + Math.floor(rand() * 20));
      if (rand() < 0.3) t.evict(Math.floor(lsn / 2), 1_000 + Math.floor(rand() * 40));
      // Half the rounds go through a load (a restart from a snapshot), then go on applying.
      if (rand() < 0.5) t = HotTable.fromColumns(TRADES, t.exportColumns(), { chunkRows: 3, firstChunkRows: 1, nextChunkRows: 2 });
      applyRandom(10 + Math.floor(rand() * 20));
      for (let maxLsn = 0; maxLsn <= lsn; maxLsn++) {
        for (let id = 0; id < t.symbolCount; id++) {
          const want = t.exportSeries(id, maxLsn);
          const got = t.viewSeries(id, maxLsn);
          const flat = (f: (v: (typeof got)[number]) => ArrayLike<number>): number[] => got.flatMap((v) => Array.from(f(v)));
          const where = `round ${round}, symbol ${id}, LSN ${maxLsn}`;
          expect(flat((v) => v.tsMicros), where).toEqual(Array.from(want.tsMicros));
          expect(flat((v) => v.lsn), where).toEqual(Array.from(want.lsn));
          expect(flat((v) => v.rowInRecord), where).toEqual(Array.from(want.rowInRecord));
          expect(flat((v) => v.values[0]!), where).toEqual(Array.from(want.values[0]!));
        }
      }
    }
  });

  it("staging - chunks staged series by series frame to exactly format 2's chunks (any chunk size, every value type, seam rows), in a reused buffer too", () => {
    const rand = rng(31);
    for (const chunkRows of [1, 3, 100, 1000]) {
      const cols = randomColumns(MIXED, rand, 9, 300);
      const expected = [...columnarParts(MIXED.columns, cols, chunkRows)].map((f) => Buffer.from(f));
      const staged: StagedChunk[] = [];
      const stager = new ChunkStager(MIXED.columns, chunkRows, () => new ArrayBuffer(stagingBytes(MIXED.columns, chunkRows)), (c) => staged.push(c));
      cols.series.forEach((s, sym) => {
        // A series arrives in pieces (one per hot-set chunk).
        for (let at = 0; at < s.tsMicros.length; ) {
          const n = Math.min(s.tsMicros.length - at, 1 + Math.floor(rand() * 50));
          stager.add(sym, { rows: n, tsMicros: s.tsMicros.subarray(at, at + n), lsn: s.lsn.subarray(at, at + n), rowInRecord: s.rowInRecord.subarray(at, at + n), values: s.values.map((v) => v.subarray(at, at + n)) });
          at += n;
        }
      });
      const seam = cols.series.flatMap((s, sym) => (s.seam === null ? [] : [{ sym, row: s.seam }]));
      const figures = stager.finish(seam);
      const reused = new ArrayBuffer(4 << 20);
      const frames = staged.map((c, i) => Buffer.from(frameOfStaged(MIXED.columns, c, i % 2 === 0 ? reused : undefined)));
      expect(frames.length).toBe(expected.length);
      frames.forEach((f, i) => expect(f.equals(expected[i]!), `chunk ${i} of ${frames.length} (chunkRows ${chunkRows})`).toBe(true));
      expect(figures.rows).toBe(cols.series.reduce((n, s) => n + s.tsMicros.length, 0));
      expect(figures.seamRows).toBe(seam.length);
    }
  });

  it("writer - the snapshot thread streams the same bytes and SHA-256 as snapshotPartsAsync here, and they decode to the table", async () => {
    const t = big(1_000, 130, 1_020);
    const expected = await asyncParts(t.exportColumns());
    const { store, written } = capturingStore();
    await writeSnapshotOffLoop(store, shard, t);
    const w = await written;
    expect(w.data.equals(expected.data)).toBe(true);
    expect(w.summary.sha256).toBe(sha256Hex(expected.data));
    expect({ chunkRows: w.summary.chunkRows, seamRows: w.summary.seamRows, rows: w.summary.rows }).toEqual(expected.summary);
    expect(w.summary.seamRows).toBe(1_000);
    const back = decodeSnapshot(TRADES, manifestOf(t, { ...w.summary, data: w.data }, 3), w.data);
    expect(encodeSnapshot(TRADES, back).sha256).toBe(encodeSnapshot(TRADES, t.exportColumns()).sha256);
    // Starting a thread loads the codec through tsx: seconds on a loaded machine.
  }, 60_000);

  it("writer, pool - snapshots back to back on one thread, another column layout between them: each streams the same bytes as snapshotPartsAsync (staging buffers shared with the thread are reused job after job and replaced when the layout changes)", async () => {
    const mixed = new HotTable(MIXED);
    for (let r = 0; r < 500; r++) mixed.apply(r + 1, batchOf(MIXED, Array.from({ length: 500 }, (_, s) => ({ sym: `M${s}`, ts: 1_000 + r, values: [r % 2, r - s, r + s / 7, s / 3, r * s] }))));
    const tables = [big(1_000, 300, 1_020), mixed, big(700, 400, 1_100), big(1_000, 300, 1_050)];
    for (const [i, t] of tables.entries()) {
      const expected = await asyncParts(t.exportColumns(), t.spec);
      expect(t.rowCount, `table ${i} spans several chunks`).toBeGreaterThan(3 << 16);
      const { store, written } = capturingStore();
      await writeSnapshotOffLoop(store, { ...shard, table: t.spec.name }, t);
      const w = await written;
      expect(w.data.equals(expected.data), `table ${i}`).toBe(true);
      expect(w.summary.sha256).toBe(sha256Hex(expected.data));
    }
  }, 60_000);

  /**
   * Snapshots a 4,000 x 100 table while, half way through the staging, records
   * are applied and an eviction is asked for. The shard is ingesting, so the
   * thread compresses on its own thread: other zstd calls than the reference
   * encoder's make other (equally valid) bytes, so what is compared is what
   * the data decodes to (`digestOf`, against `expected`: the table at the start).
   */
  async function interleaved(holdOff: boolean): Promise<{ t: HotTable; rowsBefore: number; expected: string; digestOf: (w: Written) => string; evicted: number | undefined; w: Written }> {
    const t = big(4_000, 100, 1_010);
    const start = await asyncParts(t.exportColumns());
    const m0 = manifestOf(t, { ...start.summary, data: start.data, sha256: sha256Hex(start.data) }, 3);
    const digestOf = (w: Written): string => {
      const m = { ...m0, rows: BigInt(w.summary.rows), chunkRows: w.summary.chunkRows.map(BigInt), seamRows: BigInt(w.summary.seamRows), dataBytes: BigInt(w.data.length), dataSha256: w.summary.sha256 };
      return encodeSnapshot(TRADES, decodeSnapshot(TRADES, m, w.data)).sha256;
    };
    const expected = encodeSnapshot(TRADES, t.exportColumns()).sha256;
    const rowsBefore = t.rowCount;
    if (holdOff) t.holdEvictions = () => () => {};
    // The staging yields between series (every few ms): the table changes there, half way through, on every machine however fast.
    let evicted: number | undefined;
    const view = t.viewSeries.bind(t);
    t.viewSeries = (id, maxLsn) => {
      if (id === 2_000) {
        // Late ticks of known symbols (staged and not yet) and a new symbol: higher LSNs, left out of the snapshot.
        t.apply(1_000, trades(["S1", 1_050, 1], ["S2500", 1_001, 1], ["NEW", 5, 1]));
        evicted = t.evict(100, 1_060).evictedRows;
      }
      return view(id, maxLsn);
    };
    const { store, written } = capturingStore();
    await writeSnapshotOffLoop(store, shard, t);
    return { t, rowsBefore, expected, digestOf, evicted, w: await written };
  }

  it("interleaved - records applied and an eviction asked for while the snapshot stages: it is the table as of its start; the eviction lands once every row is copied", async () => {
    const { t, rowsBefore, expected, digestOf, evicted, w } = await interleaved(false);
    // Held: nothing was removed while rows were being copied.
    expect(evicted).toBe(0);
    expect(w.head.appliedLsn).toBe(100);
    expect(w.head.horizonMicros).toBe(1_010);
    expect(w.summary.sha256).toBe(sha256Hex(w.data));
    expect(digestOf(w)).toBe(expected);
    // Released: rows below 1,060 with LSN <= 100 went (50 per symbol), the late ticks stayed.
    expect(t.horizonMicros).toBe(1_060);
    expect(t.rowCount).toBe(rowsBefore + 3 - 4_000 * 50);
  }, 60_000);

  it("interleaved, negative control - with the eviction hold switched off the same snapshot is not the table as of its start (half its series lost rows its horizon says are hot)", async () => {
    const { evicted, w, expected, digestOf } = await interleaved(true);
    expect(evicted).toBe(4_000 * 50);
    expect(w.head.horizonMicros).toBe(1_010);
    expect(digestOf(w)).not.toBe(expected);
    expect(w.summary.rows).toBe(4_000 * 90 - 2_000 * 50);
  }, 60_000);
});
