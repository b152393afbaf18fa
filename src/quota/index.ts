// Per-tenant quotas (issue 13), the pure part: token buckets over an injected
// clock, the gateway's ingest decisions and the query engine's budgets. The
// gateway machine and the query engine enforce them; the node feeds usage in.
export type { Bucket, BucketRate, Take } from "./bucket.js";
export { fullBucket, refill, take } from "./bucket.js";
export type { IngestQuotaState, TenantIngestState, QuotaRefusal, TenantUsage, Charge } from "./ingest.js";
export { NO_INGEST_STATE, admittedSoFar, charge, precheck, symbolKey, wantsSymbols, withPeers, withUsage } from "./ingest.js";
export type { PeerRates, RateReport } from "./share.js";
export { PeerReports, parseRateReport, shareOf } from "./share.js";
export type { QueryBudget } from "./query.js";
export { QueryQuotas } from "./query.js";
export { quotaMessage, raiseHint } from "./refusal.js";
