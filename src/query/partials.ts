// Combinable aggregate partials for group-by and bars: per group (symbol,
// bucket) and aggregate, count/sum/min/max, first/last with their (ts, lsn,
// row) key, and the vwap sums. Hot rows give partials in RAM; the cold side is
// pushed down to ClickHouse as one GROUP BY under the seam rule of every shard.
// Partials of disjoint row sets combine exactly (up to float addition order).
import type { Aggregate } from "../../protocols/query.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { quoteIdent, qualifiedTable, readStringLength } from "../clickhouse/index.js";
import { lowerBound } from "./series.js";
import type { SymbolSeries } from "./series.js";
import { seamWhereAll } from "./source.js";
import type { ColdSlice } from "./source.js";

const keyLess = (at: number, al: number, ar: number, bt: number, bl: number, br: number): boolean => at < bt || (at === bt && (al < bl || (al === bl && ar < br)));

/** Bucket start of ts (buckets aligned to the Unix epoch, so 1d buckets are UTC days). */
export const bucketStart = (ts: number, b: number): number => Math.floor(ts / b) * b;

type Field = "sum" | "min" | "max" | "pw" | "w" | "ft" | "fl" | "fr" | "fv" | "lt" | "ll" | "lr" | "lv";

const FIELDS: Record<Aggregate["fn"], readonly Field[]> = {
  count: [],
  sum: ["sum"],
  avg: ["sum"],
  min: ["min"],
  max: ["max"],
  first: ["ft", "fl", "fr", "fv"],
  last: ["lt", "ll", "lr", "lv"],
  vwap: ["pw", "w"],
  stddev: [],
  ema: [],
  udf: [],
};

/**
 * Group partials as columns: one row per (symbol, bucket) partial, appended in
 * any order (hot per symbol, cold per shard); `groups()` sorts and combines equal keys.
 * Symbol "" when not grouped by symbol; bucket 0 when not bucketed.
 */
export class GroupTable {
  size = 0;
  private cap = 1024;
  /** Symbol names, index = symbol id. */
  readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  /** Per row: symbol id. */
  sym: Int32Array = new Int32Array(this.cap);
  bucket: Float64Array = new Float64Array(this.cap);
  n: Float64Array = new Float64Array(this.cap);
  /** Field columns; `slot[k][f]` is the column of field f of aggregate k (FIELDS order). */
  arrs: Float64Array[] = [];
  readonly slot: number[][];

  /** Values of the user-defined aggregates (fn "udf") per aggregate and group row, set by the UDF path (ops/udf.ts) before the table is read. */
  udf: ((k: number, i: number) => number) | undefined;

  constructor(readonly aggs: readonly Aggregate[]) {
    this.slot = aggs.map((a) => FIELDS[a.fn].map(() => this.arrs.push(new Float64Array(this.cap)) - 1));
  }

  /** Makes room for `more` rows (so callers may hold the arrays while adding). */
  reserve(more: number): void {
    if (this.size + more <= this.cap) return;
    while (this.cap < this.size + more) this.cap *= 2;
    const g = (a: Float64Array): Float64Array => {
      const b = new Float64Array(this.cap);
      b.set(a.subarray(0, this.size));
      return b;
    };
    this.bucket = g(this.bucket);
    this.n = g(this.n);
    this.arrs = this.arrs.map(g);
    const sym = new Int32Array(this.cap);
    sym.set(this.sym.subarray(0, this.size));
    this.sym = sym;
  }

