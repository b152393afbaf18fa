// CommandGetSqlInfo: what a Flight SQL client learns of the server before it
// sends SQL (name, version, read-only, grammar, terms). The answer is the
// table the specification fixes: info_name uint32, value a dense union of
// string / bool / int64 / int32 bitmask / string list / int32 -> int32 list map.
import { Bool, DenseUnion, Field, Int32, Int64, List, Map_, RecordBatch, Schema, Struct, Uint32, Utf8, makeData, vectorFromArray } from "apache-arrow";
import type { Data, DataType } from "apache-arrow";
import pkg from "../../../../package.json" with { type: "json" };
import { SqlInfo, SqlSupportedCaseSensitivity, SqlSupportedTransaction, SupportedSqlGrammar } from "../../../../protocols/gen/arrow/flight/protocol/sql/FlightSql_pb.js";

type Value = { readonly s: string } | { readonly b: boolean } | { readonly i64: bigint } | { readonly i32: number } | { readonly list: readonly string[] };

/** The forms of the SQL front end (src/sql) beyond plain SELECT, for tools that highlight keywords. */
const KEYWORDS = ["LATEST", "ON", "PARTITION", "SAMPLE", "FILL", "ASOF", "WINDOW", "TOLERANCE", "INTERVAL", "PRECEDING", "EXPLAIN"];

const INFO: ReadonlyMap<number, Value> = new Map<number, Value>([
  [SqlInfo.FLIGHT_SQL_SERVER_NAME, { s: "Proxist" }],
  [SqlInfo.FLIGHT_SQL_SERVER_VERSION, { s: pkg.version }],
  // The Arrow IPC format the server writes (metadata version V5).
  [SqlInfo.FLIGHT_SQL_SERVER_ARROW_VERSION, { s: "1.0.0 (IPC metadata V5)" }],
  // Read-only over Flight SQL: ingest has its own paths (Flight DoPut with a table path, gRPC Ingest, POST /v1/ingest, NATS).
  [SqlInfo.FLIGHT_SQL_SERVER_READ_ONLY, { b: true }],
  [SqlInfo.FLIGHT_SQL_SERVER_SQL, { b: true }],
  [SqlInfo.FLIGHT_SQL_SERVER_SUBSTRAIT, { b: false }],
  [SqlInfo.FLIGHT_SQL_SERVER_TRANSACTION, { i32: SqlSupportedTransaction.NONE }],
  // A DoGet is cancelled by cancelling the call; there is no CancelQuery action.
  [SqlInfo.FLIGHT_SQL_SERVER_CANCEL, { b: false }],
  [SqlInfo.FLIGHT_SQL_SERVER_BULK_INGESTION, { b: false }],
  // Prepared statement handles never expire: they hold no server state.
  [SqlInfo.FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT, { i32: 0 }],
  [SqlInfo.SQL_DDL_CATALOG, { b: false }],
  [SqlInfo.SQL_DDL_SCHEMA, { b: false }],
  [SqlInfo.SQL_DDL_TABLE, { b: false }],
  // Table and column names are lowercase ([a-z][a-z0-9_]*).
  [SqlInfo.SQL_IDENTIFIER_CASE, { i32: SqlSupportedCaseSensitivity.SQL_CASE_SENSITIVITY_LOWERCASE }],
  [SqlInfo.SQL_IDENTIFIER_QUOTE_CHAR, { s: '"' }],
  [SqlInfo.SQL_ALL_TABLES_ARE_SELECTABLE, { b: true }],
  [SqlInfo.SQL_KEYWORDS, { list: KEYWORDS }],
  [SqlInfo.SQL_NUMERIC_FUNCTIONS, { list: ["count", "sum", "avg", "min", "max", "first", "last", "vwap", "stddev", "ema"] }],
  [SqlInfo.SQL_DATETIME_FUNCTIONS, { list: ["time_bucket"] }],
  [SqlInfo.SQL_SUPPORTS_COLUMN_ALIASING, { b: true }],
  // A SELECT subset with time-series extensions: the minimum ODBC grammar, no ANSI-92 level.
  [SqlInfo.SQL_SUPPORTED_GRAMMAR, { i32: 1 << SupportedSqlGrammar.SQL_MINIMUM_GRAMMAR }],
  [SqlInfo.SQL_ANSI92_SUPPORTED_LEVEL, { i32: 0 }],
  // The tenant is the schema (src/api/flight/sql/metadata.ts says why); there are no catalogs.
  [SqlInfo.SQL_SCHEMA_TERM, { s: "tenant" }],
  [SqlInfo.SQL_CATALOG_TERM, { s: "" }],
  [SqlInfo.SQL_CATALOG_AT_START, { b: false }],
]);

