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
