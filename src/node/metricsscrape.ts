// Figures read on each /metrics scrape: the gateway's counters and state, and
// per hosted shard its hot set, watermarks, sink and actor states. Each family
// resets before it is filled, so a shard that moved away leaves no stale series.
import { Counter, Gauge } from "prom-client";
import type { Registry } from "prom-client";
import type { AnyStateMachine } from "xstate";
import { gatewayMachine } from "../../actors/gateway.js";
import { shardMachine } from "../../actors/shard.js";
import { sinkMachine, sinkStateName } from "../../actors/sink.js";
import { shardLagMs, walGapOf } from "./shard/host.js";
import type { HostedShard, LocalShardHost } from "./shard/host.js";
import type { SinkStatus } from "./sink/runtime.js";

/** The gateway's counters (accepted/rejected batches and rows, ...) plus the source's fire-and-forget failures. */
export type IngestStats = () => Record<string, number>;

export interface ScrapeSources {
  readonly ingest: IngestStats;
  readonly gatewayState: () => string;
  readonly shards: LocalShardHost;
  /** Each tenant's WAL stream as JetStream reports it (every node reports the same streams: dashboards take max by tenant). */
  readonly walStreams?: () => Promise<readonly WalStreamFigures[]>;
  /** Why the WAL is full, while the gateway's last append was refused as full. */
  readonly walFull?: () => string | undefined;
}

export interface WalStreamFigures {
  readonly tenant: string;
  readonly bytes: number;
  readonly records: number;
  /** The stream's byte limit (-1: none). */
  readonly maxBytes: number;
  readonly lastLsn: number;
}

type ShardLabels = "tenant" | "table" | "bucket";
const SHARD: readonly ShardLabels[] = ["tenant", "table", "bucket"];
const labelsOf = (h: HostedShard): Record<ShardLabels, string> => ({ tenant: h.shard.tenant, table: h.shard.table, bucket: String(h.shard.bucket) });

/** Every state name a machine's snapshot can show, as `format` spells a `{ parent: child }` value. */
function stateNames(machine: AnyStateMachine, format: (value: unknown) => string): string[] {
  const names = new Set<string>();
  for (const [key, node] of Object.entries(machine.root.states)) {
    const children = Object.keys(node.states);
    if (children.length === 0) names.add(format(key));
    for (const c of children) names.add(format({ [key]: c }));
  }
  return [...names];
}

const shardStateOf = (v: unknown): string => (typeof v === "string" ? v : Object.entries(v as object).map(([k, s]) => `${k}.${String(s)}`).join(","));
const SHARD_STATES = stateNames(shardMachine, shardStateOf);
const SINK_STATES = stateNames(sinkMachine, sinkStateName);
const GATEWAY_STATES = stateNames(gatewayMachine, (v) => String(v));

const GATEWAY_COUNTERS: readonly (readonly [string, string, string])[] = [
  ["px_ingest_batches_accepted_total", "Ingest batches stored in the WAL", "acceptedBatches"],
  ["px_ingest_rows_accepted_total", "Ticks stored in the WAL", "acceptedRows"],
  ["px_ingest_batches_rejected_total", "Ingest batches rejected as invalid", "rejectedBatches"],
  ["px_ingest_append_failures_total", "Ingest batches the WAL failed to store", "failedAppends"],
  ["px_ingest_throttled_total", "Ingest batches refused by back-pressure", "throttledBatches"],
  ["px_ingest_quota_refused_total", "Ingest batches refused for a tenant quota", "quotaRefusedBatches"],
  ["px_ingest_fire_and_forget_failures_total", "Failed fire-and-forget batches", "fireAndForgetFailures"],
];

