// HotTable: the hot set of one shard of one table. `apply(lsn, batch)` is the
// single pure transition used by WAL replay and live ingest alike; `evict`
// drops rows the cold store holds, keeping the seam invariant; `exportColumns`
// / `fromColumns` turn the store into plain data for snapshots and back.
import type { TableSpec, ValueType } from "../../protocols/tablespec.js";
import type { TickBatch, ValueArray } from "../codec/tickbatch.js";
import { ChunkAllocator } from "./alloc.js";
import { ColumnLayout } from "./chunk.js";
import { HotSetError } from "./errors.js";
import { LastBoard } from "./lastboard.js";
import { digestRows, sortedRows } from "./export.js";
import type { SortedRows } from "./export.js";
import { Series } from "./series.js";
import { SymbolDictionary } from "./symbols.js";
import { DEFAULT_HOTSET_OPTIONS } from "./types.js";
import type { ColumnSlice, HotSetOptions, HotTableColumns, SeamRow, SeriesColumns } from "./types.js";

export type { SeriesEntry } from "./series.js";
import type { SeriesEntry } from "./series.js";

export interface EvictResult {
  readonly evictedRows: number;
}

export class HotTable {
  readonly spec: TableSpec;
  readonly options: HotSetOptions;
  private readonly layout: ColumnLayout;
  private readonly alloc: ChunkAllocator;
  private dict = new SymbolDictionary();
  private readonly bySymbol: Series[] = [];
  private applied = 0;
  private persisted = 0;
  private horizon = 0;
  private rows = 0;
  /** Bumped by every evict call that removed rows (see evictionCount). */
  private evictions = 0;
  /** Open holdEvictions() holds, and the furthest eviction asked for meanwhile. */
  private holds = 0;
  private heldEviction: { persistedLsn: number; horizonMicros: number } | undefined;
  /** Scratch: batch symbol index -> series, reused across batches. */
  private readonly batchSeries: Series[] = [];
  /** Every series' last row, for last-by (see lastBoard()). */
  private readonly board: LastBoard;

  constructor(spec: TableSpec, options: Partial<HotSetOptions> = {}) {
    this.spec = spec;
    this.options = checkOptions(withDefaults(options));
    this.layout = new ColumnLayout(spec.columns);
    this.alloc = new ChunkAllocator(this.options.poolBytes);
    this.board = new LastBoard(this.bySymbol, spec.columns.length);
  }

