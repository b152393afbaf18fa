// Query engine (issue 5): kdb+-style operators over a table's hot set, stitched
// exactly with the cold store under the seam rule. Build one ProxistQueryEngine
// per node with a TableSource (the node's shards) and a ColdSource (ClickHouse).
// Refusals are protocols/errors.ts QueryError.
export { ProxistQueryEngine, parseTenantQuery } from "./engine.js";
export type { QueryColumns, QueryEngineOptions, QueryResult, QueryRunStats } from "./engine.js";
export { ClickhouseColdSource, seamWhereAll, sqlString } from "./source.js";
export type { ColdSlice, ColdSource, HotShard, TableSource } from "./source.js";
export { shardHostSource, staticSource, readinessOf, isLiveState } from "./tables.js";
export type { ShardHostLike, ShardRuntimeLike } from "./tables.js";
export { answerPart, chunks, firstRows, joinChunks, encodePartReply, encodePartError, decodePartReply, wantedOf, PartFailedError } from "./part.js";
export type { BucketStatus, PartLimit, PartReply, PartRequest } from "./part.js";
export { coverageOf, fanLoad, unionSeries, shardNote } from "./coverage.js";
export type { BucketPlace, ClusterParts, Coverage } from "./coverage.js";
export { arrowSchema, arrowType, iota, toRecordBatches, TS_FIELD_META } from "./output.js";
export type { OutColumn, OutField, OutKind, OutTable } from "./output.js";
export { sliceTable, tableBytes } from "./slice.js";
export { loadSeries } from "./load.js";
export type { Loaded } from "./load.js";
export type { LoadRequest } from "./plan.js";
export type { SymbolSeries } from "./series.js";
// The operator pieces materialized feeds (src/feed/) run incrementally: one copy of the math.
export { aggInputs, asofMatch, barAggregates, barsOp, columnIndex, fieldsOf, selectedColumns } from "./ops/index.js";
export { SlideState, ema, slideRange, slidingAggregates } from "./window.js";
export type { AggInput, AggOut } from "./window.js";
export { GroupTable, bucketStart, hotPartials } from "./partials.js";
export { before, lowerBound, upperBound, upperBoundFrom } from "./series.js";
export { compareStrings } from "./symorder.js";
