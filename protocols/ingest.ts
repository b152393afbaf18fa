// Ingest replies (JSON, so any NATS client can read them without protobuf).
// `v` is the reply format version.

export const INGEST_REPLY_VERSION = 1;

export interface WalAppend {
  readonly bucket: number;
  readonly lsn: number;
  readonly rows: number;
  /** true when JetStream had this record already (a retried batch) */
  readonly duplicate: boolean;
}

export interface IngestAck {
  readonly v: 1;
  readonly ok: true;
  readonly tenant: string;
  readonly table: string;
  readonly rows: number;
  readonly firstLsn: number;
  readonly lastLsn: number;
  readonly appends: readonly WalAppend[];
}

/** Error codes; `retryable` ones may succeed if sent again unchanged. */
export type IngestErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "RESOURCE_EXHAUSTED"
  | "UNAVAILABLE";

export interface IngestErrorBody {
  readonly code: IngestErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  /** With a retryable refusal for a rate quota: how long until a retry could pass (publishers wait at least this). */
  readonly retryAfterMs?: number;
}

export interface IngestNack {
  readonly v: 1;
  readonly ok: false;
  readonly tenant: string;
  readonly table: string;
  readonly error: IngestErrorBody;
}

export type IngestReply = IngestAck | IngestNack;

/** Request body of px.<t>.ingest._status (JSON; empty body = every producer). */
export interface IngestStatusRequest {
  readonly producerId?: string;
}

/** What the WAL holds of one producer: its highest seq and that batch's records. */
export interface ProducerStatus {
  readonly producerId: string;
  /** The highest producer seq with a record in the WAL (decimal: a u64 does not fit a JSON number). */
  readonly lastSeq: string;
  /** The LSN of that batch's last record found. */
  readonly lastLsn: number;
  /** WAL records of batch lastSeq found. */
  readonly records: number;
  /** WAL records batch lastSeq has in all, when its first record says (batches with a client's pair). */
  readonly batchRecords?: number;
  /**
   * Seqs below lastSeq (among the last 1024, from the producer's first) with no
   * record in the WAL. For a producer that numbers its batches one by one these
   * were not stored (in flight when an outage hit while later ones were): resend them.
   */
  readonly missing: readonly string[];
  /** Seqs (among the same) whose batch the WAL holds only in part (fewer records than its first record announced). */
  readonly cut: readonly string[];
  /** Set when `missing` or `cut` was shortened (the every-producer answer lists 16 of each; ask by producerId for up to 1024). */
  readonly more?: boolean;
}

export interface IngestStatusAnswer {
  readonly v: 1;
  readonly ok: true;
  readonly tenant: string;
  /** The producers asked for that have records in the WAL (one entry per producer). */
  readonly producers: readonly ProducerStatus[];
  /** The WAL range read: records below walFirstLsn were compacted (purged after ClickHouse has them) and are not counted. */
  readonly walFirstLsn: number;
  readonly walLastLsn: number;
}

export type IngestStatusReply = IngestStatusAnswer | { readonly v: 1; readonly ok: false; readonly tenant: string; readonly error: IngestErrorBody };
