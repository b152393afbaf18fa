// What the wiring reports to the node's metrics, per batch, flush, snapshot or
// query (never per tick). NodeMetrics (metrics.ts) implements it; absent when
// PX_METRICS=off. Kept apart so the shard host and runtimes need not import the registry.
import type { ShardAddress } from "../../protocols/subjects.js";

/** Where the query's time went: the hot set only, ClickHouse (cold) or parts on other nodes (fanout). */
export type QueryTier = "hot" | "cold" | "fanout";

/** What the wiring reports; every call is per batch, flush, snapshot or query, never per tick. */
export interface Meter {
  ingestReceived(tenant: string, table: string, bytes: number): void;
  /** The gateway answered a batch: `code` is undefined for an ack, else the refusal's code. */
  ingestReplied(tenant: string, table: string, seconds: number, code: string | undefined): void;
  walAppended(tenant: string, table: string, seconds: number, records: number, duplicates: number): void;
  /** A batch of WAL records reached the hot set `lagSeconds` after JetStream stored the newest of them. */
  shardApplied(shard: ShardAddress, lagSeconds: number): void;
  /** A verified flush: its duration and the age of its oldest record when it became durable. */
  sinkFlushed(shard: ShardAddress, seconds: number, persistLagSeconds: number): void;
  snapshotWritten(shard: ShardAddress, seconds: number, ok: boolean): void;
  queryRan(tenant: string, op: string, tier: QueryTier, seconds: number): void;
  /** A query part answered by ClickHouse or another node (tier cold / fanout). */
  queryTier(tenant: string, tier: QueryTier, seconds: number): void;
  queryFailed(tenant: string, code: string): void;
}
