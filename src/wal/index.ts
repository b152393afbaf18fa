// Public surface of src/wal/: the WAL as the rest of Proxist sees it. Record
// decoding (once per node, shared by shard and sink), the JetStream streams
// Proxist owns, watermark events, and the consumer batching both readers use.
export { DecodedRecordCache, WalSchemaVersionError, decodeWalEntry, skippedRecord } from "./decode.js";
export type { DecodedRecord, SkippedLsns } from "./decode.js";
export { readWalSkips, recordWalSkip } from "./skips.js";
export type { WalSkip } from "./skips.js";
export { StreamRoomError, ensureWalStream, ensureWatermarkStream } from "./streams.js";
export type { WalStreamOptions } from "./streams.js";
export { followWatermarks, lastWatermark, publishWatermark } from "./watermark.js";
export type { WatermarkEvent } from "./watermark.js";
export { consumeBatches } from "./consume.js";
export { PULL_BUDGET_BYTES, PULL_HEADROOM_BYTES, pullOptions, serverMaxPayload, walPull } from "./pull.js";
export type { ConsumeBatchesOptions } from "./consume.js";
export { StallWatch } from "./stall.js";
export type { StallVerdict } from "./stall.js";
export { GapTracker, WalGapError, gapAt, walFullCause } from "./gap.js";
export type { WalFloor } from "./gap.js";
export { compactionFloor, streamFirstSeq, walFloor } from "./floor.js";
export { freshReads } from "./fresh.js";
export type { CompactionRecord } from "./floor.js";
export { describePlan, planCompaction } from "./compaction.js";
export type { CompactionInputs, CompactionPlan } from "./compaction.js";
export { ensureEventsStream, readEvents, eventRecorder, recordEvent } from "./events.js";
export type { OpsEvent } from "./events.js";
export { SharedWalFloors, sharedWalFloors } from "./sharedfloor.js";
export { sharedWalGapGate } from "./gapgate.js";
export type { WalGapGate } from "./gapgate.js";
