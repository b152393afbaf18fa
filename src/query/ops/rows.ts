// Row-shaped results shared by the operators: gathering the chosen rows of
// stitched per-symbol series (in output order, see ../order.ts) into an
// OutTable, and the aggregate inputs of a series for the window operators.
import type { TableSpec } from "../../../protocols/tablespec.js";
import { allocValueArray } from "../../codec/tickbatch.js";
import type { ValueArray } from "../../codec/tickbatch.js";
import type { RowRefs } from "../order.js";
import type { OutColumn, OutField, OutTable } from "../output.js";
import type { SymbolSeries } from "../series.js";
import type { AggInput } from "../window.js";
import { columnIndex } from "./fields.js";

function gatherSym(refs: RowRefs): OutColumn["data"] {
  return refs.sym.slice(0, refs.n);
}

/**
 * Where each row i of each series goes in the output (`pos[start[si] + i]`,
 * -1: not in it; refs may point at look-behind rows outside [lo, hi)), when the
 * output holds most rows: filling the output series by series reads each
 * series' columns in order, where gathering in time order jumps between
 * symbols on every row. Undefined for an output of a few rows out of many (a
 * limit), which gathers.
 */
export interface Placement {
  readonly start: Int32Array;
  readonly pos: Int32Array;
}

export function placeRows(series: readonly SymbolSeries[], refs: RowRefs): Placement | undefined {
  const start = new Int32Array(series.length + 1);
  for (let si = 0; si < series.length; si++) start[si + 1] = start[si]! + series[si]!.n;
  const total = start[series.length]!;
  if (refs.n * 4 < total) return undefined;
  const pos = new Int32Array(total).fill(-1);
  for (let k = 0; k < refs.n; k++) pos[start[refs.sym[k]!]! + refs.idx[k]!] = k;
  return { start, pos };
}

/** Column `col(s)` of every series at the output's rows. */
function gather<T extends ValueArray>(out: T, series: readonly SymbolSeries[], refs: RowRefs, at: Placement | undefined, col: (s: SymbolSeries) => ValueArray): T {
  const runs = refs.runs;
  if (runs !== undefined) {
    // One copy per series (the column of a series is of the output's type).
    for (let si = 0; si < series.length; si++) if (runs.to[si]! > runs.from[si]!) out.set(col(series[si]!).subarray(runs.from[si]!, runs.to[si]!) as never, runs.at[si]!);
    return out;
  }
  if (at === undefined) {
    for (let k = 0; k < refs.n; k++) {
      const s = series[refs.sym[k]!]!;
      out[k] = col(s)[refs.idx[k]!]!;
    }
    return out;
  }
  for (let si = 0; si < series.length; si++) {
    const s = series[si]!;
    const src = col(s);
    const base = at.start[si]!;
    for (let i = 0; i < s.n; i++) {
      const k = at.pos[base + i]!;
      if (k >= 0) out[k] = src[i]!;
    }
  }
  return out;
}

/** Per-series output arrays (computed per symbol over rows [lo, hi)) gathered in `refs` order. */
export function gatherPerSeries(perSeries: readonly Float64Array[], series: readonly SymbolSeries[], refs: RowRefs): Float64Array {
  return gatherPer(new Float64Array(refs.n), perSeries, series, refs);
}
export function gatherValid(perSeries: readonly Uint8Array[], series: readonly SymbolSeries[], refs: RowRefs): Uint8Array {
  return gatherPer(new Uint8Array(refs.n), perSeries, series, refs);
}

function gatherPer<T extends Float64Array | Uint8Array>(out: T, perSeries: readonly T[], series: readonly SymbolSeries[], refs: RowRefs): T {
  const runs = refs.runs;
  if (runs !== undefined) {
    for (let si = 0; si < series.length; si++) {
      const lo = series[si]!.lo;
      if (runs.to[si]! > runs.from[si]!) out.set(perSeries[si]!.subarray(runs.from[si]! - lo, runs.to[si]! - lo) as never, runs.at[si]!);
    }
    return out;
  }
  for (let k = 0; k < refs.n; k++) out[k] = perSeries[refs.sym[k]!]![refs.idx[k]! - series[refs.sym[k]!]!.lo]!;
  return out;
}

/** `at`: the rows' placement (placeRows), when the caller made it already (unused with refs.runs: runs are copied whole). */
export function rowsTable(fields: readonly OutField[], spec: TableSpec, cols: readonly number[], series: readonly SymbolSeries[], refs: RowRefs, extra: OutColumn["data"][], extraValid: (Uint8Array | undefined)[], at = refs.runs === undefined ? placeRows(series, refs) : undefined): OutTable {
  const columns: OutColumn[] = [
    { field: fields[0]!, data: gatherSym(refs) },
    { field: fields[1]!, data: gather(new Float64Array(refs.n), series, refs, at, (s) => s.ts) },
    ...cols.map((j, i): OutColumn => ({ field: fields[2 + i]!, data: gather(allocValueArray(spec.columns[j]!.type, refs.n), series, refs, at, (s) => s.values[j]!) })),
    ...extra.map((data, i): OutColumn => {
      const valid = extraValid[i];
      return valid === undefined ? { field: fields[2 + cols.length + i]!, data } : { field: fields[2 + cols.length + i]!, data, valid };
    }),
  ];
  return { rows: refs.n, symbols: series.map((s) => s.symbol), columns };
}

export function aggInputs(spec: TableSpec, s: SymbolSeries | undefined, aggs: readonly { column: string | undefined; weight: string | undefined }[]): AggInput[] {
  return aggs.map((a) => ({
    agg: a as AggInput["agg"],
    x: a.column === undefined || s === undefined ? undefined : s.values[columnIndex(spec, a.column, "aggregates.column")],
    w: a.weight === undefined || s === undefined ? undefined : s.values[columnIndex(spec, a.weight, "aggregates.weight")],
  }));
}

/** Converts per-series time-ordered outputs into a map by symbol (join right sides). */
export function bySymbolMap(series: readonly SymbolSeries[]): Map<string, SymbolSeries> {
  return new Map(series.map((s) => [s.symbol, s]));
}
