// Query engine (issue 5): kdb+-style operators over a table's hot set, stitched
// exactly with the cold store under the seam rule. Build one ProxistQueryEngine
// per node with a TableSource (the node's shards) and a ColdSource (ClickHouse).
// Refusals are protocols/errors.ts QueryError.
export { ProxistQueryEngine } from "./engine.js";
export type { QueryEngineOptions, QueryResult, QueryRunStats } from "./engine.js";
export { ClickhouseColdSource, seamWhere, sqlString } from "./source.js";
export type { ColdSlice, ColdSource, HotShard, TableSource } from "./source.js";
export { shardHostSource, staticSource } from "./tables.js";
export { arrowSchema, toRecordBatches, TS_FIELD_META } from "./output.js";
export type { OutColumn, OutField, OutKind, OutTable } from "./output.js";
export { loadSeries } from "./load.js";
export type { Loaded, LoadRequest } from "./load.js";
export type { SymbolSeries } from "./series.js";
