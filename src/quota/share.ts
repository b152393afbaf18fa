// A tenant's quotas hold for the whole cluster, not per node: every node tells
// the others, twice a second, over one subject (`px.node._quota.rates`), what
// it uses of each quota'd tenant: the ticks and bytes per second its gateway
// admitted, the queries it coordinates now, the hot bytes and symbol count of
// each shard it hosts, and the symbols its gateway admitted that their shard
// has not reported yet. Rates: a gateway grants what the others leave of the
// quota, but never less than an even share (quota / gateways). The floor keeps
// the exchange stable: two gateways flooded alike settle at half each instead
// of swinging between all and nothing, and one that starts getting traffic is
// never starved while its peers' reports catch up. Over-admission is bounded
// by one report interval after a shift of traffic (and the first interval
// after start, when a gateway has heard from no peer yet). The other quotas'
// rules are in cluster.ts. Pure: the node wires it to NATS.

/** Hot bytes and distinct symbols of one shard (a table's bucket) on the node that hosts it. */
export interface ShardUsage {
  readonly bytes: number;
  readonly symbols: number;
}

/** What one node reports of one tenant. Fields after `bytes` are optional: a report of an older node has none. */
export interface TenantReport {
  readonly ticks: number;
  readonly bytes: number;
  /** Queries of the tenant this node coordinates now (fan-out parts it serves for others are not counted). */
  readonly queries?: number;
  /** Queries calling user-defined functions this node admitted per second (udfQueriesPerSecond). */
  readonly udf?: number;
  /** Per hosted shard, keyed `table/bucket` (shardUsageKey). */
  readonly shards?: Readonly<Record<string, ShardUsage>>;
  /** Symbols this gateway admitted as new that their shard's report may not hold yet. */
  readonly pending?: number;
  /** Some of those symbols (`table\0symbol`), so the other gateways know them too (capped: see quotashare.ts). */
  readonly news?: readonly string[];
  /** New symbols this gateway may still admit before its next report (its share: cluster.ts symbolShare), held back by the others. */
  readonly reserved?: number;
}

/** One node's report: what it admitted and uses per tenant. */
export interface RateReport {
  readonly node: string;
  readonly tenants: Readonly<Record<string, TenantReport>>;
}

/** What a gateway's peers admit for one tenant, and how many gateways (with this one) share the quota. */
export interface PeerRates {
  readonly ticks: number;
  readonly bytes: number;
  readonly gateways: number;
}

/** What the peers use of one tenant's other quotas (summed over the live peers; shards at most once each). */
export interface PeerUsage {
  /** Nodes sharing the quotas: the live peers and this one. */
  readonly gateways: number;
  readonly queries: number;
  /** User-defined-function queries per second the peers admit. */
  readonly udf: number;
  readonly shards: ReadonlyMap<string, ShardUsage>;
  readonly pending: number;
  readonly news: readonly string[];
  readonly reserved: number;
}

/** The key of a shard in reports: `table/bucket` (table names hold no `/`). */
export const shardUsageKey = (table: string, bucket: number): string => `${table}/${bucket}`;

/**
 * The rate a node grants of a cluster-wide rate `quota` when the other nodes
 * admit `othersAdmit` of it and `nodes` share it: what they leave, never less
 * than an even share (the rule of every rate quota).
 */
export function rateShare(quota: number, othersAdmit: number, nodes: number): number {
  return nodes <= 1 ? quota : Math.max(quota / nodes, quota - othersAdmit);
}

/** The rate this gateway grants of a cluster-wide ingest `quota` when its peers admit `peers` of it. */
export function shareOf(quota: number, peers: PeerRates | undefined, unit: "ticks" | "bytes"): number {
  return peers === undefined ? quota : rateShare(quota, peers[unit], peers.gateways);
}

const count = (v: unknown): v is number => typeof v === "number" && v >= 0 && Number.isFinite(v);

