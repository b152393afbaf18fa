// A tenant's ingest rate quotas hold for the whole cluster, not per gateway:
// every gateway (node) tells the others, twice a second, the ticks and bytes
// per second it admitted for each tenant with a rate quota, and grants the
// tenant what the others leave of the quota, but never less than an even
// share (quota / gateways). The floor keeps the exchange stable: two gateways
// flooded alike settle at half each instead of swinging between all and
// nothing, and one that starts getting traffic is never starved while its
// peers' reports catch up. Over-admission is bounded by one report interval
// after a shift of traffic (and the first interval after start, when a
// gateway has heard from no peer yet). Pure: the node wires it to NATS.

/** One gateway's report: what it admitted per tenant, per second, over the last window. */
export interface RateReport {
  readonly node: string;
  readonly tenants: Readonly<Record<string, { readonly ticks: number; readonly bytes: number }>>;
}

/** What a gateway's peers admit for one tenant, and how many gateways (with this one) share the quota. */
export interface PeerRates {
  readonly ticks: number;
  readonly bytes: number;
  readonly gateways: number;
}

/** The rate this gateway grants of a cluster-wide `quota` when its peers admit `peers` of it. */
export function shareOf(quota: number, peers: PeerRates | undefined, unit: "ticks" | "bytes"): number {
  if (peers === undefined || peers.gateways <= 1) return quota;
  return Math.max(quota / peers.gateways, quota - peers[unit]);
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
  const out: Record<string, { ticks: number; bytes: number }> = {};
  for (const [t, r] of Object.entries(tenants)) {
    const { ticks, bytes } = (r ?? {}) as { ticks?: unknown; bytes?: unknown };
    if (typeof ticks !== "number" || typeof bytes !== "number" || !(ticks >= 0) || !(bytes >= 0) || !Number.isFinite(ticks + bytes)) return undefined;
    out[t] = { ticks, bytes };
  }
  return { node, tenants: out };
}

/**
 * The peers' last reports, each kept `maxAgeMs` after it arrived (a gateway
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

  /** Per tenant: the sum of the live peers' rates and the number of gateways (live peers + this one). */
  rates(nowMs: number): Map<string, PeerRates> {
    const live: RateReport[] = [];
    for (const [node, e] of this.last) {
      if (nowMs - e.atMs > this.maxAgeMs) this.last.delete(node);
      else live.push(e.report);
    }
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
}
