// Plain data shapes of the sink: a decoded WAL record as the sink holds it,
// the batching limits and the retry policy. Shared by the pure planning code,
// the sink machine (actors/sink.ts) and its runtime IO.
import type { TickBatch } from "../codec/tickbatch.js";
import { DEFAULT_MAX_INSERT_BLOCK_ROWS } from "../clickhouse/index.js";

/** One WAL record of the sink's shard, decoded. */
export interface SinkRecord {
  /** JetStream stream sequence of the record. */
  readonly lsn: number;
  readonly batch: TickBatch;
  /** Bytes of the WAL payload (what batching by bytes counts). */
  readonly bytes: number;
  readonly minTsMicros: number;
  readonly maxTsMicros: number;
  /** When the sink received it, on the runtime's clock (ms). */
  readonly receivedAtMs: number;
}

/** When a micro-batch is flushed, and how large one INSERT may be. */
export interface SinkLimits {
  /** Flush once the pending records hold this many rows; also the most rows one flush takes. */
  readonly maxBatchRows: number;
  /** Flush once the pending records hold this many payload bytes; also the most one flush takes. */
  readonly maxBatchBytes: number;
  /** Flush at the latest this long after the oldest pending record arrived. */
  readonly maxBatchDelayMs: number;
  /**
   * Most rows in one INSERT. Up to max_insert_block_size rows the server parses
   * the body as one block, so an INSERT into one partition is one atomic part.
   */
  readonly maxInsertRows: number;
}

export const DEFAULT_SINK_LIMITS: SinkLimits = {
  maxBatchRows: 200_000,
  maxBatchBytes: 32 << 20,
  // 200: the persistence lag is about this plus the INSERT. Longer makes fewer ClickHouse parts for merges to
  // rewrite (at 200 k ticks/s with 8 sinks ClickHouse used 0.59 of a core at 200 ms, 0.38 at 500 ms), but at
  // 500 ms the lag p99 reached 0.7-1.0 s at 100 k ticks/s and bench:sustained held no higher rate
  // (node --sink-batch-ms trades one for the other).
  maxBatchDelayMs: 200,
  maxInsertRows: DEFAULT_MAX_INSERT_BLOCK_ROWS,
};

/** Exponential backoff with jitter between failed attempts (see backoff.ts). */
export interface RetryPolicy {
  /** Delay before the first retry. */
  readonly baseMs: number;
  readonly factor: number;
  /** Delays never exceed this (before jitter of at most +20%). */
  readonly maxMs: number;
  /** After this many consecutive failures the sink reports itself degraded (it keeps retrying). */
  readonly degradedAfterAttempts: number;
  /**
   * After a timeout the INSERT may still be queued on the server: the next
   * attempt (which first asks what landed) waits at least this long.
   */
  readonly uncertainGraceMs: number;
  /** Seed of the jitter; give each sink its own so retries of many shards spread out. */
  readonly seed: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  baseMs: 100,
  factor: 2,
  maxMs: 10_000,
  degradedAfterAttempts: 5,
  uncertainGraceMs: 3_000,
  seed: 1,
};

/** Rows of a batch of records. */
export function rowsOf(records: readonly SinkRecord[]): number {
  let n = 0;
  for (const r of records) n += r.batch.rows;
  return n;
}

/** Payload bytes of a batch of records. */
export function bytesOf(records: readonly SinkRecord[]): number {
  let n = 0;
  for (const r of records) n += r.bytes;
  return n;
}