  /**
   * Restores a table from `exportColumns()` output (validated: a corrupt
   * snapshot throws HotSetError). With `adopt`, the exported arrays become the table's storage (no copy):
   * for a caller that made them for this table only (a snapshot loader), never
   * for columns another table or caller still uses.
   */
  static fromColumns(spec: TableSpec, exported: HotTableColumns, options: Partial<HotSetOptions> = {}, adopt = false): HotTable {
    const table = new HotTable(spec, options);
    const where = `table ${spec.name}: snapshot`;
    if (exported.table !== spec.name) {
      throw new HotSetError(`${where} is of table ${exported.table}; restore it into table ${exported.table} or rebuild from the WAL`);
    }
    for (const [name, v] of [
      ["appliedLsn", exported.appliedLsn],
      ["persistedLsn", exported.persistedLsn],
      ["horizonMicros", exported.horizonMicros],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new HotSetError(`${where}: ${name} must be a non-negative integer, got ${v}`);
    }
    if (exported.series.length !== exported.symbols.length) {
      throw new HotSetError(`${where} has ${exported.symbols.length} symbols but ${exported.series.length} series; it is corrupt, rebuild it from the WAL`);
    }
    table.dict = SymbolDictionary.fromSymbols(exported.symbols);
    exported.series.forEach((cols, id) => {
      checkSeriesColumns(spec, exported.symbols[id]!, cols, exported.appliedLsn);
      const s = new Series(id, table.layout, table.options, table.alloc);
      s.load(cols, adopt);
      table.bySymbol.push(s);
      table.rows += s.length;
    });
    table.applied = exported.appliedLsn;
    table.persisted = exported.persistedLsn;
    table.horizon = exported.horizonMicros;
    return table;
  }

  /** Every WAL record with LSN <= appliedLsn is reflected (0 = none yet). */
  get appliedLsn(): number {
    return this.applied;
  }

  /** Largest persisted LSN (P) this table evicted against (0 = never). */
  get persistedLsn(): number {
    return this.persisted;
  }

  /** Eviction horizon H, microseconds: every row with ts >= H is in RAM (0 = nothing evicted). */
  get horizonMicros(): number {
    return this.horizon;
  }

  get rowCount(): number {
    return this.rows;
  }

  get symbolCount(): number {
    return this.dict.size;
  }

  /** Typed-array bytes this table holds: chunk capacity of all series plus allocated storage not in use. */
  get bytes(): number {
    let n = this.alloc.idleBytes;
    for (const s of this.bySymbol) n += s.bytes;
    return n;
  }

  /** Of `bytes`, storage allocated but not holding a chunk (kept for reuse). */
  get idleBytes(): number {
    return this.alloc.idleBytes;
  }

  /** Symbol id of `symbol`, or undefined when this shard never saw it. */
  lookup(symbol: string): number | undefined {
    return this.dict.lookup(symbol);
  }

  symbolAt(symbolId: number): string {
    return this.dict.symbolAt(symbolId);
  }

  /** The symbol dictionary, index = id (a copy). */
  symbols(): string[] {
    return this.dict.symbols();
  }

  series(symbolId: number): Series | undefined {
    return this.bySymbol[symbolId];
  }

  seriesOf(symbol: string): Series | undefined {
    const id = this.dict.lookup(symbol);
    return id === undefined ? undefined : this.bySymbol[id];
  }

  /** Every symbol with its series, in id order. */
  *entries(): IterableIterator<SeriesEntry> {
    for (let id = 0; id < this.bySymbol.length; id++) {
      yield { symbolId: id, symbol: this.dict.symbolAt(id), series: this.bySymbol[id]! };
    }
  }

  [Symbol.iterator](): IterableIterator<SeriesEntry> {
    return this.entries();
  }

  /**
   * Applies WAL record `lsn` carrying `batch`. Row r gets rowInRecord = r.
   * A record at or below `appliedLsn` is a no-op (redelivery never duplicates rows).
   * The batch is checked before anything changes, so a rejected batch leaves the table as it was.
   */
  apply(lsn: number, batch: TickBatch): void {
    if (!Number.isSafeInteger(lsn) || lsn <= 0) {
      throw new HotSetError(`table ${this.spec.name}: LSN must be a positive integer (the JetStream sequence), got ${lsn}`);
    }
    if (lsn <= this.applied) return;
    this.checkBatch(lsn, batch);
    const map = this.batchSeries;
    const syms = batch.symbols;
    for (let s = 0; s < syms.length; s++) {
      map[s] = this.seriesFor(syms[s]!);
      this.board.mark(map[s]!.symbolId);
    }
    const n = batch.rows;
    const idx = batch.symbolIndex;
    const ts = batch.ts;
    const cols = batch.values;
    if (lsn > this.persisted) {
      for (let r = 0; r < n; r++) map[idx[r]!]!.push(ts[r]!, lsn, r, cols, r);
      this.rows += n;
    } else {
      // The sink is ahead of this table: rows below the horizon are already cold-only.
      const h = this.horizon;
      for (let r = 0; r < n; r++) {
        const t = ts[r]!;
        if (t < h) map[idx[r]!]!.absorbCold(t, lsn, r, cols, r);
        else {
          map[idx[r]!]!.push(t, lsn, r, cols, r);
          this.rows++;
        }
      }
    }
    this.applied = lsn;
  }

  /**
   * Removes exactly the rows with ts < horizonMicros and lsn <= persistedLsn (the
   * cold store has them); late unpersisted rows stay. P and H only move forward:
   * a smaller argument than a previous call counts as the previous value.
   */
  evict(persistedLsn: number, horizonMicros: number): EvictResult {
    if (!Number.isSafeInteger(persistedLsn) || persistedLsn < 0) {
      throw new HotSetError(`table ${this.spec.name}: persisted LSN must be a non-negative integer, got ${persistedLsn}`);
    }
    if (!Number.isSafeInteger(horizonMicros)) {
      throw new HotSetError(`table ${this.spec.name}: horizon must be integer microseconds since the epoch, got ${horizonMicros}`);
    }
    if (this.holds > 0) {
      const h = this.heldEviction;
      this.heldEviction = { persistedLsn: Math.max(h?.persistedLsn ?? 0, persistedLsn), horizonMicros: Math.max(h?.horizonMicros ?? -Infinity, horizonMicros) };
      return { evictedRows: 0 };
    }
    this.persisted = Math.max(this.persisted, persistedLsn);
    this.horizon = Math.max(this.horizon, horizonMicros);
    let evictedRows = 0;
    for (const s of this.bySymbol) evictedRows += s.evict(this.persisted, this.horizon);
    this.rows -= evictedRows;
    // Only an eviction that removed rows changes what a reader spread over several turns sees (a series
    // removes nothing and keeps its seam cache when it evicts no row).
    if (evictedRows > 0) {
      this.evictions++;
      this.board.markAll();
    }
    return { evictedRows };
  }

  /**
   * Every series' last row (the greater of its last hot row and its seam row)
   * by symbol id: `current(id)` brings an entry up to date. Valid until the
   * next apply or evict: read it within one turn of the event loop.
   */
  lastBoard(): LastBoard {
    return this.board;
  }

  /** Seam cache of a symbol: its last evicted row, or null. */
  seam(symbolId: number): SeamRow | null {
    return this.bySymbol[symbolId]?.seam() ?? null;
  }

  /** Zero-copy column views of `symbolId`'s rows with ts in [t0, t1) (empty for an unknown id). */
  range(symbolId: number, t0: number, t1: number): ColumnSlice[] {
    return this.bySymbol[symbolId]?.range(t0, t1) ?? [];
  }

  /** All rows as one batch in (symbol, ts, lsn, row) order, with their lsn and rowInRecord. */
  toTickBatch(): SortedRows {
    return sortedRows(this);
  }

  /** sha256 (hex) of all rows in (symbol, ts, lsn, row) order: equal stores have equal digests. */
  digest(): string {
    return digestRows(this);
  }

  /** How many evict calls removed rows: while it stays, every series is as it was. */
  get evictionCount(): number {
    return this.evictions;
  }

  /**
   * One series as plain columns, limited to rows with LSN <= `maxLsn`: an
   * export spread over several turns of the event loop, between which records
   * are applied, still describes the table as of `maxLsn` (a late row applied
   * meanwhile carries a higher LSN and is left out). Eviction is not undone
   * this way: such a reader holds evictions meanwhile (holdEvictions).
   */
  exportSeries(symbolId: number, maxLsn: number): SeriesColumns {
    const cols = this.bySymbol[symbolId]!.toColumns();
    let keep = 0;
    for (let i = 0; i < cols.lsn.length; i++) if (cols.lsn[i]! <= maxLsn) keep++;
    if (keep === cols.lsn.length) return cols;
    const idx = new Uint32Array(keep);
    for (let i = 0, k = 0; i < cols.lsn.length; i++) if (cols.lsn[i]! <= maxLsn) idx[k++] = i;
    const pick = <A extends Float64Array | Int32Array | ValueArray>(a: A): A => {
      const out = new (a.constructor as new (n: number) => A)(keep);
      for (let k = 0; k < keep; k++) out[k] = a[idx[k]!]!;
      return out;
    };
    return { tsMicros: pick(cols.tsMicros), lsn: pick(cols.lsn), rowInRecord: pick(cols.rowInRecord), values: cols.values.map(pick), seam: cols.seam };
  }

  /**
   * One series' rows with LSN <= `maxLsn` as views (no copy) when they are a
   * prefix of it (rows applied since arrived at the end, or there are none),
   * else one filtered copy (exportSeries). Views are valid until the next
   * apply or evict: a caller copies them before it yields.
   */
  viewSeries(symbolId: number, maxLsn: number): ColumnSlice[] {
    const s = this.bySymbol[symbolId]!;
    // Records applied since the snapshot began appended their rows at the end (the usual case): views of the rows before them.
    const prefix = s.prefixUpTo(maxLsn);
    if (prefix !== undefined) return s.slices(0, prefix);
    const slices = s.slices(0, s.length);
    for (const v of slices) {
      const lsn = v.lsn;
      for (let i = 0; i < lsn.length; i++) {
        if (lsn[i]! > maxLsn) {
          const c = this.exportSeries(symbolId, maxLsn);
          return c.tsMicros.length === 0 ? [] : [{ rows: c.tsMicros.length, tsMicros: c.tsMicros, lsn: c.lsn, rowInRecord: c.rowInRecord, values: c.values }];
        }
      }
    }
    return slices;
  }

  /**
   * Holds evictions until the returned release is called (a snapshot staged
   * over several turns of the event loop reads every series as of one
   * horizon): evict() meanwhile only checks its arguments and notes the
   * furthest P and H asked for; release applies them. Holds nest.
   */
  holdEvictions(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds > 0 || this.heldEviction === undefined) return;
      const { persistedLsn, horizonMicros } = this.heldEviction;
      this.heldEviction = undefined;
      this.evict(persistedLsn, horizonMicros);
    };
  }

  /** The whole table as plain data (copies). */
  exportColumns(): HotTableColumns {
    return {
      table: this.spec.name,
      appliedLsn: this.applied,
      persistedLsn: this.persisted,
      horizonMicros: this.horizon,
      symbols: this.dict.symbols(),
      series: this.bySymbol.map((s) => s.toColumns()),
    };
  }

  /** @internal Throws when a series is internally inconsistent (tests). */
  verify(): void {
    let rows = 0;
    for (const s of this.bySymbol) {
      s.verify();
      rows += s.length;
    }
    if (rows !== this.rows) throw new HotSetError(`table ${this.spec.name}: series hold ${rows} rows, counted ${this.rows}`);
  }

  private seriesFor(symbol: string): Series {
    const id = this.dict.idOf(symbol);
    let s = this.bySymbol[id];
    if (s === undefined) {
      s = new Series(id, this.layout, this.options, this.alloc);
      this.bySymbol.push(s);
    }
    return s;
  }

  private checkBatch(lsn: number, batch: TickBatch): void {
    const where = `table ${this.spec.name}: WAL record ${lsn}`;
    const n = batch.rows;
    const cols = this.spec.columns;
    if (batch.values.length !== cols.length) {
      throw new HotSetError(`${where} has ${batch.values.length} value columns, the table has ${cols.length}; decode it with this table's spec`);
    }
    if (n > 0x7fffffff || batch.ts.length < n || batch.symbolIndex.length < n) {
      throw new HotSetError(`${where}: ts/symbolIndex hold fewer than ${n} rows`);
    }
    for (let j = 0; j < cols.length; j++) {
      const col = cols[j]!;
      const v = batch.values[j]!;
      if (!isArrayOf(col.type, v) || v.length < n) {
        throw new HotSetError(`${where}: column ${col.name} must be ${col.type} with ${n} rows, got ${v.constructor.name}(${v.length})`);
      }
    }
    const nsym = batch.symbols.length;
    const idx = batch.symbolIndex;
    const ts = batch.ts;
    for (let r = 0; r < n; r++) {
      const t = ts[r]!;
      if (idx[r]! >= nsym || t - t !== 0) {
        throw new HotSetError(
          idx[r]! >= nsym
            ? `${where}: row ${r} points at symbol ${idx[r]}, the batch has ${nsym} symbols`
            : `${where}: row ${r} has timestamp ${t}; timestamps must be finite microseconds`,
        );
      }
    }
  }
}

