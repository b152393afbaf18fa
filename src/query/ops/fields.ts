// What a query reads and returns: the value columns each table of a query
// loads and the fields of its result, checked against the tables' specs (an
// unknown or unusable column is QueryError INVALID_ARGUMENT). Shared by the operators.
import type { Aggregate, Query } from "../../../protocols/query.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { QueryError } from "../../../protocols/errors.js";
import type { OutField } from "../output.js";

/** A query that names something that does not exist or cannot be combined. */
export const planError = (message: string): QueryError => new QueryError("INVALID_ARGUMENT", message);

export function columnIndex(spec: TableSpec, name: string, field: string): number {
  const j = spec.columns.findIndex((c) => c.name === name);
  if (j < 0) throw planError(`query field ${field}: table ${spec.name} has no column "${name}" (its columns: ${spec.columns.map((c) => c.name).join(", ")})`);
  return j;
}

/** Indices of the selected value columns (all when `columns` is undefined). */
export function selectedColumns(spec: TableSpec, columns: readonly string[] | undefined, field = "columns"): number[] {
  return columns === undefined ? spec.columns.map((_, j) => j) : columns.map((c) => columnIndex(spec, c, field));
}

export const numeric = (spec: TableSpec, j: number, field: string): void => {
  if (spec.columns[j]!.type === "bool") throw planError(`query field ${field}: column ${spec.columns[j]!.name} is bool; aggregate a numeric column`);
};

export function aggColumns(spec: TableSpec, q: { aggregates: readonly Aggregate[] }, field = "aggregates"): void {
  q.aggregates.forEach((a, i) => {
    if (a.column !== undefined) numeric(spec, columnIndex(spec, a.column, `${field}[${i}].column`), `${field}[${i}].column`);
    if (a.weight !== undefined) numeric(spec, columnIndex(spec, a.weight, `${field}[${i}].weight`), `${field}[${i}].weight`);
    a.udf?.args.forEach((c, k) => numeric(spec, columnIndex(spec, c, `${field}[${i}].args[${k}]`), `${field}[${i}].args[${k}]`));
  });
}

/** Marks the columns aggregates read (value, weight, user-defined function arguments). */
function markAggs(spec: TableSpec, arr: boolean[], aggs: readonly Aggregate[]): void {
  for (const a of aggs) {
    if (a.column !== undefined) arr[columnIndex(spec, a.column, "aggregates.column")] = true;
    if (a.weight !== undefined) arr[columnIndex(spec, a.weight, "aggregates.weight")] = true;
    for (const c of a.udf?.args ?? []) arr[columnIndex(spec, c, "aggregates.args")] = true;
  }
}

export const f = (name: string, kind: OutField["kind"], nullable = false): OutField => ({ name, kind, nullable });

export function valueFields(spec: TableSpec, cols: readonly number[], nullable = false, rename?: (n: string) => string): OutField[] {
  return cols.map((j) => {
    const c = spec.columns[j]!;
    return f(rename ? rename(c.name) : c.name, c.type, nullable);
  });
}

/** Right-side column names: as in the right table, prefixed with the right table's name when they clash. */
export function rightName(left: TableSpec, right: TableSpec, name: string): string {
  const taken = new Set([left.symbolColumn, left.timeColumn, ...left.columns.map((c) => c.name)]);
  return taken.has(name) ? `${right.name}_${name}` : name;
}

export const BAR_FIELDS = ["open", "high", "low", "close"];

