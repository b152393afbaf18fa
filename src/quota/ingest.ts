// Ingest quotas of each tenant, as the gateway machine holds them (pure values):
// token buckets for ticks/s and bytes/s, the hot bytes and symbols of the
// tenant's shards (this node's as last measured, the peers' as last reported:
// cluster.ts), the symbols this gateway knows, and the decisions over them.
// Tenants without a quota cost nothing here: no entry, no copy.
import type { QuotaName, TenantQuotas } from "../../protocols/tablespec.js";
import { fullBucket, refill, take } from "./bucket.js";
import type { Bucket, BucketRate } from "./bucket.js";
import { quotaMessage } from "./refusal.js";
import { bucketOf } from "../../protocols/routing.js";
import { clusterShards, reservedShare, stillPending, symbolShare } from "./cluster.js";
import type { PendingSymbol } from "./cluster.js";
import { shardUsageKey, shareOf } from "./share.js";
import type { PeerRates, PeerUsage, ShardUsage, TenantReport } from "./share.js";

export interface TenantIngestState {
  readonly ticks?: Bucket;
  readonly bytes?: Bucket;
  /** Hot bytes and symbol count of each of the tenant's shards on this node (`table/bucket`), as last measured. */
  readonly shards?: ReadonlyMap<string, ShardUsage>;
  /** What the other nodes use of the tenant's quotas, as last reported (cluster.ts). */
  readonly cluster?: PeerUsage;
  /** Known `table\0symbol` keys (only with a symbols quota): this node's shards', admitted here, announced by peers. */
  readonly symbols?: ReadonlySet<string>;
  /** Symbols admitted here as new, counted until their shard reports them (cluster.ts). */
  readonly pending?: ReadonlyMap<string, PendingSymbol>;
  /** The cluster's symbols at the last exchange (with what peers reserved), and new symbols admitted here since: this gateway's share (symbolShare). */
  readonly symbolView?: { readonly total: number; readonly since: number };
  /** Ticks and payload bytes admitted on this node since it started (what it reports to its peers: share.ts). */
  readonly admitted?: { readonly ticks: number; readonly bytes: number };
  /** What the other gateways admit of the tenant's rate quotas: this node grants what they leave (share.ts). */
  readonly peers?: PeerRates;
}

/** Per tenant; a tenant without ingest quotas has no entry. */
export type IngestQuotaState = ReadonlyMap<string, TenantIngestState>;

export const NO_INGEST_STATE: IngestQuotaState = new Map();

/** A batch refused for a quota: RESOURCE_EXHAUSTED with this message. */
export interface QuotaRefusal {
  readonly quota: QuotaName;
  readonly message: string;
  /** Retrying unchanged can pass (rates, hot bytes): the publisher backs off and retries. */
  readonly retryable: boolean;
  /** When a retry could pass (rates only). */
  readonly retryAfterMs?: number;
}

/** What the node measures of a tenant's shards on it. */
export interface TenantUsage {
  /** Per hosted shard (`table/bucket`): hot bytes and distinct symbols. */
  readonly shards: ReadonlyMap<string, ShardUsage>;
  /** `table\0symbol` keys the tenant's hot sets hold (only for tenants with a symbols quota). */
  readonly symbols?: ReadonlySet<string>;
}

export const symbolKey = (table: string, symbol: string): string => `${table}\0${symbol}`;

/** Whether the gateway needs the batch's symbols for this tenant. */
export const wantsSymbols = (q: TenantQuotas): boolean => q.symbols !== undefined;

/** This node's bucket for a cluster-wide rate `quota`: its share of it (all of it while it hears from no peer). */
const rateOf = (quota: number, q: TenantQuotas, t: TenantIngestState, unit: "ticks" | "bytes"): BucketRate => {
  const perSecond = shareOf(quota, t.peers, unit);
  return { perSecond, capacity: perSecond * (q.ingestBurstSeconds ?? 1) };
};

const hasIngestQuota = (q: TenantQuotas): boolean => q.ingestTicksPerSecond !== undefined || q.ingestBytesPerSecond !== undefined || q.hotBytes !== undefined || q.symbols !== undefined;

const stateOf = (s: IngestQuotaState, tenant: string): TenantIngestState => s.get(tenant) ?? {};

const ownBytes = (t: TenantIngestState): number => {
  let n = 0;
  for (const u of t.shards?.values() ?? []) n += u.bytes;
  return n;
};

