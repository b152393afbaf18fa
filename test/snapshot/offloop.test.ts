// Snapshot pieces that let a snapshot leave the event loop: the framed chunks
// concatenate to exactly the one-shot encoding; a series
// exported up to an LSN leaves later (late) rows out; frames built from the
// live table while it changes equal the table as of their start (and an
// eviction meanwhile interrupts them); the worker thread produces the same
// bytes and SHA-256.
import { describe, expect, it } from "vitest";
import { Worker } from "node:worker_threads";
import { HotTable } from "../../src/hotset/index.js";
import { decodeSnapshot, encodeSnapshot, sha256Hex, snapshotParts, snapshotPartsAsync } from "../../src/snapshot/codec.js";
import { columnarParts } from "../../src/snapshot/columnar.js";
import { SnapshotInterruptedError, liveFrameBytes, liveFrames } from "../../src/snapshot/liveframes.js";
import type { HotTableColumns } from "../../src/hotset/index.js";
import { manifestOf } from "./manifest.js";
import type { SnapshotWorkerMessage, SnapshotWorkerRequest } from "../../src/node/shard/snapshotworker.js";
import { TRADES, trades } from "../hotset/fixtures.js";

function sample(): HotTable {
  const t = new HotTable(TRADES, { chunkRows: 4, firstChunkRows: 2, nextChunkRows: 2 });
  t.apply(1, trades(["B", 10, 1], ["A", 11, 2], ["B", 12, 3], ["C", 5, 4]));
  t.apply(2, trades(["A", 9, 5], ["B", 12, 6], ["B", 30, 7], ["A", 40, 8]));
  return t;
}

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

  it("exportSeries - rows above the LSN (a late tick applied after the export began) are left out", () => {
    const t = sample();
    const before = t.exportColumns();
    t.apply(3, trades(["A", 10, 9]));
    const id = t.lookup("A")!;
    expect(Array.from(t.exportSeries(id, 2).tsMicros)).toEqual(Array.from(before.series[id]!.tsMicros));
    expect(Array.from(t.exportSeries(id, 3).tsMicros)).toEqual([9, 10, 11, 40]);
  });

  /** Buffers the frames took and gave back (a frame's buffer is handed on with it). */
  let taken = 0;
  let given = 0;
  /** Frames of `t` (fresh buffers), with `between(i)` run after frame i: their concatenation and summary. */
  async function framesOf(t: HotTable, chunkRows: number, between: (i: number) => void = () => {}, frozen?: HotTableColumns): Promise<{ data: Buffer; summary: unknown; head: { appliedLsn: number } }> {
    const { head, frames } = liveFrames(t, chunkRows, () => (taken++, Promise.resolve(new ArrayBuffer(liveFrameBytes(t.spec.columns, chunkRows)))), () => given++, frozen);
    const out: Buffer[] = [];
    let r = await frames.next();
    while (r.done !== true) {
      out.push(Buffer.from(r.value.bytes));
      between(out.length);
      r = await frames.next();
    }
    return { data: Buffer.concat(out), summary: r.value, head };
  }

  function columnarOf(cols: HotTableColumns, chunkRows: number): { data: Buffer; summary: unknown } {
    const gen = columnarParts(TRADES.columns, cols, chunkRows);
    const out: Buffer[] = [];
    let r = gen.next();
    while (r.done !== true) {
      out.push(Buffer.from(r.value));
      r = gen.next();
    }
    return { data: Buffer.concat(out), summary: r.value };
  }

  it("live frames - straight from the hot set's chunks, they are byte for byte the frames of its export (series across chunks and frames)", async () => {
    // Hot-set chunks of 4 rows, frames of 3 and 5 rows: runs of several chunk slices, series split across frames.
    const t = sample();
    for (const chunkRows of [3, 5, 1 << 16]) {
      const live = await framesOf(t, chunkRows);
      const ref = columnarOf(t.exportColumns(), chunkRows);
      expect(live.data.equals(ref.data)).toBe(true);
      expect(live.summary).toEqual(ref.summary);
    }
  });

  it("live frames - built while records are applied between frames, they equal the table as of their start", async () => {
    const t = new HotTable(TRADES, { chunkRows: 64, firstChunkRows: 16, nextChunkRows: 16 });
    for (let i = 0; i < 3_000; i++) t.apply(i + 1, trades([`S${i % 300}`, 100 + i, i]));
    const before = t.exportColumns();
    let lsn = 10_000;
    // Applied between frames: higher LSNs, late rows into series not framed yet, framed already, and the
    // one split across this frame and the next (frames of 95 rows, series of 10), new symbols.
    const live = await framesOf(t, 95, (i) =>
      t.apply(++lsn, trades([`S${(i * 7) % 300}`, 50 + i, 1], [`S${299 - (i % 300)}`, 101, 2], [`S${Math.min(299, Math.floor((95 * i) / 10))}`, 99, 3], [`N${i}`, 1, 1])),
    );
    expect(lsn).toBeGreaterThan(10_010);
    expect(live.head.appliedLsn).toBe(3_000);
    expect(live.data.equals(columnarOf(before, 95).data)).toBe(true);
  });

  it("live frames - an eviction between frames interrupts them (never a snapshot mixing before and after)", async () => {
    const t = new HotTable(TRADES, { chunkRows: 64, firstChunkRows: 16, nextChunkRows: 16 });
    for (let i = 0; i < 3_000; i++) t.apply(i + 1, trades([`S${i % 300}`, 100 + i, i]));
    taken = given = 0;
    await expect(framesOf(t, 100, (i) => i === 3 && t.evict(1_000, 1_000))).rejects.toBeInstanceOf(SnapshotInterruptedError);
    // The buffer taken for the frame it did not build went back to the pool (else a pool of a few runs dry and the next snapshot waits forever).
    expect({ taken, given }).toEqual({ taken: 4, given: 1 });
    // Negative control: the same frames without the eviction complete.
    await expect(framesOf(t, 100)).resolves.toBeDefined();
    // The writer's last resort, frames of a one-go export, ignores evictions after it.
    const frozen = t.exportColumns();
    const f = await framesOf(t, 100, (i) => i === 3 && t.evict(2_000, 2_000), frozen);
    expect(f.data.equals(columnarOf(frozen, 100).data)).toBe(true);
  });

  it("worker - the worker thread streams the same bytes and SHA-256 as snapshotPartsAsync here, and they decode to the table", async () => {
    const t = sample();
    // zstd's one-shot and streaming (thread pool) calls frame the same data differently: the worker's reference is the async encoder.
    const here: Uint8Array[] = [];
    const gen = snapshotPartsAsync(TRADES, t.exportColumns(), 1 << 16);
    let r = await gen.next();
    while (r.done !== true) {
      here.push(r.value);
      r = await gen.next();
    }
    const enc = { format: 3 as const, data: Buffer.concat(here), sha256: sha256Hex(Buffer.concat(here)), ...r.value };
    const worker = new Worker(new URL("../../src/node/shard/snapshotworker.ts", import.meta.url), { execArgv: ["--import", "tsx"] });
    const parts: Uint8Array[] = [];
    let freed = 0;
    const send = (m: SnapshotWorkerRequest, transfer: ArrayBuffer[] = []): void => worker.postMessage(m, transfer);
    const done = await new Promise<Extract<SnapshotWorkerMessage, { type: "done" }>>((resolve, reject) => {
      worker.on("message", (m: SnapshotWorkerMessage) => {
        if (m.type === "part") parts.push(m.bytes);
        else if (m.type === "free") freed++;
        else if (m.type === "done") resolve(m);
        else reject(new Error(m.message));
      });
      worker.on("error", reject);
      send({ type: "start", spec: TRADES });
      const gen = columnarParts(TRADES.columns, t.exportColumns(), 1 << 16);
      let f = gen.next();
      while (f.done !== true) {
        send({ type: "frame", buffer: f.value.buffer as ArrayBuffer, length: f.value.length }, [f.value.buffer as ArrayBuffer]);
        f = gen.next();
      }
      send({ type: "end" });
    });
    await worker.terminate();
    expect(done.sha256).toBe(enc.sha256);
    // Every frame buffer came back for the pool.
    expect(freed).toBe(2);
    expect(sha256Hex(Buffer.concat(parts))).toBe(enc.sha256);
    const back = decodeSnapshot(TRADES, manifestOf(t, enc, 3), Buffer.concat(parts));
    expect(encodeSnapshot(TRADES, back).sha256).toBe(encodeSnapshot(TRADES, t.exportColumns()).sha256);
    // Starting a thread loads the codec through tsx: seconds on a loaded machine.
  }, 60_000);
});