  /** Id of a symbol name ("" when not grouped by symbol). */
  symbolId(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.push(name) - 1;
      this.ids.set(name, id);
    }
    return id;
  }

  /** Appends a group row; returns its index. */
  add(symId: number, bucket: number, n: number): number {
    this.reserve(1);
    const i = this.size++;
    this.sym[i] = symId;
    this.bucket[i] = bucket;
    this.n[i] = n;
    return i;
  }

  /** Field column `f` (index in FIELDS[fn]) of aggregate k. */
  col(k: number, f: number): Float64Array {
    return this.arrs[this.slot[k]![f]!]!;
  }

  /**
   * Combined groups in (symbol, bucket) order: each entry is the row holding the
   * group; the other rows of the group are combined into it.
   */
  groups(): Int32Array {
    const bk = this.bucket;
    const size = this.size;
    // Rank of each symbol id in name order.
    const byName = this.names.map((_, id) => id).sort((a, b) => (this.names[a]! < this.names[b]! ? -1 : this.names[a]! > this.names[b]! ? 1 : 0));
    const rank = new Int32Array(this.names.length);
    byName.forEach((id, r) => (rank[id] = r));
    const sym = this.sym;
    const key = (i: number): number => rank[sym[i]!]!;
    let sorted = true;
    for (let i = 1; i < size && sorted; i++) sorted = key(i - 1) < key(i) || (key(i - 1) === key(i) && bk[i - 1]! < bk[i]!);
    if (sorted) {
      const order = new Int32Array(size);
      for (let i = 0; i < size; i++) order[i] = i;
      return order;
    }
    const order = this.sortedOrder(rank);
    const out = new Int32Array(size);
    let m = 0;
    for (const i of order) {
      if (m > 0 && sym[out[m - 1]!] === sym[i] && bk[out[m - 1]!] === bk[i]) this.combineInto(out[m - 1]!, i);
      else out[m++] = i;
    }
    return out.subarray(0, m);
  }

  /**
   * Row indexes in (symbol rank, bucket) order, without a comparator call per
   * comparison (the cold rows of a pushed-down GROUP BY arrive in hash order,
   * hundreds of thousands of them): a counting sort on (symbol rank, bucket
   * rank) when the cells are few against the rows, else one number per row,
   * ((symbol rank x buckets) + bucket rank) x rows + row, in a typed sort (a
   * comparator only when that number could pass 2^53).
   */
  private sortedOrder(rank: Int32Array): Int32Array {
    const size = this.size;
    const bk = this.bucket;
    const sym = this.sym;
    const seen = new Map<number, number>();
    for (let i = 0; i < size; i++) if (!seen.has(bk[i]!)) seen.set(bk[i]!, 0);
    const distinct = Float64Array.from(seen.keys()).sort();
    const nb = distinct.length;
    distinct.forEach((b, r) => seen.set(b, r));
    const cell = new Int32Array(size);
    for (let i = 0; i < size; i++) cell[i] = rank[sym[i]!]! * nb + seen.get(bk[i]!)!;
    const cells = rank.length * nb;
    const order = new Int32Array(size);
    if (cells <= 4 * size + 1024) {
      const at = new Int32Array(cells + 1);
      for (let i = 0; i < size; i++) at[cell[i]! + 1]!++;
      for (let c = 0; c < cells; c++) at[c + 1]! += at[c]!;
      for (let i = 0; i < size; i++) order[at[cell[i]!]!++] = i;
      return order;
    }
    for (let i = 0; i < size; i++) order[i] = i;
    if (cells * size > Number.MAX_SAFE_INTEGER) return order.sort((x, y) => cell[x]! - cell[y]! || x - y);
    const keys = new Float64Array(size);
    for (let i = 0; i < size; i++) keys[i] = cell[i]! * size + i;
    keys.sort();
    for (let i = 0; i < size; i++) order[i] = keys[i]! % size;
    return order;
  }

  private combineInto(into: number, i: number): void {
    this.combineFrom(into, this, i);
  }

  /** Combines group row i of `src` (same aggregates) into row `into` of this table (a feed folds each record's partials into its state so). */
  combineFrom(into: number, src: GroupTable, i: number): void {
    if (src.n[i] === 0) return;
    const empty = this.n[into] === 0;
    this.n[into]! += src.n[i]!;
    this.aggs.forEach((a, k) => {
      const c = (f: number): Float64Array => this.col(k, f);
      const d = (f: number): Float64Array => src.col(k, f);
      switch (a.fn) {
        case "sum":
        case "avg":
          c(0)[into]! += d(0)[i]!;
          break;
        case "min":
          if (empty || d(0)[i]! < c(0)[into]!) c(0)[into] = d(0)[i]!;
          break;
        case "max":
          if (empty || d(0)[i]! > c(0)[into]!) c(0)[into] = d(0)[i]!;
          break;
        case "vwap":
          c(0)[into]! += d(0)[i]!;
          c(1)[into]! += d(1)[i]!;
          break;
        case "first":
        case "last": {
          const less = a.fn === "first" ? keyLess(d(0)[i]!, d(1)[i]!, d(2)[i]!, c(0)[into]!, c(1)[into]!, c(2)[into]!) : keyLess(c(0)[into]!, c(1)[into]!, c(2)[into]!, d(0)[i]!, d(1)[i]!, d(2)[i]!);
          if (empty || less) for (let f = 0; f < 4; f++) c(f)[into] = d(f)[i]!;
          break;
        }
        default:
          break;
      }
    });
  }

  /** Final value of aggregate k for group row i (NaN = null). */
  value(k: number, i: number): number {
    const n = this.n[i]!;
    const fn = this.aggs[k]!.fn;
    if (fn === "count") return n;
    if (fn === "udf") return this.udf?.(k, i) ?? Number.NaN;
    if (fn === "vwap") {
      const w = this.col(k, 1)[i]!;
      return w !== 0 ? this.col(k, 0)[i]! / w : Number.NaN;
    }
    if (n === 0) return Number.NaN;
    switch (fn) {
      case "avg":
        return this.col(k, 0)[i]! / n;
      case "first":
      case "last":
        return this.col(k, 3)[i]!;
      case "sum":
      case "min":
      case "max":
        return this.col(k, 0)[i]!;
      default:
        return Number.NaN;
    }
  }
}

