// Public surface of src/sink/: ClickHouse persistence of a shard. Pure parts
// (batching, INSERT planning, exactly-once reconciliation, retry delays) and
// the IO (durable WAL consumer position, ClickHouse questions) that the sink
// machine in actors/sink.ts runs on; src/node/sink/ provides them to it.
export { batchDelayMs, batchFull, freshRecords, takeBatch } from "./batch.js";
export { retryDelayMs, retrySchedule } from "./backoff.js";
export { SinkClickhouse, SinkWritersRunningError, sinkQueryPrefix } from "./clickhouseio.js";
export type { SinkClickhouseOptions } from "./clickhouseio.js";
export { SinkFlushError, describeFailure, flushFailure } from "./errors.js";
export type { FailureInfo, FlushFailureKind } from "./errors.js";
export { encodeInsert, planInserts } from "./plan.js";
export type { InsertPlan, PlanOptions, PlanRecord } from "./plan.js";
export { partlyLanded, reconcile, wholeBatch } from "./reconcile.js";
export type { LandedCounts, Reconciled } from "./reconcile.js";
export { DEFAULT_RETRY_POLICY, DEFAULT_SINK_LIMITS, bytesOf, rowsOf } from "./types.js";
export type { RetryPolicy, SinkLimits, SinkRecord } from "./types.js";
export { DeliveryGapError, SinkRecordError, consumerAckFloor, decodeSinkRecord, positionSinkConsumer, sinkConsumerName } from "./wal.js";
export type { ConsumerProbe } from "./wal.js";
export type { SinkConsumerOptions } from "./wal.js";
export { runFlush } from "./flush.js";
export type { FlushAttempt, FlushIo, FlushResult, FlushSettings } from "./flush.js";
export { SinkFencedError, SinkLease, WatermarkGate, isFenced } from "./lease.js";
export type { PermitVerdict, RevisionedWatermark } from "./lease.js";
export { verifyPersisted } from "./verify.js";
export type { VerifiedP, VerifyIo } from "./verify.js";
export { INITIAL_LAG_STATE, LAG_RECOVERED_RATIO, LAG_STEP_NAMES, MAX_LAG_STEP, overSlo, planLagSteps } from "./lagplan.js";
export type { LagReading, LagStep, ShardLagState, StepChange } from "./lagplan.js";
