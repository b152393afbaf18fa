// Planning INSERTs for a flush, pure: the rows to send (whole WAL records, or
// the missing rows of partly landed ones) are split by UTC day (the table's
// partition), sorted by (symbol, ts, lsn, row), and cut into INSERTs of at most
// `maxInsertRows`. Each planned INSERT is then one part on the server: atomic
// when it succeeds, a prefix of its body when it is interrupted.
import type { TableSpec } from "../../protocols/tablespec.js";
import { allocValueArray } from "../codec/tickbatch.js";
import type { TickBatch, ValueArray } from "../codec/tickbatch.js";
import { encodeRowBinarySegments, partitionDayOf } from "../clickhouse/index.js";
import { compareSymbols } from "../hotset/index.js";

/** Rows of one WAL record to send. */
export interface PlanRecord {
  readonly lsn: number;
  readonly batch: TickBatch;
  /** Row indices (ascending) to send; all rows when absent. */
  readonly rows?: ArrayLike<number>;
}

/** One INSERT: rows of one partition in (symbol, ts, lsn, row) order. */
export interface InsertPlan {
  /** UTC day number (partitionDayOf) of every row. */
  readonly day: number;
  readonly rows: number;
  readonly lsnMin: number;
  readonly lsnMax: number;
  readonly tsMinMicros: number;
  readonly tsMaxMicros: number;
  /** The rows; `symbols` may list symbols no row uses. */
  readonly batch: TickBatch;
  /** Per row: WAL LSN and row index in its record. */
  readonly lsn: Float64Array;
  readonly row: Uint32Array;
}

export interface PlanOptions {
  readonly maxInsertRows: number;
}

/**
 * Plans the INSERTs for `records`. Records must all be of `spec`'s table. The
 * plan is deterministic: the same records give the same INSERTs, day by day
 * in ascending order.
 */
export function planInserts(spec: TableSpec, records: readonly PlanRecord[], opts: PlanOptions): InsertPlan[] {
  if (!(Number.isSafeInteger(opts.maxInsertRows) && opts.maxInsertRows >= 1)) {
    throw new RangeError(`planInserts: maxInsertRows must be a positive integer, got ${opts.maxInsertRows}`);
  }
  // Global symbol ids, ranked in the order ClickHouse sorts strings (UTF-8 bytes).
  const ids = new Map<string, number>();
  const names: string[] = [];
  const localToGlobal: Int32Array[] = [];
  for (const r of records) {
    const syms = r.batch.symbols;
    const map = new Int32Array(syms.length);
    for (let i = 0; i < syms.length; i++) {
      const s = syms[i]!;
      let id = ids.get(s);
      if (id === undefined) {
        id = names.length;
        ids.set(s, id);
        names.push(s);
      }
      map[i] = id;
    }
    localToGlobal.push(map);
  }
  const order = names.map((_, i) => i).sort((a, b) => compareSymbols(names[a]!, names[b]!));
  const rank = new Int32Array(names.length);
  order.forEach((id, r) => (rank[id] = r));
  const symbols = order.map((id) => names[id]!);
  const nsym = symbols.length;

  // Every row to send, flattened in (lsn, row) order: one tight copy per column.
  let total = 0;
  for (const r of records) total += r.rows === undefined ? r.batch.rows : r.rows.length;
  const flat = {
    sym: new Uint32Array(total),
    ts: new Float64Array(total),
    lsn: new Float64Array(total),
    row: new Uint32Array(total),
    values: spec.columns.map((c) => allocValueArray(c.type, total)),
  };
  const dayIdx = new Uint32Array(total);
  const days: number[] = [];
  const dayIndex = new Map<number, number>();
  // Plain loops with local array references: this runs once per row of every flush.
  const fSym = flat.sym;
  const fTs = flat.ts;
  const fRow = flat.row;
  let k = 0;
  let lastDay = NaN;
  let lastIdx = 0;
  for (let ri = 0; ri < records.length; ri++) {
    const r = records[ri]!;
    const b = r.batch;
    const idx = b.symbolIndex;
    const n = r.rows === undefined ? b.rows : r.rows.length;
    const g2l = localToGlobal[ri]!;
    const symRank = new Int32Array(g2l.length);
    for (let i = 0; i < g2l.length; i++) symRank[i] = rank[g2l[i]!]!;
    const from = k;
    if (r.rows === undefined) {
      fTs.set(b.ts.subarray(0, n), from);
      for (let c = 0; c < b.values.length; c++) flat.values[c]!.set(b.values[c]!.subarray(0, n) as never, from);
      for (let j = 0; j < n; j++) {
        fSym[from + j] = symRank[idx[j]!]!;
        fRow[from + j] = j;
      }
    } else {
      const rows = r.rows;
      const ts = b.ts;
      for (let j = 0; j < n; j++) {
        const src = rows[j]!;
        fSym[from + j] = symRank[idx[src]!]!;
        fRow[from + j] = src;
        fTs[from + j] = ts[src]!;
      }
      for (let c = 0; c < b.values.length; c++) {
        const col = b.values[c]!;
        const out = flat.values[c]!;
        for (let j = 0; j < n; j++) out[from + j] = col[rows[j]!]!;
      }
    }
    flat.lsn.fill(r.lsn, from, from + n);
    k = from + n;
    // UTC day of each row; runs of rows share one, so remember the last.
    for (let i = from; i < k; i++) {
      const day = partitionDayOf(fTs[i]!);
      if (day !== lastDay) {
        let d = dayIndex.get(day);
        if (d === undefined) {
          d = days.length;
          dayIndex.set(day, d);
          days.push(day);
        }
        lastDay = day;
        lastIdx = d;
      }
      dayIdx[i] = lastIdx;
    }
  }
  // Days ascending: remap day indices to their sorted position.
  const dayOrder = days.map((_, i) => i).sort((a, b) => days[a]! - days[b]!);
  const dayRank = new Uint32Array(days.length);
  dayOrder.forEach((d, i) => (dayRank[d] = i));

  // Counting sort by (day, symbol rank); stable, so each group stays in (lsn, row) order.
  const groups = days.length * nsym;
  const start = new Uint32Array(groups + 1);
  const keys = new Uint32Array(total);
  for (let i = 0; i < total; i++) {
    const key = dayRank[dayIdx[i]!]! * nsym + fSym[i]!;
    keys[i] = key;
    start[key + 1]!++;
  }
  for (let g = 0; g < groups; g++) start[g + 1]! += start[g]!;
  const next = start.slice(0, groups);
  const perm = new Uint32Array(total);
  for (let i = 0; i < total; i++) perm[next[keys[i]!]!++] = i;

  // Within a (day, symbol) group, order by ts; ticks mostly arrive in time order, so check first.
  const ts = flat.ts;
  for (let g = 0; g < groups; g++) {
    const a = start[g]!;
    const b = start[g + 1]!;
    let sorted = true;
    for (let i = a + 1; i < b && sorted; i++) sorted = ts[perm[i - 1]!]! <= ts[perm[i]!]!;
    if (!sorted) {
      // Ties keep (lsn, row) order: flat positions are in that order.
      const slice = Array.from(perm.subarray(a, b));
      slice.sort((x, y) => ts[x]! - ts[y]! || x - y);
      perm.set(slice, a);
    }
  }

  // Cut each day into INSERTs of at most maxInsertRows and gather their columns.
  const plans: InsertPlan[] = [];
  for (let d = 0; d < days.length; d++) {
    const from = start[d * nsym]!;
    const to = start[(d + 1) * nsym]!;
    for (let a = from; a < to; a += opts.maxInsertRows) {
      const b = Math.min(to, a + opts.maxInsertRows);
      plans.push(gather(spec, flat, symbols, perm.subarray(a, b), days[dayOrder[d]!]!));
    }
  }
  return plans;
}

