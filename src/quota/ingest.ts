// Ingest quotas of each tenant, as the gateway machine holds them (pure values):
// token buckets for ticks/s and bytes/s, the hot-set bytes and known symbols the
// node last reported, and the decisions over them. Tenants without a quota cost
// nothing here: no entry, no copy.
import type { QuotaName, TenantQuotas } from "../../protocols/tablespec.js";
import { fullBucket, refill, take } from "./bucket.js";
import type { Bucket, BucketRate } from "./bucket.js";
import { quotaMessage } from "./refusal.js";
import { shareOf } from "./share.js";
import type { PeerRates } from "./share.js";

export interface TenantIngestState {
  readonly ticks?: Bucket;
  readonly bytes?: Bucket;
  /** Hot-set bytes of the tenant's shards on this node, as last reported. */
  readonly hotBytes: number;
  /** Known `table\0symbol` keys (only with a symbols quota): reported by the shards, plus those admitted since. */
  readonly symbols?: ReadonlySet<string>;
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

/** What the node reports of a tenant's shards on it. */
export interface TenantUsage {
  readonly hotBytes: number;
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

const stateOf = (s: IngestQuotaState, tenant: string): TenantIngestState => s.get(tenant) ?? { hotBytes: 0 };

/**
 * The cheap checks before a batch is decoded: hot bytes over the quota, or a
 * rate bucket with nothing in it. A flood over its rate is refused here, at
 * the cost of a map lookup, so it does not take the decoding time of others.
 */
export function precheck(s: IngestQuotaState, q: TenantQuotas, tenant: string, nowMs: number): QuotaRefusal | undefined {
  if (!hasIngestQuota(q)) return undefined;
  const t = stateOf(s, tenant);
  if (q.hotBytes !== undefined && t.hotBytes >= q.hotBytes) {
    return {
      quota: "hotBytes",
      retryable: true,
      message: quotaMessage(
        tenant,
        "hotBytes",
        q.hotBytes,
        `is reached (its hot sets on this node hold ${t.hotBytes} bytes); this batch was not stored and nothing already acknowledged was dropped`,
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

export type Charge = { readonly ok: true; readonly state: IngestQuotaState } | { readonly ok: false; readonly refusal: QuotaRefusal; readonly state: IngestQuotaState };

/**
 * Charges an admitted-so-far batch (`rows` ticks, `bytes` payload bytes, its
 * distinct `symbols` when the tenant has a symbols quota) against the tenant's
 * quotas at `nowMs`. All or nothing: a refused batch takes no tokens.
 */
export function charge(s: IngestQuotaState, q: TenantQuotas, tenant: string, table: string, rows: number, bytes: number, symbols: readonly string[] | undefined, nowMs: number): Charge {
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
    const fresh = symbols.map((sym) => symbolKey(table, sym)).filter((k) => !known.has(k));
    if (fresh.length > 0) {
      if (known.size + fresh.length > q.symbols) {
        return {
          ok: false,
          state: s,
          refusal: {
            quota: "symbols",
            retryable: false,
            message: quotaMessage(
              tenant,
              "symbols",
              q.symbols,
              `would be passed: the tenant has ${known.size} symbols and this batch brings ${fresh.length} new one(s) to table ${table} (e.g. ${JSON.stringify(fresh[0]!.split("\0")[1])}); this batch was not stored`,
              "send rows of known symbols only",
            ),
          },
        };
      }
      next = { ...next, symbols: new Set([...known, ...fresh]) };
    }
  }
  if (q.ingestTicksPerSecond !== undefined || q.ingestBytesPerSecond !== undefined) {
    const a = t.admitted ?? { ticks: 0, bytes: 0 };
    next = { ...next, admitted: { ticks: a.ticks + rows, bytes: a.bytes + bytes } };
  }
  return { ok: true, state: new Map(s).set(tenant, next) };
}

/** The peers' rates (share.ts) as of now: a tenant they no longer name gets its whole quota back here. */
export function withPeers(s: IngestQuotaState, peers: ReadonlyMap<string, PeerRates>): IngestQuotaState {
  const out = new Map(s);
  for (const [tenant, t] of s) {
    if (t.peers !== undefined && !peers.has(tenant)) {
      const { peers: _gone, ...rest } = t;
      out.set(tenant, rest);
    }
  }
  for (const [tenant, p] of peers) out.set(tenant, { ...stateOf(s, tenant), peers: p });
  return out;
}

/** Per tenant with a rate quota: ticks and bytes admitted on this node so far (the node turns them into rates). */
export function admittedSoFar(s: IngestQuotaState): Map<string, { ticks: number; bytes: number }> {
  const out = new Map<string, { ticks: number; bytes: number }>();
  for (const [tenant, t] of s) if (t.admitted !== undefined) out.set(tenant, { ...t.admitted });
  return out;
}

/** Folds the node's report of each tenant's hot bytes and symbols into the state (symbols only ever add). */
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
    out.set(tenant, { ...t, hotBytes: u.hotBytes, ...(symbols === undefined ? {} : { symbols }) });
  }
  return out;
}
