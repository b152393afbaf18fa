// Cluster-wide rules of the quotas that are not rates (pure, over the values
// the report exchange of share.ts brings):
// - udfQueriesPerSecond: a rate, shared as the ingest rates are (udfShare).
// - concurrentQueries: a node admits a query while the queries it coordinates
//   stay below what its peers leave of the quota, never below an even share
//   (rounded down), like shareOf; fan-out parts count on their coordinator only.
// - hotBytes: the hot bytes of the tenant's shards, each shard counted once
//   (hosted here or reported by a peer; a shard two nodes report, e.g. on a
//   move or with every node holding every shard, at the larger figure).
// - symbols: the shards' symbol counts (a table's symbols are partitioned over
//   its shards, so counts add up), plus the symbols gateways admitted as new
//   that their shard has not reported yet ("pending": kept by the admitting
//   gateway `PENDING_MS` and then until someone reports that shard). A gateway
//   knows a symbol when one of its shards holds it, it admitted it, or a peer
//   announced it (the `news` of a report); any other symbol of the batch is new.
//   Below the quota, each gateway admits new symbols from an even share of
//   what is left, taken at each exchange and reported at once as reserved,
//   so what one admits between its reports is held back by the others.
import { rateShare } from "./share.js";
import type { PeerUsage, ShardUsage } from "./share.js";

/** How long an admitted new symbol counts as pending: its shard applies it and reports well within 4 report intervals. */
export const PENDING_MS = 2_000;

/** A symbol this gateway admitted as new: its shard (`table/bucket`) and when. */
export interface PendingSymbol {
  readonly shard: string;
  readonly atMs: number;
}

/** Queries this node may coordinate of a cluster-wide `quota` when its peers run `peers.queries`. */
export function queryShare(quota: number, peers: Pick<PeerUsage, "queries" | "gateways"> | undefined): number {
  if (peers === undefined || peers.gateways <= 1) return quota;
  return Math.max(Math.floor(quota / peers.gateways), quota - peers.queries);
}

/**
 * UDF queries per second this node may admit of a cluster-wide
 * `udfQueriesPerSecond` when its peers admit `peers.udf`: what they leave,
 * never less than an even share (the rule of the ingest rates, share.ts).
 */
export function udfShare(quota: number, peers: Pick<PeerUsage, "udf" | "gateways"> | undefined): number {
  return peers === undefined ? quota : rateShare(quota, peers.udf, peers.gateways);
}

/** The tenant's shards over the cluster, each once: hot bytes and symbols summed. */
export function clusterShards(own: ReadonlyMap<string, ShardUsage> | undefined, peers: ReadonlyMap<string, ShardUsage> | undefined): ShardUsage {
  let bytes = 0;
  let symbols = 0;
  for (const [k, u] of own ?? []) {
    const p = peers?.get(k);
    bytes += Math.max(u.bytes, p?.bytes ?? 0);
    symbols += Math.max(u.symbols, p?.symbols ?? 0);
  }
  for (const [k, p] of peers ?? []) {
    if (own?.has(k) === true) continue;
    bytes += p.bytes;
    symbols += p.symbols;
  }
  return { bytes, symbols };
}

/** Whether a pending symbol still counts at `nowMs`: until PENDING_MS passed and some node reports its shard. */
export function stillPending(p: PendingSymbol, nowMs: number, reported: (shard: string) => boolean, pendingMs = PENDING_MS): boolean {
  return nowMs - p.atMs < pendingMs || !reported(p.shard);
}

/**
 * New symbols this gateway may admit now of a cluster-wide `quota`, when the
 * cluster holds `total` (shards + every gateway's pending), `viewTotal` was
 * held or reserved by others at the last exchange, and `sinceView` were
 * admitted here since: all that is left when alone; with peers at most an
 * even share (rounded up) of what the last exchange left, so gateways flooded
 * alike do not each take all of it.
 */
export function symbolShare(quota: number, total: number, gateways: number, viewTotal: number, sinceView: number): number {
  const left = Math.max(0, quota - total);
  if (gateways <= 1) return left;
  return Math.min(left, Math.max(0, reservedShare(quota, gateways, viewTotal) - sinceView));
}

/** This gateway's share per report interval: what the last exchange left, split evenly (rounded up). */
export const reservedShare = (quota: number, gateways: number, viewTotal: number): number => Math.ceil(Math.max(0, quota - viewTotal) / Math.max(1, gateways));