/** Partials of rows [lo, hi) of each series, one group row per (symbol, bucket) run. */
export function hotPartials(into: GroupTable, spec: TableSpec, series: readonly SymbolSeries[], bucket: number | undefined, bySymbol: boolean): void {
  const aggs = into.aggs;
  const index = (name: string | undefined): number => (name === undefined ? -1 : spec.columns.findIndex((c) => c.name === name));
  const colIdx = aggs.map((a) => ({ x: index(a.column), w: index(a.weight) }));
  for (const s of series) {
    if (s.hi <= s.lo) continue;
    into.reserve(s.hi - s.lo);
    const xs = colIdx.map((c) => (c.x >= 0 ? s.values[c.x]! : undefined));
    const ws = colIdx.map((c) => (c.w >= 0 ? s.values[c.w]! : undefined));
    const first = into.size;
    const symId = into.symbolId(bySymbol ? s.symbol : "");
    let i = s.lo;
    // Pass 1: the runs (group rows) of this series.
    const ends = new Int32Array(s.hi - s.lo);
    let runs = 0;
    while (i < s.hi) {
      const bk = bucket === undefined ? 0 : bucketStart(s.ts[i]!, bucket);
      const end = bucket === undefined ? s.hi : lowerBound(s.ts, bk + bucket, i, s.hi);
      into.add(symId, bk, end - i);
      ends[runs++] = end;
      i = end;
    }
    // Pass 2: per aggregate, one tight loop over the runs (small functions: V8 optimises them whole).
    for (let k = 0; k < aggs.length; k++) {
      const fn = aggs[k]!.fn;
      const x = xs[k]!;
      switch (fn) {
        case "sum":
        case "avg":
          runSums(x, s.lo, ends, runs, into.col(k, 0), first);
          break;
        case "min":
          runMin(x, s.lo, ends, runs, into.col(k, 0), first);
          break;
        case "max":
          runMax(x, s.lo, ends, runs, into.col(k, 0), first);
          break;
        case "vwap":
          runVwap(x, ws[k]!, s.lo, ends, runs, into.col(k, 0), into.col(k, 1), first);
          break;
        case "first":
        case "last":
          runEdge(s, x, fn === "first", ends, runs, [into.col(k, 0), into.col(k, 1), into.col(k, 2), into.col(k, 3)], first);
          break;
        default:
          break;
      }
    }
  }
}

type Values = SymbolSeries["values"][number] & object;

function runSums(x: Values, lo: number, ends: Int32Array, runs: number, out: Float64Array, first: number): void {
  let from = lo;
  for (let r = 0; r < runs; r++) {
    const end = ends[r]!;
    let v = 0;
    for (let j = from; j < end; j++) v += x[j]!;
    out[first + r] = v;
    from = end;
  }
}

function runMin(x: Values, lo: number, ends: Int32Array, runs: number, out: Float64Array, first: number): void {
  let from = lo;
  for (let r = 0; r < runs; r++) {
    const end = ends[r]!;
    let v = x[from]!;
    for (let j = from + 1; j < end; j++) if (x[j]! < v) v = x[j]!;
    out[first + r] = v;
    from = end;
  }
}

function runMax(x: Values, lo: number, ends: Int32Array, runs: number, out: Float64Array, first: number): void {
  let from = lo;
  for (let r = 0; r < runs; r++) {
    const end = ends[r]!;
    let v = x[from]!;
    for (let j = from + 1; j < end; j++) if (x[j]! > v) v = x[j]!;
    out[first + r] = v;
    from = end;
  }
}