/** Whether some node (this one or a peer) reports `shard` of the tenant. */
const reports = (t: TenantIngestState) => (shard: string): boolean => t.shards?.has(shard) === true || t.cluster?.shards.has(shard) === true;

/** Pending symbols of this gateway that still count at `nowMs` (all of them without a clock). */
function livePending(t: TenantIngestState, nowMs: number | undefined): number {
  if (t.pending === undefined) return 0;
  if (nowMs === undefined) return t.pending.size;
  const reported = reports(t);
  let n = 0;
  for (const p of t.pending.values()) if (stillPending(p, nowMs, reported)) n++;
  return n;
}

/** The tenant's symbols across the cluster: the shards' counts, and what every gateway admitted that its shard has not reported yet. */
function symbolsOf(t: TenantIngestState, nowMs: number | undefined): { total: number; settled: number; pending: number } {
  const settled = clusterShards(t.shards, t.cluster?.shards).symbols;
  const pending = livePending(t, nowMs) + (t.cluster?.pending ?? 0);
  return { total: settled + pending, settled, pending };
}

/**
 * The cheap checks before a batch is decoded: hot bytes over the quota, or a
 * rate bucket with nothing in it. A flood over its rate is refused here, at
 * the cost of a map lookup, so it does not take the decoding time of others.
 */
export function precheck(s: IngestQuotaState, q: TenantQuotas, tenant: string, nowMs: number): QuotaRefusal | undefined {
  if (!hasIngestQuota(q)) return undefined;
  const t = stateOf(s, tenant);
  const hot = q.hotBytes === undefined ? 0 : clusterShards(t.shards, t.cluster?.shards).bytes;
  if (q.hotBytes !== undefined && hot >= q.hotBytes) {
    const own = ownBytes(t);
    return {
      quota: "hotBytes",
      retryable: true,
      message: quotaMessage(
        tenant,
        "hotBytes",
        q.hotBytes,
        `is reached across the cluster (its hot sets hold ${hot} bytes: ${own} on this node's shards, ${hot - own} on other nodes' as they last reported); this batch was not stored and nothing already acknowledged was dropped`,
        "retry once the sinks persist and evict older rows (or lower retention.hotSeconds)",
      ),
    };
  }
  return emptyBucket(tenant, "ingestTicksPerSecond", q, t, nowMs) ?? emptyBucket(tenant, "ingestBytesPerSecond", q, t, nowMs);
}

/** The refusal when the bucket of `quota` holds no token at `nowMs`. */
function emptyBucket(tenant: string, quota: "ingestTicksPerSecond" | "ingestBytesPerSecond", q: TenantQuotas, t: TenantIngestState, nowMs: number): QuotaRefusal | undefined {
  const value = q[quota];
  const unit = quota === "ingestTicksPerSecond" ? "ticks" : "bytes";
  const b = unit === "ticks" ? t.ticks : t.bytes;
  if (value === undefined || b === undefined) return undefined;
  const rate = rateOf(value, q, t, unit);
  const now = refill(b, rate, nowMs);
  if (now.tokens > 0) return undefined;
  return rateRefusal(tenant, quota, value, undefined, Math.ceil(((1 - now.tokens) / rate.perSecond) * 1000));
}

function rateRefusal(tenant: string, quota: QuotaName, value: number, cost: number | undefined, waitMs: number): QuotaRefusal {
  const unit = quota === "ingestTicksPerSecond" ? "ticks" : "bytes";
  return {
    quota,
    retryable: true,
    retryAfterMs: Math.max(1, waitMs),
    message: quotaMessage(tenant, quota, value, `is used up${cost === undefined ? "" : ` (this batch has ${cost} ${unit})`}; this batch was not stored`, `retry it unchanged after ${Math.max(1, waitMs)} ms (publishers back off)`),
  };
}