function isArrayOf(type: ValueType, v: ValueArray): boolean {
  switch (type) {
    case "float64":
    case "int64":
      return v instanceof Float64Array;
    case "float32":
      return v instanceof Float32Array;
    case "int32":
      return v instanceof Int32Array;
    case "bool":
      return v instanceof Uint8Array;
  }
}

/** Defaults for what `options` leaves out; first/next chunk sizes never exceed a smaller chunkRows. */
function withDefaults(options: Partial<HotSetOptions>): HotSetOptions {
  const d = DEFAULT_HOTSET_OPTIONS;
  const chunkRows = options.chunkRows ?? d.chunkRows;
  return {
    chunkRows,
    firstChunkRows: options.firstChunkRows ?? Math.min(d.firstChunkRows, chunkRows),
    nextChunkRows: options.nextChunkRows ?? Math.min(d.nextChunkRows, chunkRows),
    rippleChunks: options.rippleChunks ?? d.rippleChunks,
    poolBytes: options.poolBytes ?? d.poolBytes,
  };
}

function checkOptions(o: HotSetOptions): HotSetOptions {
  const ok =
    Number.isSafeInteger(o.chunkRows) &&
    o.chunkRows >= 1 &&
    Number.isSafeInteger(o.firstChunkRows) &&
    o.firstChunkRows >= 1 &&
    o.firstChunkRows <= o.chunkRows &&
    Number.isSafeInteger(o.nextChunkRows) &&
    o.nextChunkRows >= 1 &&
    o.nextChunkRows <= o.chunkRows &&
    Number.isSafeInteger(o.rippleChunks) &&
    o.rippleChunks >= 0 &&
    Number.isSafeInteger(o.poolBytes) &&
    o.poolBytes >= 0;
  if (!ok) {
    throw new HotSetError(
      `hot set options ${JSON.stringify(o)} are invalid: chunkRows >= 1, 1 <= firstChunkRows, nextChunkRows <= chunkRows, rippleChunks >= 0, poolBytes >= 0`,
    );
  }
  return o;
}

