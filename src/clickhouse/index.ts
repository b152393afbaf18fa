// Public surface of src/clickhouse/: the HTTP client and its typed errors,
// server version and capabilities, table DDL, RowBinary encode/decode/insert,
// and the landed-LSN check that makes sink retries exactly-once on 18.16.
export { ClickhouseHttp, pingClickhouse } from "./http.js";
export type { ClickhouseHttpOptions, ClickhouseResponse, ClickhouseSettings, RequestOptions } from "./http.js";
export {
  ClickhouseProtocolError,
  ClickhouseQueryError,
  ClickhouseUnavailableError,
  classifyClickhouseError,
  parseServerException,
} from "./errors.js";
export { capabilitiesOf, detectServer, parseClickhouseVersion, syncInsertSettings, versionAtLeast } from "./version.js";
export type { ClickhouseCapabilities, ClickhouseServerInfo, ClickhouseVersion } from "./version.js";
export {
  ClickhouseSchemaMismatchError,
  addColumnSql,
  LSN_COLUMN,
  ROW_COLUMN,
  SHARD_COLUMN,
  createDatabaseSql,
  createTableSql,
  databaseName,
  describeTable,
  ensureSchema,
  partitionDayOf,
  partitionExpression,
  qualifiedTable,
  quoteIdent,
  tableColumns,
  valueColumnType,
} from "./ddl.js";
export type { ClickhouseColumn, ClickhouseType, ColumnRole } from "./ddl.js";
export {
  DEFAULT_MAX_INSERT_BLOCK_ROWS,
  RowBinaryEncodeError,
  decodeRowBinary,
  encodeRowBinary,
  encodeRowBinarySegments,
  insertRowBinary,
  insertRowBinarySql,
  selectRowBinary,
} from "./rowbinary.js";
export type { DecodedRows, InsertRowBinaryOptions, RowBinarySegment, RowMeta } from "./rowbinary.js";
export { landedLsns, landedRows, queryRunning, waitQueryGone } from "./landed.js";
export type { LandedOptions } from "./landed.js";
export { QUERY_LOG_TABLE, ensureQueryLog, insertQueryLog, readQueryLog } from "./querylog.js";
export type { QueryLogRow } from "./querylog.js";
