// One symbol's rows in a shard: time-sorted columns in chunked typed arrays.
// Ticks in time order append in O(1); a late tick is inserted at its time
// position, shifting rows only within the chunk(s) it lands in. Rows with equal
// timestamps keep arrival (= LSN) order, so the series is in (ts, lsn, row) order.
import { allocValueArray } from "../codec/tickbatch.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { Chunk, copyRow, lowerBoundIn, upperBoundIn } from "./chunk.js";
import type { ColumnLayout } from "./chunk.js";
import type { ChunkAllocator } from "./alloc.js";
import { HotSetError } from "./errors.js";
import type { ColumnSlice, HotSetOptions, SeamRow, SeriesColumns } from "./types.js";

/** One symbol's series in a table, as HotTable.entries() yields it. */
export interface SeriesEntry {
  readonly symbolId: number;
  readonly symbol: string;
  readonly series: Series;
}

export class Series {
  readonly symbolId: number;
  private readonly layout: ColumnLayout;
  private readonly opts: HotSetOptions;
  private readonly alloc: ChunkAllocator;
  private chunks: Chunk[] = [];
  /** Global index of each chunk's first row. */
  private starts: number[] = [];
  private tail: Chunk | null = null;
  private count = 0;
  private lastTs = -Infinity;
  /**
   * The greatest LSN of a row that did not arrive at the end: a late tick or a
   * loaded row. Every other row was appended in apply (= LSN) order, so the
   * rows with an LSN above this one's (or any higher) are a suffix of the
   * series (see prefixUpTo).
   */
  private unorderedLsn = 0;
  private allocated = 0;
  // Seam cache: the greatest (ts, lsn, row) ever evicted (or absorbed as already cold).
  private hasSeam = false;
  private seamTs = 0;
  private seamLsn = 0;
  private seamRowInRecord = 0;
  private readonly seamValues: Float64Array;
  // Result of `makeRoom` (avoids allocating a pair on the late path).
  private locK = 0;
  private locOff = 0;

  /** @internal Built by `HotTable`. */
  constructor(symbolId: number, layout: ColumnLayout, opts: HotSetOptions, alloc: ChunkAllocator) {
    this.symbolId = symbolId;
    this.layout = layout;
    this.opts = opts;
    this.alloc = alloc;
    this.seamValues = new Float64Array(layout.ncols);
  }

  /** Rows held. */
  get length(): number {
    return this.count;
  }

  /** Bytes of typed-array storage allocated (capacity, not just live rows). */
  get bytes(): number {
    return this.allocated;
  }

  get chunkCount(): number {
    return this.chunks.length;
  }

  /** Timestamp of the first row, or undefined when empty. */
  get firstTsMicros(): number | undefined {
    const c = this.chunks[0];
    return c === undefined ? undefined : c.ts[0];
  }

  /** Timestamp of the last row, or undefined when empty. */
  get lastTsMicros(): number | undefined {
    return this.count === 0 ? undefined : this.lastTs;
  }

  // ---- lookups ------------------------------------------------------------