function checkSeriesColumns(spec: TableSpec, symbol: string, cols: SeriesColumns, appliedLsn: number): void {
  const where = `table ${spec.name}: snapshot series ${symbol}`;
  const n = cols.tsMicros.length;
  if (cols.lsn.length !== n || cols.rowInRecord.length !== n) {
    throw new HotSetError(`${where}: ts, lsn and rowInRecord lengths differ (${n}, ${cols.lsn.length}, ${cols.rowInRecord.length})`);
  }
  if (cols.values.length !== spec.columns.length) {
    throw new HotSetError(`${where} has ${cols.values.length} value columns, the table has ${spec.columns.length}; the snapshot is of another table version`);
  }
  spec.columns.forEach((c, j) => {
    const v = cols.values[j]!;
    if (!isArrayOf(c.type, v) || v.length !== n) {
      throw new HotSetError(`${where}: column ${c.name} must be ${c.type} with ${n} rows, got ${v.constructor.name}(${v.length})`);
    }
  });
  const ts = cols.tsMicros;
  const lsn = cols.lsn;
  const row = cols.rowInRecord;
  for (let i = 0; i < n; i++) {
    const t = ts[i]!;
    if (t - t !== 0) throw new HotSetError(`${where}: row ${i} has timestamp ${t}; the snapshot is corrupt`);
    if (!(lsn[i]! > 0 && lsn[i]! <= appliedLsn)) {
      throw new HotSetError(`${where}: row ${i} has LSN ${lsn[i]}, outside (0, appliedLsn ${appliedLsn}]; the snapshot is corrupt`);
    }
    if (i > 0) {
      const pt = ts[i - 1]!;
      const pl = lsn[i - 1]!;
      const ordered = t > pt || (t === pt && (lsn[i]! > pl || (lsn[i] === pl && row[i]! > row[i - 1]!)));
      if (!ordered) throw new HotSetError(`${where}: row ${i} is out of (ts, lsn, row) order; the snapshot is corrupt`);
    }
  }
  const seam = cols.seam;
  if (seam !== null && seam.values.length !== spec.columns.length) {
    throw new HotSetError(`${where}: seam row has ${seam.values.length} values, the table has ${spec.columns.length} columns`);
  }
}
