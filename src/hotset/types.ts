// Plain data shapes of the hot set's public surface: query slices, the seam
// cache row, and the snapshot column form (`exportColumns` / `fromColumns`).
import type { ValueArray } from "../codec/tickbatch.js";

/** Tuning of chunk allocation; defaults suit market data (see `DEFAULT_HOTSET_OPTIONS`). */
export interface HotSetOptions {
  /** Rows of a full chunk. Late ticks shift at most this many rows per chunk they touch. */
  readonly chunkRows: number;
  /** Capacity of a series' first chunk; it doubles up to `chunkRows` (small series stay small). */
  readonly firstChunkRows: number;
  /**
   * Capacity of every later tail chunk before it doubles up to `chunkRows`: a
   * large series then wastes at most this many rows, for one copy of that many.
   */
  readonly nextChunkRows: number;
  /**
   * A late tick into a full chunk pushes one row into each following chunk while
   * at most this many chunks must shift; beyond that the chunk is split instead.
   */
  readonly rippleChunks: number;
  /** Chunk buffers freed by growth and eviction kept for reuse: at most this many bytes, and 1/16 of the bytes in use. */
  readonly poolBytes: number;
}

export const DEFAULT_HOTSET_OPTIONS: HotSetOptions = {
  chunkRows: 4096,
  firstChunkRows: 16,
  nextChunkRows: 2048,
  rippleChunks: 2,
  poolBytes: 16 << 20,
};

/**
 * Zero-copy views of consecutive rows of one series (one per chunk touched).
 * Valid until the next `apply`/`evict` on the table: a late tick shifts rows in place.
 */
export interface ColumnSlice {
  readonly rows: number;
  readonly tsMicros: Float64Array;
  readonly lsn: Float64Array;
  readonly rowInRecord: Int32Array;
  /** Per value column, in table-spec order. */
  readonly values: readonly ValueArray[];
}

/** One row held outside the chunks (the seam cache). Values as numbers, in table-spec order. */
export interface SeamRow {
  readonly tsMicros: number;
  readonly lsn: number;
  readonly rowInRecord: number;
  readonly values: readonly number[];
}

/** One symbol's rows as flat columns, time-sorted, plus its seam cache row. */
export interface SeriesColumns {
  readonly tsMicros: Float64Array;
  readonly lsn: Float64Array;
  readonly rowInRecord: Int32Array;
  readonly values: readonly ValueArray[];
  readonly seam: SeamRow | null;
}

/** A shard's hot set as plain data: what a snapshot stores and restores. */
export interface HotTableColumns {
  readonly table: string;
  /** Every WAL record with LSN <= appliedLsn is reflected (0 = none). */
  readonly appliedLsn: number;
  /** Largest persisted LSN (P) evicted against (0 = never evicted). */
  readonly persistedLsn: number;
  /** Eviction horizon H in microseconds (0 = never evicted). */
  readonly horizonMicros: number;
  /** Symbol dictionary, index = symbol id. */
  readonly symbols: readonly string[];
  /** Index = symbol id; same length as `symbols`. */
  readonly series: readonly SeriesColumns[];
}
