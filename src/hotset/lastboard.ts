// The last row of every series of a table in dense arrays, by symbol id. A
// last-by over ~1,000 symbols that read each series' last row chased 3-4
// pointers a symbol (chunk list, chunk, its ts array, each value array) into
// memory the rest of a node's work had evicted from the cache: 300 ns a symbol
// in process and about 3x that on a busy node. Read here it is a few loads
// from dense typed arrays. An entry is read again from its series only when a
// reader asks for it after its series changed: apply marks the series of the
// batch, an eviction that removed rows marks them all (their seam rows and
// possibly their last rows moved) by starting a new epoch. So a last-by of a
// few symbols of a large table never pays for the others.
import type { ValueArray } from "../codec/tickbatch.js";
import { lastHotBefore } from "./lastrow.js";
import type { Series } from "./series.js";

/** What the board knows of one series: the greater of its last hot row and its seam row. */
export class LastBoard {
  /** Per id: the series' last hot row's ts, -Infinity without hot rows. */
  hotTs = new Float64Array(0);
  /** Per id: 1 when the series has a hot row or a seam row, else 0. */
  has = new Uint8Array(0);
  /** Per id: (ts, lsn, row) of the greater of the last hot row and the seam row. */
  winTs = new Float64Array(0);
  winLsn = new Float64Array(0);
  winRow = new Float64Array(0);
  /** Per id: 1 when that row is the seam row. */
  winSeam = new Uint8Array(0);
  /** Per value column (table-spec order), per id: that row's value. */
  values: Float64Array[];
  /** Per id: the epoch its entry was read in (0: never, or changed since). */
  private seen = new Int32Array(0);
  private epoch = 1;

  /** `series`: the table's own list by symbol id (it grows as symbols come). */
  constructor(
    private readonly series: readonly Series[],
    private readonly ncols: number,
  ) {
    this.values = Array.from({ length: ncols }, () => new Float64Array(0));
  }

  /** Brings entry `id` up to date; false when the table has no symbol `id`. Valid until the next apply or evict. */
  current(id: number): boolean {
    const series = this.series;
    if (id >= series.length) return false;
    if (id >= this.seen.length) this.grow(series.length);
    if (this.seen[id] !== this.epoch) {
      this.read(series[id]!, id);
      this.seen[id] = this.epoch;
    }
    return true;
  }

  /** Writes entry `id`'s values of columns `cols` (table-spec order) to `out[v][at]` (call current(id) first). */
  copyValues(id: number, cols: readonly number[], out: readonly ValueArray[], at: number): void {
    for (let v = 0; v < cols.length; v++) out[v]![at] = this.values[cols[v]!]![id]!;
  }

  /** Series `id` changed (a row was added, or its seam row). */
  mark(id: number): void {
    if (id < this.seen.length) this.seen[id] = 0;
  }

  /** Every series may have changed (an eviction removed rows). */
  markAll(): void {
    this.epoch = (this.epoch + 1) | 0 || 1;
    // After a wrap an entry of the same epoch number 2^32 evictions ago must not count as read.
    if (this.epoch === 1) this.seen.fill(0);
  }

  private read(s: Series, id: number): void {
    const seam = s.seam();
    this.hotTs[id] = s.length > 0 ? s.tsAt(s.length - 1) : -Infinity;
    const last = lastHotBefore(s, Infinity, seam);
    if (last >= 0) {
      this.set(id, 0, s.tsAt(last), s.lsnAt(last), s.rowInRecordAt(last));
      for (let j = 0; j < this.ncols; j++) this.values[j]![id] = s.valueAt(j, last);
    } else if (seam !== null) {
      this.set(id, 1, seam.tsMicros, seam.lsn, seam.rowInRecord);
      for (let j = 0; j < this.ncols; j++) this.values[j]![id] = seam.values[j]!;
    } else this.has[id] = 0;
  }

  private set(id: number, seam: number, ts: number, lsn: number, row: number): void {
    this.has[id] = 1;
    this.winSeam[id] = seam;
    this.winTs[id] = ts;
    this.winLsn[id] = lsn;
    this.winRow[id] = row;
  }

  private grow(n: number): void {
    const cap = Math.max(n, this.seen.length * 2, 64);
    this.seen = grown(this.seen, cap);
    this.hotTs = grown(this.hotTs, cap);
    this.has = grown(this.has, cap);
    this.winTs = grown(this.winTs, cap);
    this.winLsn = grown(this.winLsn, cap);
    this.winRow = grown(this.winRow, cap);
    this.winSeam = grown(this.winSeam, cap);
    this.values = this.values.map((v) => grown(v, cap));
  }
}

function grown<A extends Float64Array | Uint8Array | Int32Array>(a: A, cap: number): A {
  const b = new (a.constructor as new (n: number) => A)(cap);
  b.set(a);
  return b;
}
