// The query description, version 1: the JSON form people and pxctl write,
// validated with effect Schema, normalised into `Query` (durations in
// microseconds, defaults filled in). `protocols/proto/proxist/v1/query.proto`
// is the typed wire form; `queryToProto` / `queryFromProto` convert.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Result, Schema } from "effect";
import {
  AggFn as AggFnProto,
  AsofOpSchema,
  BarsOpSchema,
  ByOpSchema,
  GroupByOpSchema,
  QuerySchema,
  RangeOpSchema,
  RollingOpSchema,
  Sort,
  Consistency,
  WindowJoinOpSchema,
} from "./gen/proxist/v1/query_pb.js";
import type { Query as QueryProto } from "./gen/proxist/v1/query_pb.js";
import { QueryError } from "./errors.js";

export const QUERY_VERSION = 1;
export const QUERY_OPS = ["range", "lastBy", "firstBy", "asof", "windowJoin", "rolling", "bars", "groupBy"] as const;
export type QueryOp = (typeof QUERY_OPS)[number];

export const AGG_FNS = ["count", "sum", "avg", "min", "max", "first", "last", "vwap", "stddev", "ema", "udf"] as const;
export type AggFn = (typeof AGG_FNS)[number];
/** The built-in aggregates: a user-defined function may not take one of these names. */
export const BUILTIN_FNS: readonly string[] = AGG_FNS.filter((f) => f !== "udf");
/** Aggregates each operator accepts ("udf": a user-defined aggregate of the tenant, issue 17). */
export const ROLLING_FNS: readonly AggFn[] = ["sum", "avg", "min", "max", "count", "stddev", "vwap", "ema", "udf"];
export const GROUP_FNS: readonly AggFn[] = ["count", "sum", "avg", "min", "max", "first", "last", "vwap", "udf"];
export const WINDOW_JOIN_FNS: readonly AggFn[] = ["count", "sum", "avg", "min", "max", "first", "last", "vwap"];

/** Largest timestamp a query may name: 2200-01-01 UTC in microseconds. */
export const MAX_QUERY_TS = Date.UTC(2200, 0, 1) * 1000;
export const MICROS_PER_DAY = 86_400_000_000;

/** A query that broke a rule: QueryError INVALID_ARGUMENT; `message` names the field, the rule and the fix. */
const invalid = (message: string): QueryError => new QueryError("INVALID_ARGUMENT", message);

// ---- JSON schema -------------------------------------------------------------

const Name = Schema.String.check(Schema.isPattern(/^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?$/, { message: "must be a table or column name: lowercase letters, digits or _" }));
const Micros = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: MAX_QUERY_TS }, { message: `must be integer microseconds since the Unix epoch, 0..${MAX_QUERY_TS}` }));
/** "250ms", "5s", "1m", "2h", "1d", "10us", or integer microseconds. */
const Duration = Schema.Union([Schema.Int, Schema.String]);
const Symbols = Schema.Array(Schema.String.check(Schema.isMinLength(1))).check(Schema.isMaxLength(100_000));
const Columns = Schema.Array(Schema.String);
const Lsn = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }));

const AggJson = Schema.Struct({
  fn: Schema.Literals(AGG_FNS),
  column: Schema.optionalKey(Schema.String),
  /** vwap: the size column (default "size"). */
  weight: Schema.optionalKey(Schema.String),
  /** ema: smoothing factor in (0, 1]. */
  alpha: Schema.optionalKey(Schema.Number),
  /** udf: the tenant's function (pxctl apply), called with the `args` columns. */
  name: Schema.optionalKey(Name),
  args: Schema.optionalKey(Schema.Array(Schema.String).check(Schema.isMinLength(1), Schema.isMaxLength(16))),
  as: Schema.optionalKey(Name),
});

const Common = {
  op: Schema.optionalKey(Schema.Literals(QUERY_OPS)),
  version: Schema.optionalKey(Schema.Literal(QUERY_VERSION)),
  tenant: Schema.optionalKey(Schema.String),
  table: Name,
  symbols: Schema.optionalKey(Symbols),
  t0: Schema.optionalKey(Micros),
  t1: Schema.optionalKey(Micros),
  columns: Schema.optionalKey(Columns),
  /** One LSN for every table the query reads, or per table: {"trades": 1234}. */
  minLsn: Schema.optionalKey(Schema.Union([Lsn, Schema.Record(Schema.String, Lsn)])),
  /** "complete": refuse (UNAVAILABLE) rather than answer without a shard; "available" (default): answer with notes. */
  consistency: Schema.optionalKey(Schema.Literals(["available", "complete"])),
  /** "time" (merged across symbols in time order) or "symbol" (grouped by symbol). */
  sort: Schema.optionalKey(Schema.Literals(["time", "symbol"])),
};