const listOf = (t: DataType, nullable = true) => new List(new Field("item", t, nullable));

const MEMBERS = [
  new Field("string_value", new Utf8(), true),
  new Field("bool_value", new Bool(), true),
  new Field("bigint_value", new Int64(), true),
  new Field("int32_bitmask", new Int32(), true),
  new Field("string_list", listOf(new Utf8()), true),
  new Field(
    "int32_to_int32_list_map",
    new Map_(new Field("entries", new Struct([new Field("key", new Int32(), false), new Field("value", listOf(new Int32()), true)] as Field[]), false) as never),
    true,
  ),
];
const VALUE_TYPE = new DenseUnion([0, 1, 2, 3, 4, 5], MEMBERS);
export const SQL_INFO_SCHEMA = new Schema([new Field("info_name", new Uint32(), false), new Field("value", VALUE_TYPE, false)]);

function emptyMap(): Data {
  const t = MEMBERS[5]!.type as Map_;
  const entries = t.children[0]!.type as Struct;
  const int32s = makeData({ type: new Int32(), length: 0, data: new Int32Array(0) });
  const valueList = makeData({ type: entries.children[1]!.type as List, length: 0, valueOffsets: new Int32Array(1), child: int32s });
  const struct = makeData({ type: entries, length: 0, children: [int32s, valueList] });
  return makeData({ type: t, length: 0, valueOffsets: new Int32Array(1), child: struct });
}

/** The rows for `ids` (all known infos when empty; ids Proxist does not know are left out, as the spec allows). */
export function sqlInfoBatch(ids: readonly number[]): RecordBatch {
  const wanted = ids.length === 0 ? [...INFO.keys()] : ids.filter((id) => INFO.has(id));
  const strings: string[] = [];
  const bools: boolean[] = [];
  const bigints: bigint[] = [];
  const int32s: number[] = [];
  const lists: string[][] = [];
  const typeIds = new Int8Array(wanted.length);
  const offsets = new Int32Array(wanted.length);
  wanted.forEach((id, row) => {
    const v = INFO.get(id)!;
    const [type, at] = "s" in v ? [0, strings.push(v.s)] : "b" in v ? [1, bools.push(v.b)] : "i64" in v ? [2, bigints.push(v.i64)] : "i32" in v ? [3, int32s.push(v.i32)] : [4, lists.push([...v.list])];
    typeIds[row] = type;
    offsets[row] = at - 1;
  });
  const children = [
    vectorFromArray(strings, new Utf8()).data[0]!,
    vectorFromArray(bools, new Bool()).data[0]!,
    makeData({ type: new Int64(), length: bigints.length, data: BigInt64Array.from(bigints) }),
    makeData({ type: new Int32(), length: int32s.length, data: Int32Array.from(int32s) }),
    vectorFromArray(lists, MEMBERS[4]!.type as List<Utf8>).data[0]!,
    emptyMap(),
  ];
  const value = makeData({ type: VALUE_TYPE, length: wanted.length, nullCount: 0, typeIds, valueOffsets: offsets, children });
  const names = makeData({ type: new Uint32(), length: wanted.length, data: Uint32Array.from(wanted) });
  return new RecordBatch(SQL_INFO_SCHEMA, makeData({ type: new Struct(SQL_INFO_SCHEMA.fields), length: wanted.length, nullCount: 0, children: [names, value] }));
}