  /** Index of the first row with ts >= tsMicros (length when none). */
  lowerBound(tsMicros: number): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = chunks[mid]!;
      if (c.ts[c.len - 1]! < tsMicros) lo = mid + 1;
      else hi = mid;
    }
    if (lo === chunks.length) return this.count;
    const c = chunks[lo]!;
    return this.starts[lo]! + lowerBoundIn(c.ts, 0, c.len, tsMicros);
  }

  /** Index of the first row with ts > tsMicros (length when none). */
  upperBound(tsMicros: number): number {
    const k = this.chunkAbove(tsMicros);
    if (k === this.chunks.length) return this.count;
    const c = this.chunks[k]!;
    return this.starts[k]! + upperBoundIn(c.ts, 0, c.len, tsMicros);
  }

  tsAt(i: number): number {
    return this.chunkOf(i).ts[this.locOff]!;
  }

  lsnAt(i: number): number {
    return this.chunkOf(i).lsn[this.locOff]!;
  }

  rowInRecordAt(i: number): number {
    return this.chunkOf(i).row[this.locOff]!;
  }

  /** Value of column `col` (table-spec order) at row `i`. */
  valueAt(col: number, i: number): number {
    const c = this.chunkOf(i);
    const v = c.values[col];
    if (v === undefined) throw new HotSetError(`series: column index ${col} is out of range (table has ${this.layout.ncols} value columns)`);
    return v[this.locOff]!;
  }

  /**
   * Row i's timestamp, with the values of columns `cols` (table-spec order)
   * written to `out[v][at]`: one chunk lookup for the row (a last-by reads a
   * row of each of ~1,000 series per query).
   */
  readRow(i: number, cols: readonly number[], out: readonly ValueArray[], at: number): number {
    const c = this.chunkOf(i);
    const off = this.locOff;
    for (let v = 0; v < cols.length; v++) {
      const col = c.values[cols[v]!];
      if (col === undefined) throw new HotSetError(`series: column index ${cols[v]} is out of range (table has ${this.layout.ncols} value columns)`);
      out[v]![at] = col[off]!;
    }
    return c.ts[off]!;
  }

  /** Zero-copy views of rows [from, to), one slice per chunk touched. */
  slices(from: number, to: number): ColumnSlice[] {
    const out: ColumnSlice[] = [];
    const end = Math.min(to, this.count);
    let i = Math.max(0, from);
    if (i >= end) return out;
    let k = this.locate(i);
    while (i < end) {
      const c = this.chunks[k]!;
      const a = i - this.starts[k]!;
      const b = Math.min(c.len, end - this.starts[k]!);
      out.push({
        rows: b - a,
        tsMicros: c.ts.subarray(a, b),
        lsn: c.lsn.subarray(a, b),
        rowInRecord: c.row.subarray(a, b),
        values: c.values.map((v) => v.subarray(a, b)),
      });
      i += b - a;
      k++;
    }
    return out;
  }

  /**
   * How many leading rows have an LSN <= maxLsn, when those are exactly the
   * rows with such an LSN (no later row has one); undefined when a row that
   * did not arrive at the end has an LSN above maxLsn and the rows may be
   * interleaved. Reads only the rows above maxLsn, from the end.
   */
  prefixUpTo(maxLsn: number): number | undefined {
    if (this.unorderedLsn > maxLsn) return undefined;
    let n = this.count;
    for (let k = this.chunks.length - 1; k >= 0; k--) {
      const c = this.chunks[k]!;
      let i = c.len;
      while (i > 0 && c.lsn[i - 1]! > maxLsn) i--;
      n -= c.len - i;
      if (i > 0) break;
    }
    return n;
  }

  /** Zero-copy views of the rows with tsMicros in [t0, t1). */
  range(t0: number, t1: number): ColumnSlice[] {
    return this.slices(this.lowerBound(t0), this.lowerBound(t1));
  }

  /** The seam cache: the last row evicted from this series (greatest ts, lsn, row), or null. */
  seam(): SeamRow | null {
    if (!this.hasSeam) return null;
    return {
      tsMicros: this.seamTs,
      lsn: this.seamLsn,
      rowInRecord: this.seamRowInRecord,
      values: Array.from(this.seamValues),
    };
  }

  // ---- append / insert ----------------------------------------------------

  /**
   * @internal Adds row `r` of the batch columns `cols` with its (ts, lsn, rowInRecord).
   * O(1) when ts >= the last ts; otherwise inserted after every row with ts <= tsMicros.
   */
  push(tsMicros: number, lsn: number, rowInRecord: number, cols: readonly ValueArray[], r: number): void {
    const c = this.tail;
    if (tsMicros >= this.lastTs && c !== null && c.len < c.cap) {
      const i = c.len;
      c.ts[i] = tsMicros;
      c.lsn[i] = lsn;
      c.row[i] = rowInRecord;
      const vals = c.values;
      for (let j = 0; j < vals.length; j++) vals[j]![i] = cols[j]![r]!;
      c.len = i + 1;
      this.count++;
      this.lastTs = tsMicros;
      return;
    }
    this.pushSlow(tsMicros, lsn, rowInRecord, cols, r);
  }

  private pushSlow(tsMicros: number, lsn: number, rowInRecord: number, cols: readonly ValueArray[], r: number): void {
    if (tsMicros !== tsMicros) throw new HotSetError(`series ${this.symbolId}: timestamp is NaN`);
    if (tsMicros >= this.lastTs) {
      const c = this.roomAtEnd();
      writeRow(c, c.len, tsMicros, lsn, rowInRecord, cols, r);
      c.len++;
      this.count++;
      this.lastTs = tsMicros;
      return;
    }
    // Late tick: it goes after every row with ts <= tsMicros; chunkAbove exists since ts < lastTs.
    if (lsn > this.unorderedLsn) this.unorderedLsn = lsn;
    let k = this.chunkAbove(tsMicros);
    let c = this.chunks[k]!;
    let off = upperBoundIn(c.ts, 0, c.len, tsMicros);
    if (off === 0 && k > 0) {
      // The end of the previous chunk is the same position; use it if it has room (e.g. after a split).
      const prev = this.chunks[k - 1]!;
      if (prev.len < prev.cap) {
        k--;
        c = prev;
        off = prev.len;
      }
    }
    if (c.len === c.cap) {
      this.makeRoom(k, off);
      k = this.locK;
      off = this.locOff;
      c = this.chunks[k]!;
    }
    c.shiftRight(off);
    writeRow(c, off, tsMicros, lsn, rowInRecord, cols, r);
    c.len++;
    this.count++;
    this.reindexFrom(k + 1);
  }

  /** Tail chunk with room for one more row: creates, grows or adds a chunk. */
  private roomAtEnd(): Chunk {
    const t = this.tail;
    if (t === null) {
      const c = this.newChunk(this.opts.firstChunkRows);
      this.chunks.push(c);
      this.starts.push(0);
      this.tail = c;
      return c;
    }
    if (t.len < t.cap) return t;
    if (t.cap < this.opts.chunkRows) {
      this.grow(t);
      return t;
    }
    const c = this.newChunk(this.opts.nextChunkRows);
    this.chunks.push(c);
    this.starts.push(this.count);
    this.tail = c;
    return c;
  }

  /**
   * Chunk k is full and a row must go at offset `off`. Grow it if it is below
   * chunkRows; else push the last row of each full chunk k.. into the next one
   * (bounded ripple; grows or adds a tail chunk when the chain reaches the end),
   * or split chunk k in two. Sets locK/locOff to where the row goes.
   */
  private makeRoom(k: number, off: number): void {
    const chunks = this.chunks;
    this.locK = k;
    this.locOff = off;
    if (chunks[k]!.cap < this.opts.chunkRows) {
      // A chunk below full size (the growing tail, a restored or split chunk) just grows.
      this.grow(chunks[k]!);
      return;
    }
    let j = k + 1;
    while (j < chunks.length && chunks[j]!.len === chunks[j]!.cap) j++;
    if (j - k <= this.opts.rippleChunks) {
      if (j === chunks.length) {
        const last = chunks[j - 1]!;
        if (last.cap < this.opts.chunkRows) {
          this.grow(last);
          j--;
        } else {
          const c = this.newChunk(this.opts.nextChunkRows);
          chunks.push(c);
          this.starts.push(this.count);
          this.tail = c;
        }
      }
      for (let m = j - 1; m >= k; m--) {
        const a = chunks[m]!;
        const b = chunks[m + 1]!;
        b.shiftRight(0);
        copyRow(a, a.len - 1, b, 0);
        a.len--;
        b.len++;
      }
      // off <= the old last index of chunk k, so it is still inside chunk k (locK/locOff).
      this.reindexFrom(k + 1);
      return;
    }
    // Split: the late tick is far behind the tail; move the upper half of chunk k to a new chunk.
    const a = chunks[k]!;
    const h = a.len >>> 1;
    const b = this.newChunk(a.cap);
    b.ts.set(a.ts.subarray(h, a.len));
    b.lsn.set(a.lsn.subarray(h, a.len));
    b.row.set(a.row.subarray(h, a.len));
    for (let v = 0; v < a.values.length; v++) b.values[v]!.set(a.values[v]!.subarray(h, a.len));
    b.len = a.len - h;
    a.len = h;
    chunks.splice(k + 1, 0, b);
    this.starts.splice(k + 1, 0, 0);
    this.tail = chunks[chunks.length - 1]!;
    this.reindexFrom(k + 1);
    if (off > h) {
      this.locK = k + 1;
      this.locOff = off - h;
    }
  }

  // ---- eviction -----------------------------------------------------------

  /**
   * @internal Removes exactly the rows with ts < horizonMicros and lsn <= persistedLsn,
   * keeping late unpersisted rows (lsn > persistedLsn) in place. The last removed row
   * becomes the seam cache if it is greater than the current one. Returns rows removed.
   */
  evict(persistedLsn: number, horizonMicros: number): number {
    const b = this.lowerBound(horizonMicros);
    if (b === 0) return 0;
    // e: the last row below the horizon that is persisted; rows (e, b) are all unpersisted.
    let e = b - 1;
    let k = this.locate(e);
    let c = this.chunks[k]!;
    let o = e - this.starts[k]!;
    for (;;) {
      if (c.lsn[o]! <= persistedLsn) break;
      if (e === 0) return 0;
      e--;
      if (--o < 0) {
        c = this.chunks[--k]!;
        o = c.len - 1;
      }
    }
    this.offerSeam(c.ts[o]!, c.lsn[o]!, c.row[o]!, c.values, o);
    // Compact the unpersisted rows of [0, e] to the front, then drop the rest of [0, e].
    let wk = 0;
    let wo = 0;
    let g = 0;
    for (let rk = 0; g <= e; rk++) {
      const rc = this.chunks[rk]!;
      for (let ro = 0; ro < rc.len && g <= e; ro++, g++) {
        if (rc.lsn[ro]! > persistedLsn) {
          const wc = this.chunks[wk]!;
          if (wc !== rc || wo !== ro) copyRow(rc, ro, wc, wo);
          if (++wo === wc.len) {
            wk++;
            wo = 0;
          }
        }
      }
    }
    const w = this.starts[wk]! + wo;
    this.removeRange(w, e + 1);
    return e + 1 - w;
  }

  /** @internal A row that is already cold (ts < H, lsn <= P) at apply time: only the seam cache may change. */
  absorbCold(tsMicros: number, lsn: number, rowInRecord: number, cols: readonly ValueArray[], r: number): void {
    this.offerSeam(tsMicros, lsn, rowInRecord, cols, r);
  }

  private offerSeam(tsMicros: number, lsn: number, rowInRecord: number, cols: readonly ValueArray[], r: number): void {
    if (this.hasSeam) {
      const newer =
        tsMicros > this.seamTs ||
        (tsMicros === this.seamTs && (lsn > this.seamLsn || (lsn === this.seamLsn && rowInRecord > this.seamRowInRecord)));
      if (!newer) return;
    }
    this.hasSeam = true;
    this.seamTs = tsMicros;
    this.seamLsn = lsn;
    this.seamRowInRecord = rowInRecord;
    for (let j = 0; j < this.seamValues.length; j++) this.seamValues[j] = cols[j]![r]!;
  }

  /** Removes rows [from, to): whole chunks are dropped, boundary chunks close the gap. */
  private removeRange(from: number, to: number): void {
    if (from >= to) return;
    const kept: Chunk[] = [];
    for (let k = 0; k < this.chunks.length; k++) {
      const c = this.chunks[k]!;
      const s = this.starts[k]!;
      const a = Math.max(from, s) - s;
      const b = Math.min(to, s + c.len) - s;
      if (a < b) {
        if (a === 0 && b === c.len) {
          this.freeChunk(c);
          continue;
        }
        c.removeRows(a, b);
      }
      kept.push(c);
    }
    this.chunks = kept;
    this.starts = new Array<number>(kept.length).fill(0);
    this.count -= to - from;
    this.reindexFrom(0);
    const t = kept[kept.length - 1];
    this.tail = t ?? null;
    this.lastTs = t === undefined ? -Infinity : t.ts[t.len - 1]!;
  }

  // ---- snapshot -----------------------------------------------------------

  /** Flat copies of all columns, time-sorted, plus the seam cache row. */
  toColumns(): SeriesColumns {
    const n = this.count;
    const ts = new Float64Array(n);
    const lsn = new Float64Array(n);
    const row = new Int32Array(n);
    const values = this.layout.types.map((type) => allocValueArray(type, n));
    let at = 0;
    for (const c of this.chunks) {
      ts.set(c.ts.subarray(0, c.len), at);
      lsn.set(c.lsn.subarray(0, c.len), at);
      row.set(c.row.subarray(0, c.len), at);
      for (let j = 0; j < values.length; j++) values[j]!.set(c.values[j]!.subarray(0, c.len), at);
      at += c.len;
    }
    return { tsMicros: ts, lsn, rowInRecord: row, values, seam: this.seam() };
  }

  /**
   * @internal Loads flat, validated, time-sorted columns (the series must be
   * empty): copied into chunks of its own, or with `adopt` taken over as they
   * are (chunks that view them: the caller must never use them again).
   */
  load(cols: SeriesColumns, adopt = false): void {
    const n = cols.tsMicros.length;
    for (let i = 0; i < n; i++) if (cols.lsn[i]! > this.unorderedLsn) this.unorderedLsn = cols.lsn[i]!;
    for (let at = 0; at < n; ) {
      const rows = Math.min(this.opts.chunkRows, n - at);
      if (adopt) {
        const c = Chunk.borrowed(this.layout, { ts: cols.tsMicros.subarray(at, at + rows), lsn: cols.lsn.subarray(at, at + rows), row: cols.rowInRecord.subarray(at, at + rows), values: cols.values.map((v) => v.subarray(at, at + rows) as ValueArray) });
        this.allocated += c.bytes;
        this.chunks.push(c);
        this.starts.push(at);
        at += rows;
        continue;
      }
      const c = this.newChunk(rows === this.opts.chunkRows ? rows : Math.max(rows, this.opts.firstChunkRows));
      c.ts.set(cols.tsMicros.subarray(at, at + rows));
      c.lsn.set(cols.lsn.subarray(at, at + rows));
      c.row.set(cols.rowInRecord.subarray(at, at + rows));
      for (let j = 0; j < c.values.length; j++) c.values[j]!.set(cols.values[j]!.subarray(at, at + rows));
      c.len = rows;
      this.chunks.push(c);
      this.starts.push(at);
      at += rows;
    }
    this.count = n;
    const t = this.chunks[this.chunks.length - 1];
    this.tail = t ?? null;
    this.lastTs = t === undefined ? -Infinity : t.ts[t.len - 1]!;
    const seam = cols.seam;
    if (seam !== null) {
      this.hasSeam = true;
      this.seamTs = seam.tsMicros;
      this.seamLsn = seam.lsn;
      this.seamRowInRecord = seam.rowInRecord;
      this.seamValues.set(seam.values);
    }
  }

  /** @internal Throws when the chunk structure is inconsistent (used by tests). */
  verify(): void {
    let at = 0;
    let prevTs = -Infinity;
    let prevLsn = -Infinity;
    let prevRow = -Infinity;
    let bytes = 0;
    for (let k = 0; k < this.chunks.length; k++) {
      const c = this.chunks[k]!;
      if (this.starts[k] !== at) throw new HotSetError(`series ${this.symbolId}: chunk ${k} starts at ${this.starts[k]}, expected ${at}`);
      if (c.len <= 0 || c.len > c.cap) throw new HotSetError(`series ${this.symbolId}: chunk ${k} has len ${c.len} of cap ${c.cap}`);
      bytes += c.bytes;
      for (let i = 0; i < c.len; i++) {
        const ts = c.ts[i]!;
        const lsn = c.lsn[i]!;
        const row = c.row[i]!;
        const ordered = ts > prevTs || (ts === prevTs && (lsn > prevLsn || (lsn === prevLsn && row > prevRow)));
        if (!ordered) throw new HotSetError(`series ${this.symbolId}: row ${at + i} is out of (ts, lsn, row) order`);
        prevTs = ts;
        prevLsn = lsn;
        prevRow = row;
      }
      at += c.len;
    }
    if (at !== this.count) throw new HotSetError(`series ${this.symbolId}: holds ${at} rows, counts ${this.count}`);
    if (bytes !== this.allocated) throw new HotSetError(`series ${this.symbolId}: allocates ${bytes} bytes, counts ${this.allocated}`);
    if (this.tail !== (this.chunks[this.chunks.length - 1] ?? null)) throw new HotSetError(`series ${this.symbolId}: tail is stale`);
    if (this.count > 0 && this.lastTs !== prevTs) throw new HotSetError(`series ${this.symbolId}: lastTs is stale`);
  }

  // ---- internals ----------------------------------------------------------

  private newChunk(cap: number): Chunk {
    const buffer = this.alloc.take(cap * this.layout.rowBytes);
    this.allocated += buffer.byteLength;
    return new Chunk(this.layout, cap, buffer);
  }

  private freeChunk(c: { readonly buffer: ArrayBuffer; readonly owned: boolean; readonly bytes: number }): void {
    this.allocated -= c.bytes;
    // A borrowed chunk's memory is shared with others: the GC frees it once the last one is gone.
    if (c.owned) this.alloc.give(c.buffer);
  }

  private grow(c: Chunk): void {
    const old = { buffer: c.buffer, owned: c.owned, bytes: c.bytes };
    c.moveInto(this.newChunk(Math.min(this.opts.chunkRows, c.cap * 2)));
    this.freeChunk(old);
  }

  /** Recomputes chunk starts from chunk k on. */
  private reindexFrom(k: number): void {
    const chunks = this.chunks;
    const starts = this.starts;
    let at = k === 0 ? 0 : starts[k - 1]! + chunks[k - 1]!.len;
    for (let m = k; m < chunks.length; m++) {
      starts[m] = at;
      at += chunks[m]!.len;
    }
  }

  /** First chunk whose last ts > tsMicros (chunk count when none). */
  private chunkAbove(tsMicros: number): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = chunks[mid]!;
      if (c.ts[c.len - 1]! <= tsMicros) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Chunk index holding global row i (0 <= i < length). */
  private locate(i: number): number {
    const starts = this.starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Chunk holding row i; sets locOff to its offset. */
  private chunkOf(i: number): Chunk {
    if (!(i >= 0 && i < this.count) || !Number.isInteger(i)) {
      throw new HotSetError(`series ${this.symbolId}: row ${i} is out of range (series has ${this.count} rows)`);
    }
    const k = this.locate(i);
    this.locOff = i - this.starts[k]!;
    return this.chunks[k]!;
  }
}

function writeRow(c: Chunk, i: number, tsMicros: number, lsn: number, rowInRecord: number, cols: readonly ValueArray[], r: number): void {
  c.ts[i] = tsMicros;
  c.lsn[i] = lsn;
  c.row[i] = rowInRecord;
  const vals = c.values;
  for (let j = 0; j < vals.length; j++) vals[j]![i] = cols[j]![r]!;
}
