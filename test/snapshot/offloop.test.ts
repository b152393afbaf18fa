// Snapshot pieces that let a snapshot leave the event loop: the framed chunks
// concatenate to exactly the one-shot encoding; a series
// exported up to an LSN leaves later (late) rows out; an export in slices of
// a table that changes meanwhile equals the table as of its start; the worker
// thread produces the same bytes and SHA-256.
import { describe, expect, it } from "vitest";
import { Worker } from "node:worker_threads";
import { HotTable } from "../../src/hotset/index.js";
import { decodeSnapshot, encodeSnapshot, sha256Hex, snapshotParts, snapshotPartsAsync } from "../../src/snapshot/codec.js";
import { manifestOf } from "./manifest.js";
import { exportInSlices } from "../../src/node/shard/snapshotwriter.js";
import type { SnapshotWorkerMessage } from "../../src/node/shard/snapshotworker.js";
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

  it("slices - an export interleaved with applies equals the table as of its start", async () => {
    const t = new HotTable(TRADES);
    for (let i = 0; i < 3_000; i++) t.apply(i + 1, trades([`S${i}`, 100 + i, i]));
    const expected = encodeSnapshot(TRADES, t.exportColumns()).sha256;
    const running = exportInSlices(t);
    // Applied while the export yields: higher LSNs, new and existing symbols.
    for (let i = 0; i < 50; i++) t.apply(10_000 + i, trades([`S${i}`, 50, 1], [`N${i}`, 1, 1]));
    const cols = await running;
    expect(cols.appliedLsn).toBe(3_000);
    expect(encodeSnapshot(TRADES, cols).sha256).toBe(expected);
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
    const done = await new Promise<Extract<SnapshotWorkerMessage, { type: "done" }>>((resolve, reject) => {
      worker.on("message", (m: SnapshotWorkerMessage) => {
        if (m.type === "part") parts.push(m.bytes);
        else if (m.type === "done") resolve(m);
        else reject(new Error(m.message));
      });
      worker.on("error", reject);
      worker.postMessage({ spec: TRADES, cols: t.exportColumns() });
    });
    await worker.terminate();
    expect(done.sha256).toBe(enc.sha256);
    expect(sha256Hex(Buffer.concat(parts))).toBe(enc.sha256);
    const back = decodeSnapshot(TRADES, manifestOf(t, enc, 3), Buffer.concat(parts));
    expect(encodeSnapshot(TRADES, back).sha256).toBe(encodeSnapshot(TRADES, t.exportColumns()).sha256);
    // Starting a thread loads the codec through tsx: seconds on a loaded machine.
  }, 60_000);
});
