// Public surface of src/sink/: ClickHouse persistence of a shard. Pure parts
// (batching, INSERT planning, exactly-once reconciliation, retry delays) and
// the runtime IO (durable WAL consumer, ClickHouse questions, watermarks) that
// the sink machine in actors/sink.ts runs on.
export { batchDelayMs, batchFull, freshRecords, takeBatch } from "./batch.js";
export { retryDelayMs, retrySchedule } from "./backoff.js";
export { SinkClickhouse, SinkWritersRunningError, sinkQueryPrefix } from "./clickhouseio.js";
export type { SinkClickhouseOptions } from "./clickhouseio.js";
export { DecodedRecordCache, WalSchemaVersionError, decodeWalEntry } from "./decoded.js";
export type { DecodedRecord } from "./decoded.js";
export { SinkFlushError, describeFailure, flushFailure } from "./errors.js";
export type { FailureInfo, FlushFailureKind } from "./errors.js";
export { encodeInsert, planInserts } from "./plan.js";
export type { InsertPlan, PlanOptions, PlanRecord } from "./plan.js";
export { partlyLanded, reconcile, wholeBatch } from "./reconcile.js";
export type { LandedCounts, Reconciled } from "./reconcile.js";
export { SinkRuntime } from "./runtime.js";
export type { SinkRuntimeOptions, SinkStatus } from "./runtime.js";
export { DEFAULT_RETRY_POLICY, DEFAULT_SINK_LIMITS, bytesOf, rowsOf } from "./types.js";
export type { RetryPolicy, SinkLimits, SinkRecord } from "./types.js";
export { SinkRecordError, consumerAckFloor, decodeSinkRecord, jetstreamSinkConsumer, positionSinkConsumer, sinkConsumerName } from "./wal.js";
export type { SinkConsumerOptions } from "./wal.js";
export { followWatermarks, jetstreamAnnouncer, lastWatermark, publishWatermark } from "./watermark.js";
export type { WatermarkEvent } from "./watermark.js";
export { runFlush } from "./flush.js";
export type { FlushAttempt, FlushIo, FlushResult, FlushSettings } from "./flush.js";