const RightJson = Schema.Struct({ table: Name, columns: Schema.optionalKey(Columns) });

const RangeJson = Schema.Struct({
  ...Common,
  limit: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1e12 }))),
  order: Schema.optionalKey(Schema.Literals(["asc", "desc"])),
  /** Derived columns: scalar user-defined functions ({fn: "udf", name, args, as}). */
  derived: Schema.optionalKey(Schema.Array(AggJson).check(Schema.isMinLength(1))),
});
const ByJson = Schema.Struct({ ...Common, at: Schema.optionalKey(Micros) });
const AsofJson = Schema.Struct({
  ...Common,
  right: RightJson,
  direction: Schema.optionalKey(Schema.Literals(["backward", "forward", "nearest"])),
  tolerance: Schema.optionalKey(Duration),
});
const WindowJoinJson = Schema.Struct({ ...Common, right: RightJson, before: Duration, after: Duration, aggregates: Schema.Array(AggJson).check(Schema.isMinLength(1)) });
const RollingJson = Schema.Struct({
  ...Common,
  window: Schema.optionalKey(Duration),
  rows: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10_000_000 }))),
  aggregates: Schema.Array(AggJson).check(Schema.isMinLength(1)),
});
const BarsJson = Schema.Struct({
  ...Common,
  bucket: Duration,
  price: Schema.optionalKey(Schema.String),
  size: Schema.optionalKey(Schema.String),
  fill: Schema.optionalKey(Schema.Literals(["none", "null", "previous", "zero"])),
  /** Extra per-bar aggregates after vwap (e.g. a user-defined one). */
  aggregates: Schema.optionalKey(Schema.Array(AggJson).check(Schema.isMinLength(1))),
});
const GroupByJson = Schema.Struct({
  ...Common,
  by: Schema.Array(Schema.Literals(["symbol", "bucket"])),
  bucket: Schema.optionalKey(Duration),
  aggregates: Schema.Array(AggJson).check(Schema.isMinLength(1)),
});

// ---- normalised form ---------------------------------------------------------

export interface Aggregate {
  readonly fn: AggFn;
  /** Value column (not for count). */
  readonly column: string | undefined;
  /** vwap weight (size) column. */
  readonly weight: string | undefined;
  readonly alpha: number | undefined;
  /** fn "udf": the tenant's function name and its argument columns. */
  readonly udf?: { readonly name: string; readonly args: readonly string[] };
  /** Output column name. */
  readonly as: string;
}

interface Base {
  readonly table: string;
  /** undefined = every symbol. */
  readonly symbols: readonly string[] | undefined;
  /** [t0, t1) in microseconds. */
  readonly t0: number;
  readonly t1: number;
  /** Value columns to return (undefined = all). */
  readonly columns: readonly string[] | undefined;
  readonly minLsn: number | undefined;
  /** Read-after-write per table (table name -> LSN), on top of minLsn. */
  readonly minLsnByTable?: Readonly<Record<string, number>>;
  /** "complete": UNAVAILABLE instead of a partial answer. Absent = "available". */
  readonly consistency?: "available" | "complete";
  readonly sort: "time" | "symbol";
}

