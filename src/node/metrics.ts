// The node's Prometheus metrics (prom-client, one Registry per node so several
// nodes in one test process stay apart). Two kinds: histograms and counters the
// wiring observes once per batch, flush, snapshot or query through `Meter`, and
// figures read from the gateway, shards and sinks on each scrape (metricsscrape.ts).
// Labels are bounded: tenant, table, bucket, op, tier, code, state; never symbol.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ShardAddress } from "../../protocols/subjects.js";
import type { ControlPlane } from "./control/index.js";
import { controlFamilies } from "./controlmetrics.js";
import { feedFamilies } from "./feedmetrics.js";
import type { FeedView } from "./feed/routes.js";
import { scrapeFamilies } from "./metricsscrape.js";
import type { ScrapeSources } from "./metricsscrape.js";
import type { Meter, QueryTier } from "./meter.js";

/** Seconds: sub-millisecond acks up to slow ClickHouse inserts. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds: lags run longer than latencies (a sink batches for up to seconds, ClickHouse may be down). */
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** PX_METRICS=off (benchmarks' comparison run): no per-batch observation at all; /metrics still answers. */
export const metricsEnabled = (): boolean => process.env.PX_METRICS !== "off";

export class NodeMetrics implements Meter {
  readonly registry = new Registry();
  private readonly ingestAck: Histogram<"tenant" | "table">;
  private readonly walAppend: Histogram<"tenant" | "table">;
  private readonly applyLag: Histogram<"tenant" | "table" | "bucket">;
  private readonly sinkFlush: Histogram<"tenant" | "table" | "bucket">;
  private readonly persistLag: Histogram<"tenant" | "table" | "bucket">;
  private readonly snapshot: Histogram<"tenant" | "table" | "bucket">;
  private readonly query: Histogram<"tenant" | "op" | "tier">;
  private readonly queryPart: Histogram<"tenant" | "tier">;
  private readonly bytes: Counter<"tenant" | "table">;
  private readonly rejects: Counter<"tenant" | "table" | "code">;
  private readonly walRecords: Counter<"tenant" | "table">;
  private readonly duplicates: Counter<"tenant" | "table">;
  private readonly snapshotFailures: Counter<"tenant" | "table" | "bucket">;
  private readonly queryErrors: Counter<"tenant" | "code">;

  constructor(nodeId: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Which node a target is (Prometheus' instance label is only its address); also counts the nodes up.
    new Gauge({ name: "px_node_info", help: "1 per running Proxist node, labelled with its id", labelNames: ["node_id"], registers }).set({ node_id: nodeId }, 1);
    const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets = LATENCY_BUCKETS): Histogram<L> =>
      new Histogram<L>({ name, help, labelNames, buckets, registers });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> => new Counter<L>({ name, help, labelNames, registers });
    const shardLabels = ["tenant", "table", "bucket"] as const;
    this.ingestAck = histogram("px_ingest_ack_seconds", "Time from a batch's arrival at the gateway to its answer (ack or refusal)", ["tenant", "table"]);
    this.walAppend = histogram("px_wal_append_seconds", "Time JetStream took to store every record of a batch", ["tenant", "table"]);
    this.applyLag = histogram("px_shard_apply_lag_seconds", "Time from JetStream storing a record to the hot set applying it (per batch, newest record)", shardLabels, LAG_BUCKETS);
    this.sinkFlush = histogram("px_sink_flush_seconds", "Duration of a verified sink flush (plan, landed check, INSERTs)", shardLabels);
    this.persistLag = histogram("px_sink_persistence_lag_seconds", "Age of a flush's oldest record when ClickHouse had it", shardLabels, LAG_BUCKETS);
    this.snapshot = histogram("px_snapshot_seconds", "Time to write a hot-set snapshot", shardLabels, LAG_BUCKETS);
    this.query = histogram("px_query_seconds", "Query latency by operator and the tiers it read (hot only, cold: ClickHouse, fanout: other nodes)", ["tenant", "op", "tier"]);
    this.queryPart = histogram("px_query_tier_seconds", "Latency of one cold read (ClickHouse) or one part on another node (fanout)", ["tenant", "tier"]);
    this.bytes = counter("px_ingest_bytes_total", "Payload bytes of ingest batches received", ["tenant", "table"]);
    this.rejects = counter("px_ingest_rejects_total", "Ingest batches refused, by error code", ["tenant", "table", "code"]);
    this.walRecords = counter("px_wal_records_total", "WAL records appended (one per bucket a batch touches)", ["tenant", "table"]);
    this.duplicates = counter("px_wal_duplicates_skipped_total", "WAL appends JetStream recognised as retries of a stored record (not stored again)", ["tenant", "table"]);
    this.snapshotFailures = counter("px_snapshot_failures_total", "Snapshots that failed", shardLabels);
    this.queryErrors = counter("px_query_errors_total", "Queries that failed, by error code", ["tenant", "code"]);
  }

  /** Registers the scrape-time figures (gateway counters, shard and sink gauges, actor states). */
  watch(sources: ScrapeSources): this {
    scrapeFamilies(this.registry, sources);
    return this;
  }

  /** Registers the materialized feeds' figures (GET /v1/feeds's, per feed). */
  watchFeeds(feeds: () => readonly FeedView[]): this {
    feedFamilies(this.registry, feeds);
    return this;
  }

  /** Registers the control plane's figures (assigned mode only: a single node has no controller). */
  watchControl(control: ControlPlane): this {
    controlFamilies(this.registry, control);
    return this;
  }

  /** The exposition text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  ingestReceived(tenant: string, table: string, bytes: number): void {
    this.bytes.inc({ tenant, table }, bytes);
  }

  ingestReplied(tenant: string, table: string, seconds: number, code: string | undefined): void {
    this.ingestAck.observe({ tenant, table }, seconds);
    if (code !== undefined) this.rejects.inc({ tenant, table, code });
  }

  walAppended(tenant: string, table: string, seconds: number, records: number, duplicates: number): void {
    this.walAppend.observe({ tenant, table }, seconds);
    this.walRecords.inc({ tenant, table }, records);
    if (duplicates > 0) this.duplicates.inc({ tenant, table }, duplicates);
  }

  shardApplied(shard: ShardAddress, lagSeconds: number): void {
    this.applyLag.observe(labelsOf(shard), Math.max(0, lagSeconds));
  }

  sinkFlushed(shard: ShardAddress, seconds: number, persistLagSeconds: number): void {
    const l = labelsOf(shard);
    this.sinkFlush.observe(l, seconds);
    this.persistLag.observe(l, Math.max(0, persistLagSeconds));
  }

  snapshotWritten(shard: ShardAddress, seconds: number, ok: boolean): void {
    if (ok) this.snapshot.observe(labelsOf(shard), seconds);
    else this.snapshotFailures.inc(labelsOf(shard));
  }

  queryRan(tenant: string, op: string, tier: QueryTier, seconds: number): void {
    this.query.observe({ tenant, op, tier }, seconds);
  }

  queryTier(tenant: string, tier: QueryTier, seconds: number): void {
    this.queryPart.observe({ tenant, tier }, seconds);
  }

  queryFailed(tenant: string, code: string): void {
    this.queryErrors.inc({ tenant, code });
  }
}

/** The shard labels, in the order the exposition shows them. */
export const labelsOf = (s: ShardAddress): { tenant: string; table: string; bucket: string } => ({ tenant: s.tenant, table: s.table, bucket: String(s.bucket) });
