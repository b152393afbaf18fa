// One symbol's recent rows, kept sorted by (ts, lsn, row) as a feed receives
// them: appended in place when in order, shifted in when late, trimmed at the
// front once no late tick within the feed's lateness can reach them. Its
// `view()` is a query SymbolSeries, so the query operators run on it unchanged.
import type { ValueType } from "../../protocols/tablespec.js";
import { allocValueArray } from "../codec/tickbatch.js";
import type { ValueArray } from "../codec/tickbatch.js";
import { before } from "../query/index.js";
import type { SymbolSeries } from "../query/index.js";

/** A SeriesBuffer's rows as plain data (typed arrays of exactly n rows). */
export interface SavedSeries {
  readonly n: number;
  readonly ts: Float64Array;
  readonly lsn: Float64Array;
  readonly row: Float64Array;
  readonly values: readonly (ValueArray | undefined)[];
  readonly extra: readonly Float64Array[];
}

export class SeriesBuffer {
  n = 0;
  /**
   * The first row's ts and the last row's key, kept on the buffer itself: a
   * feed of many symbols touches each symbol's buffer once a record, and
   * reading them from the arrays cost a cache miss per array (~half of a
   * rolling feed's time with 1,000 symbols).
   */
  firstTs = Infinity;
  private lastTs = -Infinity;
  private lastLsn = 0;
  private lastRow = 0;
  private cap = 16;
  ts = new Float64Array(this.cap);
  lsn = new Float64Array(this.cap);
  row = new Float64Array(this.cap);
  /** Per table column (spec order); undefined = not kept. */
  values: (ValueArray | undefined)[];
  /** Per-row state an operator keeps alongside (EMA values). */
  extra: Float64Array[];

  constructor(
    readonly symbol: string,
    private readonly types: readonly (ValueType | undefined)[],
    extras = 0,
  ) {
    this.values = types.map((t) => (t === undefined ? undefined : allocValueArray(t, this.cap)));
    this.extra = Array.from({ length: extras }, () => new Float64Array(this.cap));
  }

  /** Newest ts held (or -Infinity). */
  get maxTs(): number {
    return this.lastTs;
  }

  /** Inserts row i of `cols` at (ts, lsn, row) in key order; returns its index. */
  insert(ts: number, lsn: number, row: number, cols: readonly ValueArray[], i: number): number {
    if (this.n === this.cap) this.grow();
    const n = this.n;
    let p = n;
    if (n > 0 && before(ts, lsn, row, this.lastTs, this.lastLsn, this.lastRow)) {
      p = this.position(ts, lsn, row);
      const shift = (a: ValueArray): void => void a.copyWithin(p + 1, p, n);
      shift(this.ts);
      shift(this.lsn);
      shift(this.row);
      for (const v of this.values) if (v !== undefined) shift(v);
      for (const e of this.extra) shift(e);
    }
    this.ts[p] = ts;
    this.lsn[p] = lsn;
    this.row[p] = row;
    for (let j = 0; j < this.values.length; j++) {
      const v = this.values[j];
      if (v !== undefined) v[p] = cols[j]![i]!;
    }
    this.n = n + 1;
    if (p === n) {
      this.lastTs = ts;
      this.lastLsn = lsn;
      this.lastRow = row;
    }
    if (p === 0) this.firstTs = ts;
    return p;
  }

  /** Index of the first row after key (ts, lsn, row). */
  position(ts: number, lsn: number, row: number): number {
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(ts, lsn, row, this.ts[mid]!, this.lsn[mid]!, this.row[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Index of the row with exactly this key (it must be held). */
  indexOf(ts: number, lsn: number, row: number): number {
    return this.position(ts, lsn, row) - 1;
  }

  /** Drops the first k rows (amortised: only once they are a good part of the buffer); returns how many it dropped. */
  dropFront(k: number): number {
    if (k <= 0 || (k < 64 && k * 2 < this.n)) return 0;
    const n = this.n;
    const move = (a: ValueArray): void => void a.copyWithin(0, k, n);
    move(this.ts);
    move(this.lsn);
    move(this.row);
    for (const v of this.values) if (v !== undefined) move(v);
    for (const e of this.extra) move(e);
    this.n = n - k;
    this.firstTs = this.n === 0 ? Infinity : this.ts[0]!;
    if (this.n === 0) this.keepLast();
    return k;
  }

  /** The last row's key from the arrays (after a change at the end). */
  private keepLast(): void {
    const n = this.n;
    this.lastTs = n === 0 ? -Infinity : this.ts[n - 1]!;
    this.lastLsn = n === 0 ? 0 : this.lsn[n - 1]!;
    this.lastRow = n === 0 ? 0 : this.row[n - 1]!;
  }

  /** The rows as a query series (views, valid until the next insert). */
  view(): SymbolSeries {
    const n = this.n;
    return {
      symbol: this.symbol,
      n,
      ts: this.ts.subarray(0, n),
      lsn: this.lsn.subarray(0, n),
      row: this.row.subarray(0, n),
      values: this.values.map((v) => (v === undefined ? undefined : (v.subarray(0, n) as ValueArray))),
      lo: 0,
      hi: n,
    };
  }

  /** The rows as plain data (a feed checkpoint): copies, so the buffer may go on changing. */
  save(): SavedSeries {
    const n = this.n;
    return { n, ts: this.ts.slice(0, n), lsn: this.lsn.slice(0, n), row: this.row.slice(0, n), values: this.values.map((v) => v?.slice(0, n)), extra: this.extra.map((e) => e.slice(0, n)) };
  }

  /** A buffer holding what `save` gave; throws when the saved columns do not fit `types` (the table changed). */
  static load(symbol: string, types: readonly (ValueType | undefined)[], extras: number, s: SavedSeries): SeriesBuffer {
    if (s.values.length !== types.length || s.extra.length !== extras || s.values.some((v, j) => (v === undefined) !== (types[j] === undefined))) {
      throw new Error(`the saved rows of ${symbol} have ${s.values.length} columns and ${s.extra.length} extra, the feed keeps ${types.length} and ${extras}`);
    }
    const b = new SeriesBuffer(symbol, types, extras);
    while (b.cap < s.n) b.cap *= 2;
    const fill = <T extends ValueArray>(make: (n: number) => T, from: ValueArray): T => {
      const a = make(b.cap);
      a.set(from as never);
      return a;
    };
    b.ts = fill((c) => new Float64Array(c), s.ts);
    b.lsn = fill((c) => new Float64Array(c), s.lsn);
    b.row = fill((c) => new Float64Array(c), s.row);
    b.values = s.values.map((v, j) => (v === undefined ? undefined : fill((c) => allocValueArray(types[j]!, c), v)));
    b.extra = s.extra.map((e) => fill((c) => new Float64Array(c), e));
    b.n = s.n;
    b.keepLast();
    b.firstTs = s.n === 0 ? Infinity : b.ts[0]!;
    return b;
  }

  private grow(): void {
    this.cap *= 2;
    const g = <T extends ValueArray>(a: T, make: (n: number) => T): T => {
      const b = make(this.cap);
      b.set(a as never);
      return b;
    };
    this.ts = g(this.ts, (c) => new Float64Array(c));
    this.lsn = g(this.lsn, (c) => new Float64Array(c));
    this.row = g(this.row, (c) => new Float64Array(c));
    this.values = this.values.map((v, j) => (v === undefined ? undefined : g(v, (c) => allocValueArray(this.types[j]!, c))));
    this.extra = this.extra.map((e) => g(e, (c) => new Float64Array(c)));
  }
}