interface FlatRows {
  readonly sym: Uint32Array;
  readonly ts: Float64Array;
  readonly lsn: Float64Array;
  readonly row: Uint32Array;
  readonly values: readonly ValueArray[];
}

function gather(spec: TableSpec, flat: FlatRows, symbols: readonly string[], idx: Uint32Array, day: number): InsertPlan {
  const n = idx.length;
  const symbolIndex = new Uint32Array(n);
  const ts = new Float64Array(n);
  const lsn = new Float64Array(n);
  const row = new Uint32Array(n);
  let lsnMin = Infinity;
  let lsnMax = -Infinity;
  let tsMin = Infinity;
  let tsMax = -Infinity;
  const fSym = flat.sym;
  const fTs = flat.ts;
  const fLsn = flat.lsn;
  const fRow = flat.row;
  for (let i = 0; i < n; i++) {
    const p = idx[i]!;
    symbolIndex[i] = fSym[p]!;
    const t = fTs[p]!;
    ts[i] = t;
    const l = fLsn[p]!;
    lsn[i] = l;
    row[i] = fRow[p]!;
    if (l < lsnMin) lsnMin = l;
    if (l > lsnMax) lsnMax = l;
    if (t < tsMin) tsMin = t;
    if (t > tsMax) tsMax = t;
  }
  const values: ValueArray[] = [];
  for (let j = 0; j < spec.columns.length; j++) {
    const out = allocValueArray(spec.columns[j]!.type, n);
    const src = flat.values[j]!;
    for (let i = 0; i < n; i++) out[i] = src[idx[i]!]!;
    values.push(out);
  }
  return {
    day,
    rows: n,
    lsnMin,
    lsnMax,
    tsMinMicros: tsMin,
    tsMaxMicros: tsMax,
    batch: { rows: n, symbols, symbolIndex, ts, values },
    lsn,
    row,
  };
}

/** The RowBinary body of one planned INSERT (columns in `tableColumns(spec)` order). */
export function encodeInsert(spec: TableSpec, plan: InsertPlan, bucket: number): Buffer {
  return encodeRowBinarySegments(spec, [{ batch: plan.batch, meta: { lsn: plan.lsn, row: plan.row, shard: bucket } }]);
}
