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

function gatherTs(series: readonly SymbolSeries[], refs: RowRefs): Float64Array {
  const out = new Float64Array(refs.n);
  for (let k = 0; k < refs.n; k++) out[k] = series[refs.sym[k]!]!.ts[refs.idx[k]!]!;
  return out;
}

function gatherValues(spec: TableSpec, series: readonly SymbolSeries[], refs: RowRefs, j: number): ValueArray {
  const out = allocValueArray(spec.columns[j]!.type, refs.n);
  for (let k = 0; k < refs.n; k++) out[k] = series[refs.sym[k]!]!.values[j]![refs.idx[k]!]!;
  return out;
}

/** Per-series output arrays (computed per symbol over rows [lo, hi)) gathered in `refs` order. */
export function gatherPerSeries(perSeries: readonly Float64Array[], series: readonly SymbolSeries[], refs: RowRefs): Float64Array {
  const out = new Float64Array(refs.n);
  for (let k = 0; k < refs.n; k++) out[k] = perSeries[refs.sym[k]!]![refs.idx[k]! - series[refs.sym[k]!]!.lo]!;
  return out;
}
export function gatherValid(perSeries: readonly Uint8Array[], series: readonly SymbolSeries[], refs: RowRefs): Uint8Array {
  const out = new Uint8Array(refs.n);
  for (let k = 0; k < refs.n; k++) out[k] = perSeries[refs.sym[k]!]![refs.idx[k]! - series[refs.sym[k]!]!.lo]!;
  return out;
}

export function rowsTable(fields: readonly OutField[], spec: TableSpec, cols: readonly number[], series: readonly SymbolSeries[], refs: RowRefs, extra: OutColumn["data"][], extraValid: (Uint8Array | undefined)[]): OutTable {
  const columns: OutColumn[] = [
    { field: fields[0]!, data: gatherSym(refs) },
    { field: fields[1]!, data: gatherTs(series, refs) },
    ...cols.map((j, i): OutColumn => ({ field: fields[2 + i]!, data: gatherValues(spec, series, refs, j) })),
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
