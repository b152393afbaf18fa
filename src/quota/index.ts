// Per-tenant quotas (issue 13), the pure part: token buckets over an injected
// clock, the gateway's ingest decisions, the query engine's budgets, and the
// cluster-wide shares over the nodes' reports (share.ts, cluster.ts). The
// gateway machine and the query engine enforce them; the node feeds usage in.
export type { Bucket, BucketRate, Take } from "./bucket.js";
export { fullBucket, refill, take } from "./bucket.js";
export type { IngestQuotaState, TenantIngestState, QuotaRefusal, TenantUsage, Charge } from "./ingest.js";
export { NO_INGEST_STATE, admittedSoFar, charge, precheck, symbolKey, usageReport, wantsSymbols, withPeers, withUsage } from "./ingest.js";
export type { PeerRates, PeerUsage, RateReport, ShardUsage, TenantReport } from "./share.js";
export { PeerReports, maxUsage, parseRateReport, shardUsageKey, shareOf } from "./share.js";
export type { PendingSymbol } from "./cluster.js";
export { PENDING_MS, clusterShards, queryShare, reservedShare, stillPending, symbolShare, udfShare } from "./cluster.js";
export type { PeerQueries, QueryBudget } from "./query.js";
export { QueryQuotas } from "./query.js";
export { quotaMessage, raiseHint } from "./refusal.js";