export function scrapeFamilies(registry: Registry, src: ScrapeSources): void {
  const registers = [registry];
  for (const [name, help, key] of GATEWAY_COUNTERS) {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(src.ingest()[key] ?? 0);
      },
    });
  }
  const oneOf = (name: string, help: string, labelNames: readonly string[], states: readonly string[], fill: (set: (labels: Record<string, string>, current: string) => void) => void): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        fill((labels, current) => {
          // One series per state, 1 for the current one: `sum by (state)` counts shards per state.
          for (const s of states.includes(current) ? states : [...states, current]) this.set({ ...labels, state: s }, s === current ? 1 : 0);
        });
      },
    });
  };
  new Gauge({
    name: "px_wal_full",
    help: "1 while the WAL refuses appends because it is full (ingest answers RESOURCE_EXHAUSTED naming the cause)",
    registers,
    collect() {
      this.set(src.walFull?.() === undefined ? 0 : 1);
    },
  });
  oneOf("px_gateway_state", "The gateway actor's state (1 = current)", ["state"], GATEWAY_STATES, (set) => set({}, src.gatewayState()));
  oneOf("px_shard_state", "The shard actor's state (1 = current)", [...SHARD, "state"], SHARD_STATES, (set) => {
    for (const h of src.shards.all()) set(labelsOf(h), h.runtime.state);
  });
  oneOf("px_sink_state", "The sink actor's state (1 = current)", [...SHARD, "state"], SINK_STATES, (set) => {
    for (const h of src.shards.all()) if (h.sink !== undefined) set(labelsOf(h), h.sink.state);
  });

  const perShard = (name: string, help: string, kind: "gauge" | "counter", value: (h: HostedShard) => number): void => {
    const collect = function (this: Gauge<ShardLabels> | Counter<ShardLabels>): void {
      this.reset();
      for (const h of src.shards.all()) {
        const v = value(h);
        if (this instanceof Gauge) this.set(labelsOf(h), v);
        else this.inc(labelsOf(h), v);
      }
    };
    if (kind === "gauge") new Gauge<ShardLabels>({ name, help, labelNames: SHARD, registers, collect });
    else new Counter<ShardLabels>({ name, help, labelNames: SHARD, registers, collect });
  };
  const perSink = (name: string, help: string, kind: "gauge" | "counter", value: (k: SinkStatus, h: HostedShard) => number): void => {
    const collect = function (this: Gauge<ShardLabels> | Counter<ShardLabels>): void {
      this.reset();
      for (const h of src.shards.all()) {
        const k = h.sink?.status();
        if (k === undefined) continue;
        if (this instanceof Gauge) this.set(labelsOf(h), value(k, h));
        else this.inc(labelsOf(h), value(k, h));
      }
    };
    if (kind === "gauge") new Gauge<ShardLabels>({ name, help, labelNames: SHARD, registers, collect });
    else new Counter<ShardLabels>({ name, help, labelNames: SHARD, registers, collect });
  };

  const walStreams = src.walStreams;
  if (walStreams !== undefined) {
    // One JetStream request per tenant, shared by the four families of the same scrape.
    let pending: Promise<readonly WalStreamFigures[]> | undefined;
    const figures = (): Promise<readonly WalStreamFigures[]> => {
      pending ??= walStreams()
        .catch(() => [])
        .finally(() => setTimeout(() => (pending = undefined), 100));
      return pending;
    };
    const perStream = (name: string, help: string, value: (w: WalStreamFigures) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ["tenant"],
        registers,
        async collect() {
          const list = await figures();
          this.reset();
          for (const w of list) this.set({ tenant: w.tenant }, value(w));
        },
      });
    };
    perStream("px_wal_bytes", "Bytes the tenant's WAL stream holds", (w) => w.bytes);
    perStream("px_wal_records", "Records the tenant's WAL stream holds", (w) => w.records);
    perStream("px_wal_max_bytes", "The WAL stream's byte limit (-1: none); ingest is refused when it is full", (w) => w.maxBytes);
    perStream("px_wal_last_lsn", "Last LSN of the tenant's WAL stream", (w) => w.lastLsn);
  }

  perShard("px_wal_gap", "1 when the shard or its sink stopped on a WAL gap (records it needs are gone)", "gauge", (h) => (walGapOf(h) === undefined ? 0 : 1));
  perShard("px_lag_remediation_step", "Lag remediation step of the shard's sink: 0 none, 1 bigger batches, 2 hold eviction, 3 move the sink, 4 alert (lag above its SLO after every step)", "gauge", (h) => h.lagStep);
  perShard("px_shard_applied_lsn", "Last WAL LSN applied to the hot set", "gauge", (h) => h.runtime.stats.appliedLsn);
  perShard("px_shard_rows", "Rows in the hot set", "gauge", (h) => h.runtime.stats.rows);
  perShard("px_shard_symbols", "Symbols in the hot set", "gauge", (h) => h.runtime.stats.symbols);
  perShard("px_shard_bytes", "Bytes of the hot set", "gauge", (h) => h.runtime.stats.bytes);
  perShard("px_shard_persisted_lsn", "P: WAL LSN up to which the shard is in ClickHouse (as the hot set last evicted)", "gauge", (h) => h.runtime.stats.persistedLsn);
  perShard("px_shard_t_persisted_seconds", "T_persisted: newest tick time covered by P, Unix seconds", "gauge", (h) => h.runtime.stats.tPersistedMicros / 1e6);
  perShard("px_shard_horizon_seconds", "H: every row with ts >= H is in RAM, Unix seconds (0: nothing evicted yet)", "gauge", (h) => h.runtime.stats.horizonMicros / 1e6);
  perShard("px_shard_lag_records", "WAL records applied to RAM and not yet persisted", "gauge", (h) => h.runtime.stats.lagRecords);
  perShard("px_shard_last_snapshot_lsn", "LSN the newest snapshot covers", "gauge", (h) => h.runtime.stats.lastSnapshotLsn);
  perShard("px_shard_evicted_rows_total", "Rows evicted from RAM after ClickHouse had them", "counter", (h) => h.runtime.stats.evictedRows);
  perShard("px_shard_applied_records_total", "WAL records applied to the hot set", "counter", (h) => h.runtime.stats.records);
  perShard(
    "px_sink_refused_watermarks_total",
    "Watermarks refused: an older lease revision than seen, or a P ClickHouse does not hold",
    "counter",
    (h) => h.runtime.refusedWatermarks.count + h.runtime.stats.refusedWatermarks + (h.sink?.status().refusedWatermarks ?? 0),
  );
  perSink("px_sink_lag_seconds", "Age of the oldest WAL record not yet persisted (received by the sink or still waiting in the WAL for it)", "gauge", (k, h) => shardLagMs(h, k) / 1000);
  perSink("px_sink_pending_rows", "Rows received by the sink and not yet persisted", "gauge", (k) => k.pendingRows);
  perSink("px_sink_pending_records", "WAL records received by the sink and not yet persisted (the persistence lag in LSNs)", "gauge", (k) => k.pendingRecords);
  perSink("px_sink_inserted_rows_total", "Rows the sink inserted into ClickHouse", "counter", (k) => k.insertedRows);
  perSink("px_sink_already_landed_rows_total", "Rows a retry found already in ClickHouse and did not send again (duplicates skipped)", "counter", (k) => k.alreadyLandedRows);
  perSink("px_sink_failures_total", "Failed sink attempts (recovery, flush); each is retried", "counter", (k) => k.failures);
  perSink("px_sink_retries", "Consecutive failed attempts of the sink's current retry (0 when healthy)", "gauge", (k) => k.attempt);
  perSink("px_sink_fenced", "1 once the sink lost its lease (revoked or lapsed) and stopped writing", "gauge", (k) => (k.fenced ? 1 : 0));
  perSink("px_sink_degraded", "1 while the sink keeps failing (it keeps retrying)", "gauge", (k) => (k.degraded ? 1 : 0));
}
