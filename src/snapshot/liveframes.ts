// Format-2 frames (columnar.ts) of a live hot set, built on the event loop a
// frame at a time straight from the hot set's chunks (zero-copy slices) into
// buffers the caller recycles: one copy per byte, no fresh memory per
// snapshot. Exporting every series first (a copy of the whole set into new
// arrays) and framing those (a second copy, into more new arrays) faulted in
// twice the hot set's size per snapshot; on these machines a fresh page costs
// more than the copy into it (~4 ms per MB), and that was most of a 10 M-tick
// snapshot's time.
//
// Consistency: the frames describe the table as of its applied LSN when the
// first frame is built. Records applied between frames carry higher LSNs and
// are left out: a series whose rows are all at or below that LSN is read
// through views while its length stays; otherwise (a late row landed in it)
// its rows up to that LSN are exported once and read from that copy. An
// eviction between frames cannot be undone this way: the frames then throw
// SnapshotInterruptedError and the writer starts over.
import { setImmediate as yieldToLoop } from "node:timers/promises";
import type { ColumnSpec } from "../../protocols/tablespec.js";
import type { ValueArray } from "../codec/tickbatch.js";
import type { HotTable, HotTableColumns, SeamRow, SeriesColumns } from "../hotset/index.js";
import { TaggedError } from "../../protocols/tagged.js";
import { KIND_ROWS, KIND_SEAM, frameBytes, frameInto, seamRuns } from "./columnar.js";
import type { ColumnarSummary, FrameRun, RunPiece } from "./columnar.js";

/** The table evicted rows while its frames were being built: the snapshot is abandoned (the writer retries). */
export class SnapshotInterruptedError extends TaggedError("SnapshotInterruptedError") {}

/** Runs per frame at most: frames then fit a buffer of known size (a frame may hold fewer than chunkRows rows). */
export const MAX_FRAME_RUNS = 4096;

/** A buffer big enough for any frame of `chunkRows` rows (what a frame pool allocates). */
export const liveFrameBytes = (columns: readonly ColumnSpec[], chunkRows: number): number => frameBytes(columns, MAX_FRAME_RUNS, chunkRows);

/** What a snapshot's manifest says of the table, fixed when its first frame is built. */
export interface LiveHead {
  readonly appliedLsn: number;
  readonly persistedLsn: number;
  readonly horizonMicros: number;
  readonly symbols: readonly string[];
}

/** A frame: `bytes` is a view at offset 0 of `buffer` (a pool buffer the caller handed out). */
export interface LiveFrame {
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
}

/** Where the rows of one series come from while its frames are built. */
interface SeriesSource {
  /** Rows at or below the snapshot's LSN. */
  readonly rows: number;
  /** Views of the live series (valid while its length is `liveLength`), or an exported copy. */
  live: boolean;
  readonly liveLength: number;
  copy: SeriesColumns | undefined;
  readonly seam: SeamRow | null;
}

const SLICE_MS = 5;

/** A snapshot's frames and what its manifest says of the table (fixed when the frames were asked for). */
export interface LiveFrames {
  readonly head: LiveHead;
  readonly frames: AsyncGenerator<LiveFrame, ColumnarSummary, undefined>;
}

/**
 * The table as of its applied LSN now, as frames of at most `chunkRows` rows
 * (then the seam chunk), each written into a buffer `take` gives (at least
 * liveFrameBytes long; it may wait for one to come back; one not handed on
 * in a frame goes back through `give`). `frozen`: frames of
 * an export taken in one go instead of the live table (the writer's last
 * resort when evictions keep interleaving). Yields to the event loop between
 * frames at least every few milliseconds.
 */
export function liveFrames(table: HotTable, chunkRows: number, take: () => Promise<ArrayBuffer>, give: (buffer: ArrayBuffer) => void, frozen?: HotTableColumns): LiveFrames {
  const evictions = table.evictionCount;
  const appliedLsn = frozen?.appliedLsn ?? table.appliedLsn;
  const count = frozen?.series.length ?? table.symbolCount;
  const symbols: string[] = frozen ? [...frozen.symbols] : [];
  if (!frozen) for (let id = 0; id < count; id++) symbols.push(table.symbolAt(id));
  const head = { appliedLsn, persistedLsn: frozen?.persistedLsn ?? table.persistedLsn, horizonMicros: frozen?.horizonMicros ?? table.horizonMicros, symbols };
  return { head, frames: framesOf(table, chunkRows, take, give, frozen, evictions, appliedLsn, count) };
}