export interface RangeQuery extends Base {
  readonly op: "range";
  readonly limit: number | undefined;
  readonly order: "asc" | "desc";
  /** Scalar user-defined functions as extra columns (absent: none). */
  readonly derived?: readonly Aggregate[];
}
export interface ByQuery extends Base {
  readonly op: "lastBy" | "firstBy";
}
export interface RightSide {
  readonly table: string;
  readonly columns: readonly string[] | undefined;
}
export interface AsofQuery extends Base {
  readonly op: "asof";
  readonly right: RightSide;
  readonly direction: "backward" | "forward" | "nearest";
  readonly toleranceMicros: number | undefined;
}
export interface WindowJoinQuery extends Base {
  readonly op: "windowJoin";
  readonly right: RightSide;
  readonly beforeMicros: number;
  readonly afterMicros: number;
  readonly aggregates: readonly Aggregate[];
}
export interface RollingQuery extends Base {
  readonly op: "rolling";
  readonly window: { readonly micros: number } | { readonly rows: number };
  readonly aggregates: readonly Aggregate[];
}
export interface BarsQuery extends Base {
  readonly op: "bars";
  readonly bucketMicros: number;
  readonly price: string;
  readonly size: string;
  readonly fill: "none" | "null" | "previous" | "zero";
  /** Extra aggregates per bar after vwap (absent: none). */
  readonly aggregates?: readonly Aggregate[];
}
export interface GroupByQuery extends Base {
  readonly op: "groupBy";
  readonly bySymbol: boolean;
  readonly bucketMicros: number | undefined;
  readonly aggregates: readonly Aggregate[];
}

export type Query = RangeQuery | ByQuery | AsofQuery | WindowJoinQuery | RollingQuery | BarsQuery | GroupByQuery;

/** The columns of a bars result before its extra aggregates. */
const BAR_NAMES = ["open", "high", "low", "close", "volume", "count", "vwap"];

const UNITS: Record<string, number> = { us: 1, ms: 1_000, s: 1_000_000, m: 60_000_000, h: 3_600_000_000, d: MICROS_PER_DAY };

/** Parses a duration ("5m", "250ms", "1d", or integer microseconds) into microseconds. */
export function parseDuration(field: string, v: number | string, min: number, max: number): number {
  let micros: number;
  if (typeof v === "number") micros = v;
  else {
    const m = /^(\d+)(us|ms|s|m|h|d)$/.exec(v.trim());
    if (m === null) throw invalid(`query field ${field}: "${v}" is not a duration; write it as a number with a unit (us, ms, s, m, h, d), e.g. "5m", or as integer microseconds`);
    micros = Number(m[1]) * UNITS[m[2]!]!;
  }
  if (!Number.isSafeInteger(micros) || micros < min || micros > max) {
    throw invalid(`query field ${field}: ${JSON.stringify(v)} is out of range; it must be between ${min} and ${max} microseconds`);
  }
  return micros;
}

