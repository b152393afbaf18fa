// Public surface of src/clickhouse/: the HTTP client and its typed errors,
// server version and capabilities, table DDL, RowBinary encode/decode/insert,
// the landed-LSN check and the shard write fence that together make sink
// retries and takeovers exactly-once on 18.16.
export { ClickhouseHttp, pingClickhouse } from "./http.js";
export type { ClickhouseHttpOptions, ClickhouseResponse, ClickhouseSettings, ExternalTable, RequestOptions } from "./http.js";
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
  insertRowBinaryFenced,
  insertRowBinaryFencedSql,
  insertRowBinarySql,
  readStringLength,
  selectRowBinary,
} from "./rowbinary.js";
export type { DecodedRows, InsertFence, InsertRowBinaryOptions, RowBinarySegment, RowMeta } from "./rowbinary.js";
export {
  FENCE_EPOCHS,
  FENCE_REFUSED_CODE,
  FENCE_TABLE,
  createFenceTableSql,
  ensureFenceTable,
  fenceConditionSql,
  isFenceRefusal,
  nextFenceToken,
  readFence,
  storeFence,
} from "./fence.js";
export type { NextToken } from "./fence.js";
export { landedLsns, landedRows, queryRunning, waitQueryGone } from "./landed.js";
export type { LandedOptions } from "./landed.js";
export { QUERY_LOG_TABLE, ensureQueryLog, insertQueryLog, readQueryLog } from "./querylog.js";
export type { QueryLogRow } from "./querylog.js";