function runVwap(x: Values, w: Values, lo: number, ends: Int32Array, runs: number, pwOut: Float64Array, wOut: Float64Array, first: number): void {
  let from = lo;
  for (let r = 0; r < runs; r++) {
    const end = ends[r]!;
    let pw = 0;
    let sw = 0;
    for (let j = from; j < end; j++) {
      pw += x[j]! * w[j]!;
      sw += w[j]!;
    }
    pwOut[first + r] = pw;
    wOut[first + r] = sw;
    from = end;
  }
}

function runEdge(s: SymbolSeries, x: Values, isFirst: boolean, ends: Int32Array, runs: number, out: readonly Float64Array[], first: number): void {
  const [t, l, rr, v] = out as [Float64Array, Float64Array, Float64Array, Float64Array];
  let from = s.lo;
  for (let r = 0; r < runs; r++) {
    const end = ends[r]!;
    const j = isFirst ? from : end - 1;
    t[first + r] = s.ts[j]!;
    l[first + r] = s.lsn[j]!;
    rr[first + r] = s.row[j]!;
    v[first + r] = x[j]!;
    from = end;
  }
}

/** LSNs below this pack with the row into the low 64 bits of a first/last key (see packedKeys). */
const PACK_LSN_LIMIT = 2 ** 44;

/**
 * Whether the cold slices' first/last keys (ts, lsn, row) pack exactly into one
 * Decimal128, ts * 2^64 + lsn * 2^20 + row: every cold row's LSN is <= its
 * shard's P, so P < 2^44 bounds them; a row index is < 2^20 (a record holds at
 * most maxBatchRows <= 1,000,000 rows). ClickHouse 18.16 takes min/argMin of a
 * tuple through its generic value path: on the bench's 1-minute bars of 5 M
 * cold rows that statement took ~1,200 ms, with the packed key ~800 (the plain
 * argMin(price, ts) of a baseline that ignores ties ~500).
 */
export const packedKeys = (slices: readonly ColdSlice[]): boolean => slices.every((s) => s.persistedLsn < PACK_LSN_LIMIT);

/**
 * The pushed-down GROUP BY of the shards' cold slices, one statement for all of
 * them (ClickHouse 18.16 and later): partials of shards that share a group are
 * combined by the server. RowBinary, the symbol then Float64s, except that
 * with `packed` (packedKeys) a first/last key is one Decimal128, as
 * `addColdPartials` reads it.
 */
export function coldPartialsSql(slices: readonly ColdSlice[], t0: number, t1: number, aggs: readonly Aggregate[], bucket: number | undefined, bySymbol: boolean, packed = false): string {
  const spec = slices[0]!.spec;
  const ts = quoteIdent(spec.timeColumn);
  const dec = (x: string): string => `toDecimal128(${x}, 0)`;
  const key = packed
    ? `(${dec(ts)} * ${dec("4294967296")} * ${dec("4294967296")} + ${dec(quoteIdent("_lsn"))} * ${dec("1048576")} + ${dec(quoteIdent("_row"))})`
    : `tuple(${ts}, ${quoteIdent("_lsn")}, ${quoteIdent("_row")})`;
  const f64 = (x: string): string => `toFloat64(${x})`;
  const sym = bySymbol ? quoteIdent(spec.symbolColumn) : "''";
  const bk = bucket === undefined ? "" : `intDiv(${ts}, ${bucket}) * ${bucket}`;
  const exprs: string[] = [sym, bk === "" ? "toFloat64(0)" : f64(bk), f64("count()")];
  for (const a of aggs) {
    const x = a.column === undefined ? "" : f64(quoteIdent(a.column));
    switch (a.fn) {
      case "sum":
      case "avg":
        exprs.push(`sum(${x})`);
        break;
      case "min":
      case "max":
        exprs.push(`${a.fn}(${x})`);
        break;
      case "vwap": {
        const w = f64(quoteIdent(a.weight!));
        exprs.push(`sum(${x} * ${w})`, `sum(${w})`);
        break;
      }
      case "first":
      case "last": {
        const [arg, m] = a.fn === "first" ? ["argMin", "min"] : ["argMax", "max"];
        if (packed) exprs.push(`${m}(${key})`, `${arg}(${x}, ${key})`);
        else exprs.push(...[1, 2, 3].map((i) => f64(`tupleElement(${m}(${key}), ${i})`)), `${arg}(${x}, ${key})`);
        break;
      }
      default:
        break;
    }
  }
  // 18.16 does not accept GROUP BY ordinals: repeat the expressions.
  const groupExprs = [bySymbol ? sym : "", bk].filter((g) => g !== "");
  return `SELECT ${exprs.join(", ")} FROM ${qualifiedTable(slices[0]!.tenant, spec.name)} WHERE ${seamWhereAll(slices, t0, t1)}${groupExprs.length > 0 ? ` GROUP BY ${groupExprs.join(", ")}` : ""} FORMAT RowBinary`;
}