/** A batch bringing more new symbols than this gateway may admit: past the quota (final), or past its share of what is left for now (retryable). */
function symbolRefusal(tenant: string, table: string, quota: number, have: { total: number; settled: number; pending: number }, fresh: readonly string[], gateways: number, may: number): QuotaRefusal {
  const brings = `this batch brings ${fresh.length} new one(s) to table ${table} (e.g. ${JSON.stringify(fresh[0])})`;
  const has = `the tenant has ${have.total} symbols across the cluster (${have.settled} in its shards, ${have.pending} admitted and not yet reported by their shard)`;
  if (have.total + fresh.length > quota) {
    return { quota: "symbols", retryable: false, message: quotaMessage(tenant, "symbols", quota, `would be passed: ${has} and ${brings}; this batch was not stored`, "send rows of known symbols only") };
  }
  // Below the quota, but the other gateways may be admitting new symbols too: this one takes its share per report interval.
  return {
    quota: "symbols",
    retryable: true,
    retryAfterMs: 500,
    message: quotaMessage(tenant, "symbols", quota, `leaves ${quota - have.total} new symbols across the cluster (${has}), shared by ${gateways} nodes: this node may admit ${may} more now and ${brings}; this batch was not stored`, "retry it unchanged after 500 ms (publishers back off)"),
  };
}

export type Charge = { readonly ok: true; readonly state: IngestQuotaState } | { readonly ok: false; readonly refusal: QuotaRefusal; readonly state: IngestQuotaState };

/**
 * Charges an admitted-so-far batch (`rows` ticks, `bytes` payload bytes, its
 * distinct `symbols` when the tenant has a symbols quota, its table having
 * `shards` shards) against the tenant's quotas at `nowMs`. All or nothing: a
 * refused batch takes no tokens.
 */
export function charge(s: IngestQuotaState, q: TenantQuotas, tenant: string, table: string, rows: number, bytes: number, symbols: readonly string[] | undefined, nowMs: number, shards = 1): Charge {
  if (!hasIngestQuota(q)) return { ok: true, state: s };
  const t = stateOf(s, tenant);
  let next: TenantIngestState = t;
  if (q.ingestTicksPerSecond !== undefined) {
    const rate = rateOf(q.ingestTicksPerSecond, q, t, "ticks");
    const b = t.ticks ?? fullBucket(rate, nowMs);
    const r = take(b, rate, rows, nowMs);
    if (!r.ok) return { ok: false, state: s, refusal: rateRefusal(tenant, "ingestTicksPerSecond", q.ingestTicksPerSecond, rows, r.waitMs) };
    next = { ...next, ticks: r.bucket };
  }
  if (q.ingestBytesPerSecond !== undefined) {
    const rate = rateOf(q.ingestBytesPerSecond, q, t, "bytes");
    const b = t.bytes ?? fullBucket(rate, nowMs);
    const r = take(b, rate, bytes, nowMs);
    if (!r.ok) return { ok: false, state: s, refusal: rateRefusal(tenant, "ingestBytesPerSecond", q.ingestBytesPerSecond, bytes, r.waitMs) };
    next = { ...next, bytes: r.bucket };
  }
  if (q.symbols !== undefined && symbols !== undefined) {
    const known = t.symbols ?? new Set<string>();
    const fresh = symbols.filter((sym) => !known.has(symbolKey(table, sym)));
    if (fresh.length > 0) {
      const have = symbolsOf(t, nowMs);
      const gateways = t.cluster?.gateways ?? 1;
      const view = t.symbolView ?? { total: have.total, since: 0 };
      const may = symbolShare(q.symbols, have.total, gateways, view.total, view.since);
      if (fresh.length > may) return { ok: false, state: s, refusal: symbolRefusal(tenant, table, q.symbols, have, fresh, gateways, may) };
      const pending = new Map<string, PendingSymbol>();
      // Symbols whose shard reported them by now leave the pending count (the shard's count holds them).
      const reported = reports(t);
      for (const [k, p] of t.pending ?? []) if (stillPending(p, nowMs, reported)) pending.set(k, p);
      for (const sym of fresh) pending.set(symbolKey(table, sym), { shard: shardUsageKey(table, bucketOf(sym, shards)), atMs: nowMs });
      next = { ...next, symbols: new Set([...known, ...fresh.map((sym) => symbolKey(table, sym))]), pending, symbolView: { total: view.total, since: view.since + fresh.length } };
    }
  }
  if (q.ingestTicksPerSecond !== undefined || q.ingestBytesPerSecond !== undefined) {
    const a = t.admitted ?? { ticks: 0, bytes: 0 };
    next = { ...next, admitted: { ticks: a.ticks + rows, bytes: a.bytes + bytes } };
  }
  return { ok: true, state: new Map(s).set(tenant, next) };
}