function decode<T>(schema: Schema.Decoder<T>, op: string, input: unknown): T {
  const result = Schema.decodeUnknownResult(schema)(input, { errors: "all", onExcessProperty: "error" });
  if (Result.isFailure(result)) {
    const msg = result.failure.message.replace(/\n\s*at \[/g, " at [").replace(/\n/g, "; ");
    throw invalid(`${op} query is invalid: ${msg}. Fix those fields (see the query docs for the ${op} form).`);
  }
  return result.success;
}

function aggregatesOf(op: string, list: readonly Schema.Schema.Type<typeof AggJson>[], allowed: readonly AggFn[], field = "aggregates", taken: readonly string[] = []): Aggregate[] {
  const names = new Set<string>(taken);
  return list.map((a, i) => {
    const where = `query field ${field}[${i}]`;
    if (!allowed.includes(a.fn)) throw invalid(`${where}: ${op} does not support fn "${a.fn}"; use one of ${allowed.join(", ")}`);
    if (a.fn === "udf") {
      if (a.name === undefined || a.args === undefined) throw invalid(`${where}: fn "udf" needs "name" (the tenant's function, see pxctl apply) and "args" (its argument columns), e.g. {"fn":"udf","name":"myvwap","args":["price","size"]}`);
      if (a.column !== undefined || a.weight !== undefined || a.alpha !== undefined) throw invalid(`${where}: fn "udf" takes its columns in "args"; remove "column", "weight" and "alpha"`);
      const as = a.as ?? a.name;
      if (names.has(as)) throw invalid(`${where}: output name "${as}" is used twice; give one an "as" name`);
      names.add(as);
      return { fn: a.fn, column: undefined, weight: undefined, alpha: undefined, udf: { name: a.name, args: a.args }, as };
    }
    if (a.name !== undefined || a.args !== undefined) throw invalid(`${where}: "name" and "args" are only for fn "udf"; remove them`);
    if (a.fn !== "count" && a.column === undefined) throw invalid(`${where}: fn "${a.fn}" needs "column" (a value column)`);
    if (a.fn === "ema") {
      if (a.alpha === undefined || !(a.alpha > 0 && a.alpha <= 1)) throw invalid(`${where}: ema needs "alpha" in (0, 1], e.g. 0.1`);
    } else if (a.alpha !== undefined) throw invalid(`${where}: "alpha" is only for ema; remove it`);
    if (a.weight !== undefined && a.fn !== "vwap") throw invalid(`${where}: "weight" is only for vwap; remove it`);
    const as = a.as ?? (a.column === undefined ? a.fn : `${a.fn}_${a.column}`);
    if (names.has(as)) throw invalid(`${where}: output name "${as}" is used twice; give one an "as" name`);
    names.add(as);
    return { fn: a.fn, column: a.column, weight: a.fn === "vwap" ? (a.weight ?? "size") : undefined, alpha: a.alpha, as };
  });
}

type CommonJson = { [K in keyof typeof Common]?: unknown } & { table: string; t0?: number; t1?: number; symbols?: readonly string[]; columns?: readonly string[]; minLsn?: number | Readonly<Record<string, number>>; consistency?: "available" | "complete"; sort?: "time" | "symbol" };

function base(op: QueryOp, j: CommonJson, defaultSort: "time" | "symbol"): Base {
  const t0 = j.t0 ?? 0;
  const t1 = j.t1 ?? MAX_QUERY_TS;
  if (t1 < t0) throw invalid(`query fields t0/t1: t1 ${t1} is before t0 ${t0}; the range is [t0, t1), swap them`);
  if (j.symbols !== undefined && new Set(j.symbols).size !== j.symbols.length) {
    throw invalid(`query field symbols: a symbol is listed twice; list each once`);
  }
  void op;
  const byTable = typeof j.minLsn === "object" ? j.minLsn : undefined;
  return {
    table: j.table,
    symbols: j.symbols,
    t0,
    t1,
    columns: j.columns,
    minLsn: typeof j.minLsn === "number" ? j.minLsn : undefined,
    ...(byTable === undefined ? {} : { minLsnByTable: byTable }),
    ...(j.consistency === undefined ? {} : { consistency: j.consistency }),
    sort: j.sort ?? defaultSort,
  };
}

/** Validates and normalises a JSON query. Throws QueryError (INVALID_ARGUMENT) naming the field, the rule and the fix. */
export function parseQuery(input: unknown): Query {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw invalid(`a query must be a JSON object, e.g. {"op":"range","table":"trades","t0":0,"t1":1700000000000000}`);
  }
  const opRaw = (input as { op?: unknown }).op ?? "range";
  if (typeof opRaw !== "string" || !(QUERY_OPS as readonly string[]).includes(opRaw)) {
    throw invalid(`query field op: "${String(opRaw)}" is not an operator; use one of ${QUERY_OPS.join(", ")}`);
  }
  const op = opRaw as QueryOp;
  switch (op) {
    case "range": {
      const j = decode(RangeJson, op, input);
      const derived = j.derived === undefined ? {} : { derived: aggregatesOf(op, j.derived, ["udf"], "derived") };
      return { op, ...base(op, j, "time"), limit: j.limit, order: j.order ?? "asc", ...derived };
    }
    case "lastBy":
    case "firstBy": {
      const j = decode(ByJson, op, input);
      if (j.at !== undefined && (j.t1 !== undefined || (op === "firstBy" && j.t0 !== undefined))) {
        throw invalid(`query field at: give either "at" or t0/t1, not both`);
      }
      // lastBy at t: rows with ts <= t; firstBy at t: rows with ts >= t.
      const jj = j.at === undefined ? j : op === "lastBy" ? { ...j, t1: j.at + 1 } : { ...j, t0: j.at };
      return { op, ...base(op, jj, "symbol") };
    }
    case "asof": {
      const j = decode(AsofJson, op, input);
      return {
        op,
        ...base(op, j, "time"),
        right: { table: j.right.table, columns: j.right.columns },
        direction: j.direction ?? "backward",
        toleranceMicros: j.tolerance === undefined ? undefined : parseDuration("tolerance", j.tolerance, 0, 366 * MICROS_PER_DAY),
      };
    }
    case "windowJoin": {
      const j = decode(WindowJoinJson, op, input);
      return {
        op,
        ...base(op, j, "time"),
        right: { table: j.right.table, columns: j.right.columns },
        beforeMicros: parseDuration("before", j.before, 0, 366 * MICROS_PER_DAY),
        afterMicros: parseDuration("after", j.after, 0, 366 * MICROS_PER_DAY),
        aggregates: aggregatesOf(op, j.aggregates, WINDOW_JOIN_FNS),
      };
    }
    case "rolling": {
      const j = decode(RollingJson, op, input);
      if ((j.window === undefined) === (j.rows === undefined)) {
        throw invalid(`query fields window/rows: give exactly one: "window" (a duration, e.g. "5m") or "rows" (a row count)`);
      }
      return {
        op,
        ...base(op, j, "symbol"),
        window: j.window !== undefined ? { micros: parseDuration("window", j.window, 1, 366 * MICROS_PER_DAY) } : { rows: j.rows! },
        aggregates: aggregatesOf(op, j.aggregates, ROLLING_FNS),
      };
    }
    case "bars": {
      const j = decode(BarsJson, op, input);
      return {
        op,
        ...base(op, j, "symbol"),
        bucketMicros: parseDuration("bucket", j.bucket, 1_000, MICROS_PER_DAY),
        price: j.price ?? "price",
        size: j.size ?? "size",
        fill: j.fill ?? "none",
        ...(j.aggregates === undefined ? {} : { aggregates: aggregatesOf(op, j.aggregates, GROUP_FNS, "aggregates", BAR_NAMES) }),
      };
    }
    case "groupBy": {
      const j = decode(GroupByJson, op, input);
      const bySymbol = j.by.includes("symbol");
      const byBucket = j.by.includes("bucket");
      if (byBucket !== (j.bucket !== undefined)) {
        throw invalid(`query field bucket: ${byBucket ? 'by "bucket" needs "bucket" (a duration, e.g. "1m")' : 'is given but "by" does not list "bucket"; add it to "by" or remove "bucket"'}`);
      }
      return {
        op,
        ...base(op, j, "symbol"),
        bySymbol,
        bucketMicros: j.bucket === undefined ? undefined : parseDuration("bucket", j.bucket, 1_000, MICROS_PER_DAY),
        aggregates: aggregatesOf(op, j.aggregates, GROUP_FNS),
      };
    }
  }
}

