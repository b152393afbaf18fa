// The node's Prometheus metrics: the gateway's ingest counters and, per shard,
// the hot set's figures and its sink's. Read on every /metrics scrape.
import type { ShardAddress } from "../../protocols/subjects.js";
import type { LocalShardHost } from "./shard/host.js";
import { promText } from "./http.js";
import type { Metric } from "./http.js";

const shardLabels = (s: ShardAddress): Record<string, string> => ({ tenant: s.tenant, table: s.table, bucket: String(s.bucket) });

/** The gateway's counters (accepted/rejected batches and rows, ...) plus the source's fire-and-forget failures. */
export type IngestStats = () => Record<string, number>;

export function nodeMetrics(ingest: IngestStats, shards: LocalShardHost): () => string {
  return () => {
    const s = ingest();
    const hosted = shards.all();
    const perShard = (help: string, type: Metric["type"], value: (h: (typeof hosted)[number]) => number): Metric[] =>
      hosted.map((h) => ({ help, type, value: value(h), labels: shardLabels(h.shard) }));
    const sinks = hosted.flatMap((h) => (h.sink === undefined ? [] : [{ shard: h.shard, k: h.sink.status() }]));
    const perSink = (help: string, type: Metric["type"], value: (k: (typeof sinks)[number]["k"]) => number): Metric[] =>
      sinks.map(({ shard, k }) => ({ help, type, value: value(k), labels: shardLabels(shard) }));
    return promText({
      px_ingest_batches_accepted_total: { help: "Ingest batches stored in the WAL", type: "counter", value: s.acceptedBatches ?? 0 },
      px_ingest_rows_accepted_total: { help: "Ticks stored in the WAL", type: "counter", value: s.acceptedRows ?? 0 },
      px_ingest_batches_rejected_total: { help: "Ingest batches rejected as invalid", type: "counter", value: s.rejectedBatches ?? 0 },
      px_ingest_append_failures_total: { help: "Ingest batches the WAL failed to store", type: "counter", value: s.failedAppends ?? 0 },
      px_ingest_throttled_total: { help: "Ingest batches refused by back-pressure", type: "counter", value: s.throttledBatches ?? 0 },
      px_ingest_fire_and_forget_failures_total: { help: "Failed fire-and-forget batches", type: "counter", value: s.fireAndForgetFailures ?? 0 },
      px_shard_applied_lsn: perShard("Last WAL LSN applied to the hot set", "gauge", (h) => h.runtime.stats.appliedLsn),
      px_shard_rows: perShard("Rows in the hot set", "gauge", (h) => h.runtime.stats.rows),
      px_shard_bytes: perShard("Bytes of the hot set", "gauge", (h) => h.runtime.stats.bytes),
      px_shard_persisted_lsn: perShard("P: WAL LSN up to which the shard is in ClickHouse (as the hot set last evicted)", "gauge", (h) => h.runtime.stats.persistedLsn),
      px_shard_t_persisted_micros: perShard("T_persisted: newest tick time covered by P, microseconds", "gauge", (h) => h.runtime.stats.tPersistedMicros),
      px_shard_horizon_micros: perShard("H: every row with ts >= H is in RAM, microseconds", "gauge", (h) => h.runtime.stats.horizonMicros),
      px_shard_lag_records: perShard("WAL records applied to RAM and not yet persisted", "gauge", (h) => h.runtime.stats.lagRecords),
      px_shard_evicted_rows_total: perShard("Rows evicted from RAM after ClickHouse had them", "counter", (h) => h.runtime.stats.evictedRows),
      px_sink_lag_ms: perSink("Age of the oldest received record not yet persisted", "gauge", (k) => k.lagMs),
      px_sink_pending_rows: perSink("Rows received by the sink and not yet persisted", "gauge", (k) => k.pendingRows),
      px_sink_inserted_rows_total: perSink("Rows the sink inserted into ClickHouse", "counter", (k) => k.insertedRows),
      px_sink_already_landed_rows_total: perSink("Rows a retry found already in ClickHouse and did not send again", "counter", (k) => k.alreadyLandedRows),
      px_sink_failures_total: perSink("Failed sink attempts (recovery, flush)", "counter", (k) => k.failures),
      px_sink_fenced: perSink("1 once the sink lost its lease (revoked or lapsed) and stopped writing", "gauge", (k) => (k.fenced ? 1 : 0)),
      px_sink_refused_watermarks_total: perShard(
        "Watermarks refused: an older lease revision than seen, or a P ClickHouse does not hold",
        "counter",
        (h) => h.runtime.refusedWatermarks.count + h.runtime.stats.refusedWatermarks + (h.sink?.status().refusedWatermarks ?? 0),
      ),
      px_sink_degraded: perSink("1 while the sink keeps failing (it keeps retrying)", "gauge", (k) => (k.degraded ? 1 : 0)),
    });
  };
}