/**
 * The peers' rates and usage (share.ts) as of now: a tenant they no longer
 * name gets its whole quota back here. Symbols peers announced become known;
 * pending symbols their shard reported by `nowMs` (the ingest clock) are let
 * go, and this gateway's share of new symbols starts over from what is left.
 */
export function withPeers(s: IngestQuotaState, peers: ReadonlyMap<string, PeerRates>, usage: ReadonlyMap<string, PeerUsage> = new Map(), nowMs?: number): IngestQuotaState {
  const out = new Map(s);
  for (const [tenant, t] of s) {
    if (t.peers === undefined && t.cluster === undefined && t.symbolView === undefined) continue;
    const { peers: _p, cluster: _c, symbolView: _v, ...rest } = t;
    out.set(tenant, rest);
  }
  for (const [tenant, p] of peers) out.set(tenant, { ...stateOf(out, tenant), peers: p });
  for (const [tenant, u] of usage) {
    const t = stateOf(out, tenant);
    let symbols = t.symbols;
    if (symbols !== undefined && u.news.some((k) => !symbols!.has(k))) symbols = new Set([...symbols, ...u.news]);
    else if (symbols === undefined && u.news.length > 0) symbols = new Set(u.news);
    let next: TenantIngestState = { ...t, cluster: u, ...(symbols === undefined ? {} : { symbols }) };
    if (nowMs !== undefined && next.pending !== undefined) {
      const reported = reports(next);
      const live = [...next.pending].filter(([, p]) => stillPending(p, nowMs, reported));
      if (live.length < next.pending.size) next = { ...next, pending: new Map(live) };
    }
    // The share of new symbols per interval is set from the total now and what the peers reserved of theirs.
    out.set(tenant, { ...next, symbolView: { total: symbolsOf(next, nowMs).total + u.reserved, since: 0 } });
  }
  return out;
}

/**
 * What this node reports of a tenant besides rates (share.ts): its shards, its
 * pending symbols at `nowMs` and up to `maxNews` of them by name, and with a
 * `symbols` quota what it may still admit of its share (reserved).
 */
export function usageReport(s: IngestQuotaState, q: TenantQuotas, tenant: string, nowMs: number, maxNews = 2_000): Pick<TenantReport, "shards" | "pending" | "news" | "reserved"> {
  const t = s.get(tenant);
  if (t === undefined) return {};
  const out: { shards?: Record<string, ShardUsage>; pending?: number; news?: string[]; reserved?: number } = {};
  if (q.symbols !== undefined && t.symbolView !== undefined && t.cluster !== undefined && t.cluster.gateways > 1) {
    out.reserved = Math.max(0, reservedShare(q.symbols, t.cluster.gateways, t.symbolView.total) - t.symbolView.since);
  }
  if (t.shards !== undefined && t.shards.size > 0) out.shards = Object.fromEntries(t.shards);
  if (t.pending !== undefined && t.pending.size > 0) {
    const reported = reports(t);
    const live = [...t.pending].filter(([, p]) => stillPending(p, nowMs, reported)).map(([k]) => k);
    out.pending = live.length;
    out.news = maxNews > 0 ? live.slice(-maxNews) : [];
  }
  return out;
}

/** Per tenant with a rate quota: ticks and bytes admitted on this node so far (the node turns them into rates). */
export function admittedSoFar(s: IngestQuotaState): Map<string, { ticks: number; bytes: number }> {
  const out = new Map<string, { ticks: number; bytes: number }>();
  for (const [tenant, t] of s) if (t.admitted !== undefined) out.set(tenant, { ...t.admitted });
  return out;
}

/** Folds this node's measure of each tenant's shards into the state (known symbols only ever add). */
export function withUsage(s: IngestQuotaState, usage: ReadonlyMap<string, TenantUsage>): IngestQuotaState {
  const out = new Map(s);
  for (const [tenant, u] of usage) {
    const t = stateOf(s, tenant);
    let symbols = t.symbols;
    if (u.symbols !== undefined && u.symbols.size > 0) {
      const known = symbols ?? new Set<string>();
      let missing = false;
      for (const k of u.symbols) if (!known.has(k)) missing = true;
      if (missing) symbols = new Set([...known, ...u.symbols]);
    }
    out.set(tenant, { ...t, shards: u.shards, ...(symbols === undefined ? {} : { symbols }) });
  }
  return out;
}