/** Value-column indices each table of a query reads (for loading). */
export function neededColumns(q: Query, left: TableSpec, right: TableSpec | undefined): { left: boolean[]; right: boolean[] } {
  const l = new Array<boolean>(left.columns.length).fill(false);
  const r = new Array<boolean>(right?.columns.length ?? 0).fill(false);
  const mark = (arr: boolean[], js: readonly number[]): void => js.forEach((j) => (arr[j] = true));
  switch (q.op) {
    case "range":
      mark(l, selectedColumns(left, q.columns));
      markAggs(left, l, q.derived ?? []);
      break;
    case "lastBy":
    case "firstBy":
      mark(l, selectedColumns(left, q.columns));
      break;
    case "asof":
      mark(l, selectedColumns(left, q.columns));
      mark(r, selectedColumns(right!, q.right.columns, "right.columns"));
      break;
    case "windowJoin":
      mark(l, selectedColumns(left, q.columns));
      markAggs(right!, r, q.aggregates);
      break;
    case "rolling":
    case "groupBy":
      if (q.op === "rolling") mark(l, selectedColumns(left, q.columns));
      markAggs(left, l, q.aggregates);
      break;
    case "bars":
      l[columnIndex(left, q.price, "price")] = true;
      l[columnIndex(left, q.size, "size")] = true;
      markAggs(left, l, q.aggregates ?? []);
      break;
  }
  return { left: l, right: r };
}

/** The result's fields; throws QueryError INVALID_ARGUMENT for unknown or unusable columns. */
export function fieldsOf(q: Query, left: TableSpec, right: TableSpec | undefined): OutField[] {
  const head = [f(left.symbolColumn, "sym"), f(left.timeColumn, "ts")];
  switch (q.op) {
    case "range": {
      const derived = q.derived ?? [];
      aggColumns(left, { aggregates: derived }, "derived");
      const taken = new Set([left.symbolColumn, left.timeColumn, ...selectedColumns(left, q.columns).map((j) => left.columns[j]!.name)]);
      derived.forEach((a, i) => {
        if (taken.has(a.as)) throw planError(`query field derived[${i}].as: "${a.as}" is already a column of the result; give the derived column another "as" name`);
      });
      return [...head, ...valueFields(left, selectedColumns(left, q.columns)), ...derived.map((a) => f(a.as, "f64", true))];
    }
    case "lastBy":
    case "firstBy":
      return [...head, ...valueFields(left, selectedColumns(left, q.columns))];
    case "asof": {
      const rc = selectedColumns(right!, q.right.columns, "right.columns");
      return [...head, ...valueFields(left, selectedColumns(left, q.columns)), f(rightName(left, right!, `${right!.timeColumn}`), "ts", true), ...valueFields(right!, rc, true, (n) => rightName(left, right!, n))];
    }
    case "windowJoin":
      aggColumns(right!, q);
      return [...head, ...valueFields(left, selectedColumns(left, q.columns)), ...q.aggregates.map((a) => f(a.as, a.fn === "count" ? "i64" : "f64", a.fn !== "count"))];
    case "rolling":
      aggColumns(left, q);
      return [...head, ...valueFields(left, selectedColumns(left, q.columns)), ...q.aggregates.map((a) => f(a.as, a.fn === "count" ? "i64" : "f64", a.fn !== "count" && a.fn !== "ema"))];
    case "bars": {
      numeric(left, columnIndex(left, q.price, "price"), "price");
      numeric(left, columnIndex(left, q.size, "size"), "size");
      const nullOhlc = q.fill === "null" || q.fill === "previous";
      const extra = q.aggregates ?? [];
      aggColumns(left, { aggregates: extra });
      return [...head, ...BAR_FIELDS.map((n) => f(n, "f64", nullOhlc)), f("volume", "f64"), f("count", "i64"), f("vwap", "f64", true), ...extra.map((a) => f(a.as, a.fn === "count" ? "i64" : "f64", true))];
    }
    case "groupBy": {
      aggColumns(left, q);
      const keys: OutField[] = [];
      if (q.bySymbol) keys.push(f(left.symbolColumn, "sym"));
      if (q.bucketMicros !== undefined) keys.push(f(left.timeColumn, "ts"));
      return [...keys, ...q.aggregates.map((a) => f(a.as, a.fn === "count" ? "i64" : "f64", a.fn !== "count"))];
    }
  }
}