/** One tenant's entry, or undefined when any field is malformed (new fields are optional, never loosely typed). */
function parseTenant(r: unknown): TenantReport | undefined {
  if (typeof r !== "object" || r === null) return undefined;
  const { ticks, bytes, queries, udf, shards, pending, news, reserved } = r as Record<string, unknown>;
  if (!count(ticks) || !count(bytes)) return undefined;
  const out: { -readonly [K in keyof TenantReport]: TenantReport[K] } = { ticks, bytes };
  // The optional counts: absent is fine, present must be a count.
  const optional = { queries, udf, pending, reserved };
  for (const [k, v] of Object.entries(optional) as [keyof typeof optional, unknown][]) {
    if (v === undefined) continue;
    if (!count(v)) return undefined;
    out[k] = v;
  }
  if (shards !== undefined) {
    if (typeof shards !== "object" || shards === null || Array.isArray(shards)) return undefined;
    const s: Record<string, ShardUsage> = {};
    for (const [k, u] of Object.entries(shards)) {
      const { bytes: b, symbols: n } = (u ?? {}) as { bytes?: unknown; symbols?: unknown };
      if (!count(b) || !count(n)) return undefined;
      s[k] = { bytes: b, symbols: n };
    }
    out.shards = s;
  }
  if (news !== undefined) {
    if (!Array.isArray(news) || !news.every((k) => typeof k === "string")) return undefined;
    out.news = news as string[];
  }
  return out;
}

/** Parses a report off the wire; undefined for anything malformed (a report is advisory: a bad one is dropped). */
export function parseRateReport(text: string): RateReport | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const { node, tenants } = v as { node?: unknown; tenants?: unknown };
  if (typeof node !== "string" || node === "" || typeof tenants !== "object" || tenants === null) return undefined;
  const out: Record<string, TenantReport> = {};
  for (const [t, r] of Object.entries(tenants)) {
    const p = parseTenant(r);
    if (p === undefined) return undefined;
    out[t] = p;
  }
  return { node, tenants: out };
}

/**
 * The peers' last reports, each kept `maxAgeMs` after it arrived (a node
 * that stopped reporting, dead or cut off, stops counting).
 */
export class PeerReports {
  private readonly last = new Map<string, { readonly report: RateReport; readonly atMs: number }>();

  constructor(
    private readonly self: string,
    private readonly maxAgeMs = 2_000,
  ) {}

  add(r: RateReport, nowMs: number): void {
    if (r.node !== this.self) this.last.set(r.node, { report: r, atMs: nowMs });
  }

  private live(nowMs: number): RateReport[] {
    const live: RateReport[] = [];
    for (const [node, e] of this.last) {
      if (nowMs - e.atMs > this.maxAgeMs) this.last.delete(node);
      else live.push(e.report);
    }
    return live;
  }

  /** Per tenant: the sum of the live peers' rates and the number of gateways (live peers + this one). */
  rates(nowMs: number): Map<string, PeerRates> {
    const live = this.live(nowMs);
    const sums = new Map<string, { ticks: number; bytes: number }>();
    for (const r of live) {
      for (const [t, x] of Object.entries(r.tenants)) {
        const s = sums.get(t) ?? { ticks: 0, bytes: 0 };
        sums.set(t, { ticks: s.ticks + x.ticks, bytes: s.bytes + x.bytes });
      }
    }
    const gateways = live.length + 1;
    return new Map([...sums].map(([t, s]) => [t, { ...s, gateways }]));
  }

  /**
   * Per tenant: the live peers' queries, pending and reserved symbols summed, their
   * shards (a shard two peers report, e.g. while it moves, counts once, at the
   * larger figures) and the symbols they announced.
   */
  usage(nowMs: number): Map<string, PeerUsage> {
    const live = this.live(nowMs);
    const gateways = live.length + 1;
    const out = new Map<string, { gateways: number; queries: number; udf: number; shards: Map<string, ShardUsage>; pending: number; news: string[]; reserved: number }>();
    for (const r of live) {
      for (const [t, x] of Object.entries(r.tenants)) {
        let u = out.get(t);
        if (u === undefined) out.set(t, (u = { gateways, queries: 0, udf: 0, shards: new Map(), pending: 0, news: [], reserved: 0 }));
        u.queries += x.queries ?? 0;
        u.udf += x.udf ?? 0;
        u.pending += x.pending ?? 0;
        u.reserved += x.reserved ?? 0;
        for (const [k, s] of Object.entries(x.shards ?? {})) u.shards.set(k, maxUsage(u.shards.get(k), s));
        if (x.news !== undefined) u.news.push(...x.news);
      }
    }
    return out;
  }
}

/** The larger figures of two reports of one shard. */
export const maxUsage = (a: ShardUsage | undefined, b: ShardUsage): ShardUsage => (a === undefined ? b : { bytes: Math.max(a.bytes, b.bytes), symbols: Math.max(a.symbols, b.symbols) });