const sameBytes = (a: Uint8Array, b: Uint8Array, at: number, len: number): boolean => {
  if (a.length !== len) return false;
  for (let i = 0; i < len; i++) if (a[i] !== b[at + i]) return false;
  return true;
};

/** Adds the rows of `coldPartialsSql`'s result (RowBinary: a String, then Float64s; `packed` as it was made with) to `into`. */
export function addColdPartials(into: GroupTable, bytes: Uint8Array, packed = false): void {
  const width = into.aggs.reduce((n, a) => n + FIELDS[a.fn].length, 0);
  // Field columns where a packed first/last key starts: 16 bytes for its ts, lsn and row.
  const keyAt = new Uint8Array(width);
  let fieldBytes = 8 * width;
  if (packed) {
    let c = 0;
    for (const a of into.aggs) {
      if (a.fn === "first" || a.fn === "last") {
        keyAt[c] = 1;
        fieldBytes -= 8;
      }
      c += FIELDS[a.fn].length;
    }
  }
  const end = bytes.byteLength;
  // Room for as many rows as the bytes can hold (each has a length byte, the bucket and count, the fields): the columns stay put.
  into.reserve(Math.floor(end / (1 + 16 + fieldBytes)));
  const cols = into.aggs.flatMap((a, k) => FIELDS[a.fn].map((_, f) => into.col(k, f)));
  const view = new DataView(bytes.buffer, bytes.byteOffset, end);
  const text = new TextDecoder("utf-8", { fatal: true });
  // Symbol ids by a hash of their bytes, checked against the bytes: no string is made per row.
  const byHash = new Map<number, number>();
  const bytesOf: Uint8Array[] = [];
  const bad = (at: number, detail: string): Error => new Error(`pushed-down partials: ${detail} (byte ${at} of ${end})`);
  let pos = 0;
  while (pos < end) {
    // The symbol: a LEB128 length, then its UTF-8 bytes.
    const [len, at] = readStringLength(bytes, pos, bad);
    if (at + len + 16 + fieldBytes > end) throw bad(end, "the result ends inside a row");
    pos = at + len;
    const bucket = view.getFloat64(pos, true);
    const n = view.getFloat64(pos + 8, true);
    pos += 16;
    if (n === 0) {
      pos += fieldBytes;
      continue;
    }
    let h = 0x811c9dc5 ^ len;
    for (let i = 0; i < len; i++) h = Math.imul(h ^ bytes[at + i]!, 0x01000193);
    let symId = byHash.get(h);
    if (symId === undefined || !sameBytes(bytesOf[symId]!, bytes, at, len)) {
      const id = into.symbolId(text.decode(bytes.subarray(at, at + len)));
      // A hash two names share keeps the first; the other is decoded every time (correct, only slower).
      if (symId === undefined) {
        byHash.set(h, id);
        bytesOf[id] = bytes.slice(at, at + len);
      }
      symId = id;
    }
    const g = into.add(symId, bucket, n);
    for (let c = 0; c < width; ) {
      if (keyAt[c] === 1) {
        // ts * 2^64 + lsn * 2^20 + row, little-endian: row in bits 0-19, lsn in 20-63, ts above.
        const lo = view.getUint32(pos, true);
        cols[c]![g] = view.getInt32(pos + 12, true) * 2 ** 32 + view.getUint32(pos + 8, true);
        cols[c + 1]![g] = view.getUint32(pos + 4, true) * 4096 + (lo >>> 20);
        cols[c + 2]![g] = lo & 0xfffff;
        pos += 16;
        c += 3;
      } else {
        cols[c]![g] = view.getFloat64(pos, true);
        pos += 8;
        c++;
      }
    }
  }
}