// ---- protobuf form -------------------------------------------------------------

const FN_TO_PROTO: Record<AggFn, AggFnProto> = {
  count: AggFnProto.COUNT,
  sum: AggFnProto.SUM,
  avg: AggFnProto.AVG,
  min: AggFnProto.MIN,
  max: AggFnProto.MAX,
  first: AggFnProto.FIRST,
  last: AggFnProto.LAST,
  vwap: AggFnProto.VWAP,
  stddev: AggFnProto.STDDEV,
  ema: AggFnProto.EMA,
  udf: AggFnProto.UDF,
};
const DIRECTIONS = ["backward", "forward", "nearest"] as const;
const FILLS = ["none", "null", "previous", "zero"] as const;

const big = (n: number): bigint => BigInt(n);
const aggToProto = (a: Aggregate) => ({ fn: FN_TO_PROTO[a.fn], column: a.column ?? "", weight: a.weight ?? "", as: a.as, ...(a.alpha === undefined ? {} : { alpha: a.alpha }), ...(a.udf === undefined ? {} : { udf: a.udf.name, args: [...a.udf.args] }) });
const rightToProto = (r: RightSide) => ({ table: r.table, ...(r.columns === undefined ? {} : { columns: { columns: [...r.columns] } }) });

/** The protobuf form of a query (validated first: throws QueryError INVALID_ARGUMENT). */
export function queryToProto(input: unknown): QueryProto {
  const q = parseQuery(input);
  const common = {
    version: QUERY_VERSION,
    table: q.table,
    t0Micros: big(q.t0),
    t1Micros: big(q.t1),
    sort: q.sort === "time" ? Sort.TIME : Sort.SYMBOL,
    ...(q.symbols === undefined ? {} : { symbols: { symbols: [...q.symbols] } }),
    ...(q.columns === undefined ? {} : { columns: { columns: [...q.columns] } }),
    ...(q.minLsn === undefined ? {} : { minLsn: big(q.minLsn) }),
    ...(q.minLsnByTable === undefined ? {} : { minLsnByTable: Object.fromEntries(Object.entries(q.minLsnByTable).map(([t, l]) => [t, big(l)])) }),
    consistency: q.consistency === "complete" ? Consistency.COMPLETE : q.consistency === "available" ? Consistency.AVAILABLE : Consistency.UNSPECIFIED,
  };
  const op = ((): QueryProto["op"] => {
    switch (q.op) {
      case "range":
        return { case: "range", value: create(RangeOpSchema, { descending: q.order === "desc", ...(q.limit === undefined ? {} : { limit: big(q.limit) }), ...(q.derived === undefined ? {} : { derived: q.derived.map(aggToProto) }) }) };
      case "lastBy":
        return { case: "lastBy", value: create(ByOpSchema, {}) };
      case "firstBy":
        return { case: "firstBy", value: create(ByOpSchema, {}) };
      case "asof":
        return {
          case: "asof",
          value: create(AsofOpSchema, { right: rightToProto(q.right), direction: DIRECTIONS.indexOf(q.direction), ...(q.toleranceMicros === undefined ? {} : { toleranceMicros: big(q.toleranceMicros) }) }),
        };
      case "windowJoin":
        return { case: "windowJoin", value: create(WindowJoinOpSchema, { right: rightToProto(q.right), beforeMicros: big(q.beforeMicros), afterMicros: big(q.afterMicros), aggregates: q.aggregates.map(aggToProto) }) };
      case "rolling":
        return {
          case: "rolling",
          value: create(RollingOpSchema, { window: "rows" in q.window ? { case: "rows", value: q.window.rows } : { case: "windowMicros", value: big(q.window.micros) }, aggregates: q.aggregates.map(aggToProto) }),
        };
      case "bars":
        return { case: "bars", value: create(BarsOpSchema, { bucketMicros: big(q.bucketMicros), price: q.price, size: q.size, fill: FILLS.indexOf(q.fill), ...(q.aggregates === undefined ? {} : { aggregates: q.aggregates.map(aggToProto) }) }) };
      case "groupBy":
        return { case: "groupBy", value: create(GroupByOpSchema, { bySymbol: q.bySymbol, aggregates: q.aggregates.map(aggToProto), ...(q.bucketMicros === undefined ? {} : { bucketMicros: big(q.bucketMicros) }) }) };
    }
  })();
  return create(QuerySchema, { ...common, op });
}