async function* framesOf(
  table: HotTable,
  chunkRows: number,
  take: () => Promise<ArrayBuffer>,
  give: (buffer: ArrayBuffer) => void,
  frozen: HotTableColumns | undefined,
  evictions: number,
  appliedLsn: number,
  count: number,
): AsyncGenerator<LiveFrame, ColumnarSummary, undefined> {
  const columns = table.spec.columns;
  const seams: (SeamRow | null)[] = new Array<SeamRow | null>(count).fill(null);
  const sizes: number[] = [];
  let total = 0;

  const sourceOf = (sym: number): SeriesSource => {
    if (frozen) {
      const s = frozen.series[sym]!;
      return { rows: s.tsMicros.length, live: false, liveLength: 0, copy: s, seam: s.seam };
    }
    const s = table.series(sym)!;
    let above = 0;
    for (const sl of s.slices(0, s.length)) for (let i = 0; i < sl.rows; i++) if (sl.lsn[i]! > appliedLsn) above++;
    if (above === 0) return { rows: s.length, live: true, liveLength: s.length, copy: undefined, seam: s.seam() };
    const copy = table.exportSeries(sym, appliedLsn);
    return { rows: copy.tsMicros.length, live: false, liveLength: 0, copy, seam: copy.seam };
  };
  /** Pieces of rows [from, to) (counted among the series' rows at or below the LSN). */
  const piecesOf = (sym: number, src: SeriesSource, from: number, to: number): RunPiece[] => {
    if (src.live && table.series(sym)!.length !== src.liveLength) {
      // Rows were applied to it since (all above the LSN): its rows at or below are read from a copy from now on.
      src.live = false;
      src.copy = table.exportSeries(sym, appliedLsn);
    }
    if (!src.live) {
      const c = src.copy!;
      return [{ ts: c.tsMicros.subarray(from, to), lsn: c.lsn.subarray(from, to), row: c.rowInRecord.subarray(from, to), values: c.values.map((v) => v.subarray(from, to) as ValueArray) }];
    }
    return table
      .series(sym)!
      .slices(from, to)
      .map((sl) => ({ ts: sl.tsMicros, lsn: sl.lsn, row: sl.rowInRecord, values: sl.values }));
  };

  let sym = 0;
  let from = 0;
  let src: SeriesSource | undefined;
  let sliceStart = performance.now();
  while (sym < count) {
    const buffer = await take();
    if (!frozen && table.evictionCount !== evictions) {
      // Back to the pool: a buffer taken and never handed on would be lost to it for good (the pool then runs dry).
      give(buffer);
      throw new SnapshotInterruptedError(`table ${table.spec.name}: rows were evicted while the snapshot at LSN ${appliedLsn} was being built`);
    }
    // One frame in one turn: the slices it copies stay valid until the table next changes.
    const runs: FrameRun[] = [];
    let rows = 0;
    while (sym < count && rows < chunkRows && runs.length < MAX_FRAME_RUNS) {
      if (src === undefined) {
        src = sourceOf(sym);
        seams[sym] = src.seam;
      }
      const n = Math.min(src.rows - from, chunkRows - rows);
      if (n > 0) runs.push({ sym, rows: n, pieces: piecesOf(sym, src, from, from + n) });
      rows += n;
      from += n;
      if (from === src.rows) {
        sym++;
        from = 0;
        src = undefined;
      }
    }
    if (rows === 0) {
      // Only empty series were left: the buffer goes out as the seam frame below.
      yield* seamFrame(buffer);
      return { chunkRows: sizes, seamRows: seams.filter((s) => s !== null).length, rows: total };
    }
    sizes.push(rows);
    total += rows;
    yield { buffer, bytes: frameInto(buffer, KIND_ROWS, columns, runs, rows) };
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  yield* seamFrame(await take());
  return { chunkRows: sizes, seamRows: seams.filter((s) => s !== null).length, rows: total };

  function* seamFrame(buffer: ArrayBuffer): Generator<LiveFrame> {
    const runs = seamRuns(columns, seams);
    // A seam chunk of more runs than a pool buffer holds (thousands of symbols with seam rows) gets its own buffer.
    const into = buffer.byteLength >= frameBytes(columns, runs.length, runs.length) ? buffer : new ArrayBuffer(frameBytes(columns, runs.length, runs.length));
    yield { buffer: into, bytes: frameInto(into, KIND_SEAM, columns, runs, runs.length) };
  }
}
