// Subscription feeds (issue 14): standing queries over a table's WAL, run
// incrementally with the query engine's operator code. Plan a feed from its
// query JSON (planFeed), fold its WAL records in LSN order (FeedRunner), send
// each FeedBatch with its offset; a consumer resumes exactly from an offset.
export { DEFAULT_LATENESS_MICROS, feedTables, planFeed } from "./model.js";
export type { FeedKind, FeedPlan, FeedPlanInput, FeedQuery } from "./model.js";
export { covers, decodeOffset, encodeOffset, resumeSeq, shardKey, uniformOffset } from "./offset.js";
export type { FeedOffset, RecordPart } from "./offset.js";
export type { FeedOperator, FeedRecord } from "./operator.js";
export { FeedRunner, feedOperator } from "./runner.js";
export type { FeedBatch } from "./runner.js";
export { FeedSession } from "./session.js";
export type { FeedSessionOptions } from "./session.js";
export { isStartTime, parseFrom } from "./from.js";
export { SubscriptionHolds } from "./subholds.js";
export { ParkedFeeds } from "./parked.js";
export type { ParkedFeedsOptions, ParkedState } from "./parked.js";
export type { SubscriptionHold } from "./subholds.js";
export type { FeedFrom, FeedStartTime } from "./from.js";
export { SharedDecodes, feedDecodes } from "./decoded.js";
export { readTableGaps, readWalGap } from "./gap.js";
export { pushMerged } from "./gapmerge.js";
export type { MergeInput } from "./gapmerge.js";
export { EMPTY_TAIL, coveredBy, offsetLsn, outputPlace, placeAtOrBefore, placeText } from "./tail.js";
export type { FeedTail, Place } from "./tail.js";
export { afterTail, rowsHeader, splitBatch } from "./parts.js";
export { FEED_DEDUP_WINDOW_MS, FeedFenceError, FeedMessageTooLargeError, ROUND_LIMIT_MS, publishFenced } from "./fence.js";
export type { FeedSubjectIO } from "./fence.js";
export type { GapReader, TableGaps, WalGap } from "./gap.js";
export { CHECKPOINT_FORMAT, FeedCheckpointError, decodeCheckpoint, encodeCheckpoint, restoreRunner, tableSignature } from "./checkpoint.js";
export type { FeedCheckpoint } from "./checkpoint.js";
export type { SavedRunner } from "./runner.js";