const num = (b: bigint, field: string): number => {
  if (b > BigInt(Number.MAX_SAFE_INTEGER) || b < -BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`query field ${field}: ${b} is beyond 2^53; use microseconds within range`);
  return Number(b);
};

function aggFromProto(a: { fn: AggFnProto; column: string; weight: string; alpha?: number | undefined; as: string; udf: string; args: string[] }, i: number): Record<string, unknown> {
  const fn = (Object.keys(FN_TO_PROTO) as AggFn[]).find((k) => FN_TO_PROTO[k] === a.fn);
  if (fn === undefined) throw invalid(`query field aggregates[${i}].fn: ${a.fn} is not a known aggregate; use one of ${AGG_FNS.join(", ")}`);
  return {
    fn,
    ...(a.column === "" ? {} : { column: a.column }),
    ...(a.weight === "" ? {} : { weight: a.weight }),
    ...(a.alpha === undefined ? {} : { alpha: a.alpha }),
    ...(a.udf === "" ? {} : { name: a.udf }),
    ...(a.args.length === 0 ? {} : { args: a.args }),
    ...(a.as === "" ? {} : { as: a.as }),
  };
}

function minLsnFromProto(p: QueryProto): { minLsn?: number | Record<string, number> } {
  const tables = Object.entries(p.minLsnByTable);
  if (tables.length === 0) return p.minLsn === undefined ? {} : { minLsn: num(p.minLsn, "minLsn") };
  // As in the JSON form: one LSN for every table, or one per table.
  if (p.minLsn !== undefined) throw invalid(`query fields min_lsn and min_lsn_by_table are both set; use min_lsn for one LSN for every table, or min_lsn_by_table with each table's LSN`);
  return { minLsn: Object.fromEntries(tables.map(([t, l]) => [t, num(l, `min_lsn_by_table.${t}`)])) };
}

/** The JSON form of a protobuf query (validate it with parseQuery). Rejects unknown versions. */
export function queryFromProto(p: QueryProto): Record<string, unknown> {
  if (p.version !== QUERY_VERSION) throw invalid(`query version ${p.version} is not supported (this server reads version ${QUERY_VERSION}); upgrade the server or send version ${QUERY_VERSION}`);
  const right = (r: { table: string; columns?: { columns: string[] } | undefined } | undefined) => ({ table: r?.table ?? "", ...(r?.columns === undefined ? {} : { columns: r.columns.columns }) });
  const out: Record<string, unknown> = {
    table: p.table,
    ...(p.symbols === undefined ? {} : { symbols: p.symbols.symbols }),
    ...(p.t0Micros === undefined ? {} : { t0: num(p.t0Micros, "t0") }),
    ...(p.t1Micros === undefined ? {} : { t1: num(p.t1Micros, "t1") }),
    ...(p.columns === undefined ? {} : { columns: p.columns.columns }),
    ...minLsnFromProto(p),
    ...(p.consistency === Consistency.COMPLETE ? { consistency: "complete" } : p.consistency === Consistency.AVAILABLE ? { consistency: "available" } : {}),
    ...(p.sort === Sort.TIME ? { sort: "time" } : p.sort === Sort.SYMBOL ? { sort: "symbol" } : {}),
  };
  const op = p.op;
  switch (op.case) {
    case "range":
      return {
        op: "range",
        ...out,
        order: op.value.descending ? "desc" : "asc",
        ...(op.value.limit === undefined ? {} : { limit: num(op.value.limit, "limit") }),
        ...(op.value.derived.length === 0 ? {} : { derived: op.value.derived.map(aggFromProto) }),
      };
    case "lastBy":
    case "firstBy":
      return { op: op.case, ...out };
    case "asof":
      return { op: "asof", ...out, right: right(op.value.right), direction: DIRECTIONS[op.value.direction] ?? "backward", ...(op.value.toleranceMicros === undefined ? {} : { tolerance: num(op.value.toleranceMicros, "tolerance") }) };
    case "windowJoin":
      return { op: "windowJoin", ...out, right: right(op.value.right), before: num(op.value.beforeMicros, "before"), after: num(op.value.afterMicros, "after"), aggregates: op.value.aggregates.map(aggFromProto) };
    case "rolling": {
      const w = op.value.window;
      const window = w.case === "rows" ? { rows: w.value } : w.case === "windowMicros" ? { window: num(w.value, "window") } : {};
      return { op: "rolling", ...out, ...window, aggregates: op.value.aggregates.map(aggFromProto) };
    }
    case "bars":
      return { op: "bars", ...out, bucket: num(op.value.bucketMicros, "bucket"), ...(op.value.price === "" ? {} : { price: op.value.price }), ...(op.value.size === "" ? {} : { size: op.value.size }), fill: FILLS[op.value.fill] ?? "none", ...(op.value.aggregates.length === 0 ? {} : { aggregates: op.value.aggregates.map(aggFromProto) }) };
    case "groupBy":
      return {
        op: "groupBy",
        ...out,
        by: [...(op.value.bySymbol ? ["symbol"] : []), ...(op.value.bucketMicros === undefined ? [] : ["bucket"])],
        ...(op.value.bucketMicros === undefined ? {} : { bucket: num(op.value.bucketMicros, "bucket") }),
        aggregates: op.value.aggregates.map(aggFromProto),
      };
    case undefined:
      throw invalid(`query has no operator; set one of range, lastBy, firstBy, asof, windowJoin, rolling, bars, groupBy`);
  }
}

/** Protobuf bytes of a JSON query. */
export const encodeQuery = (input: unknown): Uint8Array => toBinary(QuerySchema, queryToProto(input));
/** JSON form of protobuf query bytes (validate it with parseQuery). */
export function decodeQuery(bytes: Uint8Array): Record<string, unknown> {
  let p: QueryProto;
  try {
    p = fromBinary(QuerySchema, bytes);
  } catch (e) {
    throw invalid(`query bytes are not a proxist.v1.Query protobuf (${(e as Error).message}); send the message encoded with protocols/proto/proxist/v1/query.proto`);
  }
  return queryFromProto(p);
}

/** The user-defined functions a query calls (aggregates and derived columns with fn "udf"), in query order. */
export function udfCalls(q: Query): Aggregate[] {
  const list = q.op === "range" ? (q.derived ?? []) : q.op === "bars" ? (q.aggregates ?? []) : "aggregates" in q ? q.aggregates : [];
  return list.filter((a) => a.fn === "udf");
}

/** True when the query calls a user-defined function. */
export const usesUdf = (q: Query): boolean => udfCalls(q).length > 0;
